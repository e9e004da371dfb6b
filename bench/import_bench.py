"""Import rate of a generated Maildir beside `mu index` and `notmuch new` on the same files.

Every run is cold in the sense that matters for a user: a new process and an empty home (or an
empty mu/notmuch database). The Maildir stays in the page cache for all three alike. The runs
alternate between the tools and the median is reported.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from bench.common import NA, Section, median, rate, run, supportdesk, time_command, which
from bench.gen_maildir import make_maildir

COUNT = 5000
REPEATS = 3

NOTMUCH_CONFIG = """\
[database]
path={db}
mail_root={maildir}
[user]
name=Bench
primary_email=bench@example.test
[new]
tags=inbox;
[maildir]
synchronize_flags=false
"""


@dataclass
class Corpus:
    """The Maildir and, once indexed, each tool's home on it (for the search benchmark)."""

    maildir: Path
    home: Path | None = None  # supportdesk
    muhome: Path | None = None
    notmuch_config: Path | None = None


def _supportdesk_once(work: Path, maildir: Path, n: int) -> tuple[float, Path]:
    home = work / f"sd-{n}"
    shutil.rmtree(home, ignore_errors=True)
    run(supportdesk(home, "init"))  # a command needs a desk; only the import is timed
    took = time_command(supportdesk(home, "import", str(maildir)))
    out = run(supportdesk(home, "tickets", "list", "--json", "-n", "1")).stdout
    if not out.strip().startswith("["):
        raise RuntimeError("supportdesk import left no readable queue")
    return took, home


def _mu_once(work: Path, maildir: Path, n: int) -> tuple[float, Path]:
    muhome = work / f"mu-{n}"
    shutil.rmtree(muhome, ignore_errors=True)

    def index() -> None:
        run(["mu", "init", f"--maildir={maildir}", f"--muhome={muhome}"])
        run(["mu", "index", f"--muhome={muhome}"])

    from bench.common import timed

    return timed(index), muhome


def _notmuch_once(work: Path, maildir: Path, n: int) -> tuple[float, Path]:
    db = work / f"notmuch-{n}"
    shutil.rmtree(db, ignore_errors=True)
    db.mkdir(parents=True)
    cfg = work / f"notmuch-{n}.cfg"
    cfg.write_text(NOTMUCH_CONFIG.format(db=db, maildir=maildir))
    took = time_command(["notmuch", "new", "--quiet"], env={"NOTMUCH_CONFIG": str(cfg)})
    return took, cfg


def run_import(
    work: Path, count: int = COUNT, repeats: int | None = None
) -> tuple[Section, Corpus]:
    repeats = repeats or REPEATS
    maildir = make_maildir(work / "maildir", count)
    corpus = Corpus(maildir)
    have_mu, have_nm = which("mu") is not None, which("notmuch") is not None
    ours: list[float] = []
    mu: list[float] = []
    nm: list[float] = []
    for n in range(repeats):
        took, corpus.home = _supportdesk_once(work, maildir, n)
        ours.append(took)
        if have_mu:
            took, corpus.muhome = _mu_once(work, maildir, n)
            mu.append(took)
        if have_nm:
            took, corpus.notmuch_config = _notmuch_once(work, maildir, n)
            nm.append(took)
    sec = Section("Import")
    size = sum(p.stat().st_size for p in (maildir / "cur").iterdir()) / 1e6
    sec.add(
        f"Import a {count:,}-message Maildir ({size:.0f} MB), cold process, median of {repeats}",
        f"{rate(count, median(ours))} ({median(ours):.2f} s)",
        f"{rate(count, median(mu))} ({median(mu):.2f} s)" if mu else NA,
        f"{rate(count, median(nm))} ({median(nm):.2f} s)" if nm else NA,
        "`supportdesk import` vs `mu init && mu index` vs `notmuch new`; goal ≥ mu",
    )
    return sec, corpus
