# supportdesk — the two set-up commands are `make demo` and `make test`.
VENV ?= .venv
PY := $(VENV)/bin/python
BIN := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo test check lint types contracts pytest bench peers fmt snapshots-update clean

# The example third-party channel (tests/plugins/echo_channel) is installed next to the
# package, through its own entry point, for tests/channels/test_plugin.py.
$(VENV)/.installed: pyproject.toml tests/plugins/echo_channel/pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q -e tests/plugins/echo_channel
	touch $@

demo: $(VENV)/.installed
	$(BIN)/supportdesk demo --home demo-home

# lint, types, import contracts and the test suite
test: check

check: $(VENV)/.installed peers lint types contracts pytest

lint: $(VENV)/.installed
	$(BIN)/ruff check supportdesk tests bench
	$(BIN)/ruff format --check supportdesk tests bench

fmt: $(VENV)/.installed
	$(BIN)/ruff format supportdesk tests bench
	$(BIN)/ruff check --fix supportdesk tests bench

types: $(VENV)/.installed
	$(BIN)/mypy

contracts: $(VENV)/.installed
	$(BIN)/lint-imports

# the whole suite on SQLite, then the service-level suites again on a real PostgreSQL
pytest: $(VENV)/.installed
	$(BIN)/pytest -n 2 --dist loadgroup -q $(PYTEST_ARGS)
	SUPPORTDESK_TEST_DB=postgres $(BIN)/pytest -n 2 --dist loadgroup -q tests/inbound tests/tickets tests/people tests/replies tests/reports tests/sla tests/search tests/team tests/runner/test_lease.py tests/runner/test_cursor_atomicity.py tests/runner/test_fenced_send.py tests/runner/test_lease_renewal.py tests/runner/test_outbox_wake.py tests/outbound tests/automation tests/store/test_search_kind_index.py tests/store/test_search_newest_tickets.py tests/store/test_analyze.py tests/store/test_bulk_write_indexes.py $(PYTEST_ARGS)

# Real test peers (Dovecot, PostgreSQL, tmux, mu, notmuch, Chromium + chromedriver): installed when missing and root.
peers:
	@sh scripts/install_peers.sh

# SCALE=1m adds the 1,000,000-ticket desks (SQLite and PostgreSQL), SCALE=10m also a
# 10,000,000-ticket PostgreSQL desk generated server-side (bench/scale_bench.py)
SCALE ?=
bench: $(VENV)/.installed peers
	SCALE=$(SCALE) $(PY) -m bench

snapshots-update: $(VENV)/.installed
	$(BIN)/pytest tests/ui --snapshot-update -q

clean:
	rm -rf demo-home .demo-home.building .pytest_cache .mypy_cache .ruff_cache
