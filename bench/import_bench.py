"""Import rate of a generated Maildir beside `mu index` and `notmuch new` on the same files.

Every run is cold in the sense that matters for a user: a new process and an empty home (or an
empty mu/notmuch database). The Maildir stays in the page cache for all three alike. The runs
alternate between the tools and the median is reported.

Issue 21's goals are figures here: at 5,000 and 50,000 messages, the import with two parser
processes and with one, as a rate beside mu's (ratio > 1: faster than mu) and as CPU (user +
sys, the parser processes included) per message beside mu's. CPU is what to compare on a busy
machine; wall-clock rates need a quiet one.
"""

from __future__ import annotations

import os
import resource
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.common import NA, Section, median, rate, run, supportdesk, time_command, which
from bench.gen_maildir import make_maildir

COUNT = 5000
REPEATS = 3
BIG = int(os.environ.get("IMPORT_BIG", "50000"))  # the second, bigger Maildir (0: none)
BIG_REPEATS = 1

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


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


_INIT_CPU: float | None = None  # children's CPU once a desk was made: its init is not counted


def _cpu_of(fn: Callable[..., tuple[float, Path]], *args: object) -> tuple[float, float, Path]:
    """(wall, CPU of the commands fn ran and waited for, result)."""
    global _INIT_CPU
    _INIT_CPU = None
    before = _children_cpu()
    took, out = fn(*args)
    if _INIT_CPU is not None:
        before = _INIT_CPU
    return took, _children_cpu() - before, out


def _supportdesk_once(work: Path, maildir: Path, n: int, workers: int = 2) -> tuple[float, Path]:
    home = work / f"sd-{n}-w{workers}"
    shutil.rmtree(home, ignore_errors=True)
    run(supportdesk(home, "init"))  # a command needs a desk; only the import is timed
    global _INIT_CPU
    _INIT_CPU = _children_cpu()
    took = time_command(supportdesk(home, "import", "--workers", str(workers), str(maildir)))
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


def _per_msg(cpu: list[float], count: int) -> str:
    return f"{median(cpu) / count * 1e6:,.0f} µs CPU/msg"


def _measure(
    work: Path, maildir: Path, count: int, repeats: int, sec: Section, corpus: Corpus | None
) -> None:
    """Rows for one Maildir: the import with 2 and 1 parser processes beside mu and notmuch."""
    have_mu, have_nm = which("mu") is not None, which("notmuch") is not None
    ours: dict[int, tuple[list[float], list[float]]] = {2: ([], []), 1: ([], [])}
    mu: tuple[list[float], list[float]] = ([], [])
    nm: tuple[list[float], list[float]] = ([], [])
    for n in range(repeats):
        for workers in (2, 1):  # alternating with the peers, so load hits all alike
            took, cpu, home = _cpu_of(_supportdesk_once, work, maildir, n, workers)
            ours[workers][0].append(took)
            ours[workers][1].append(cpu)
            if corpus is not None and workers == 2:
                corpus.home = home
            if have_mu:
                took, cpu, muhome = _cpu_of(_mu_once, work, maildir, n)
                mu[0].append(took)
                mu[1].append(cpu)
                if corpus is not None:
                    corpus.muhome = muhome
        if have_nm:
            took, cpu, cfg = _cpu_of(_notmuch_once, work, maildir, n)
            nm[0].append(took)
            nm[1].append(cpu)
            if corpus is not None:
                corpus.notmuch_config = cfg
    size = sum(p.stat().st_size for p in (maildir / "cur").iterdir()) / 1e6
    mu_cell = f"{rate(count, median(mu[0]))} ({median(mu[0]):.2f} s)" if mu[0] else NA
    nm_cell = f"{rate(count, median(nm[0]))} ({median(nm[0]):.2f} s)" if nm[0] else NA
    for workers in (2, 1):
        wall, cpu = ours[workers]
        ratio = f"{median(mu[0]) / median(wall):.2f}x mu's rate" if mu[0] else ""
        sec.add(
            f"Import a {count:,}-message Maildir ({size:.0f} MB), {workers} parser "
            f"process{'es' if workers > 1 else ''}, cold process, median of {repeats}",
            f"{rate(count, median(wall))} ({median(wall):.2f} s); {ratio}",
            mu_cell,
            nm_cell,
            "`supportdesk import --workers N` vs `mu init && mu index` vs `notmuch new`; "
            + (
                "goal ≥ 1.5x mu's rate at 50,000 (wall clock: quiet machine only)"
                if workers > 1
                else "wall clock"
            ),
        )
        cpu_ratio = f"; {median(cpu) / median(mu[1]):.2f}x mu's" if mu[1] else ""
        sec.add(
            f"CPU (user+sys) per message, {count:,} messages, {workers} parser "
            f"process{'es' if workers > 1 else ''}",
            f"{_per_msg(cpu, count)}{cpu_ratio}",
            _per_msg(mu[1], count) if mu[1] else NA,
            _per_msg(nm[1], count) if nm[1] else NA,
            "goal ≤ mu's with 1 parser process" if workers == 1 else "parser processes included",
        )


def run_import(
    work: Path, count: int = COUNT, repeats: int | None = None
) -> tuple[Section, Corpus]:
    repeats = repeats or REPEATS
    maildir = make_maildir(work / "maildir", count)
    corpus = Corpus(maildir)
    sec = Section("Import")
    _measure(work, maildir, count, repeats, sec, corpus)
    if BIG and BIG > count:
        (work / "big").mkdir(parents=True, exist_ok=True)
        big_dir = make_maildir(work / "maildir-big", BIG)
        _measure(work / "big", big_dir, BIG, BIG_REPEATS, sec, None)
        shutil.rmtree(big_dir, ignore_errors=True)
        shutil.rmtree(work / "big", ignore_errors=True)
    return sec, corpus
