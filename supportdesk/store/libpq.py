"""A minimal PostgreSQL client over libpq (``ctypes``) for the quick read path.

``import psycopg`` alone costs about 0.15-0.2 s of CPU here (its type adapters, ``asyncio``,
``logging``): three times a whole SQLite quick `tickets list`. The quick path needs far less:
connect with a libpq connection string, run the store's SQL with text parameters inside one
read-only snapshot, and read back ints, text, bools and times. This module does only that,
through the same libpq psycopg itself loads (the system's ``libpq.so.5``, else the copy in the
``psycopg_binary`` wheel). A value of a type it does not know raises ``Unsupported``, and the
quick path then steps aside for the full path (SQLAlchemy and psycopg), so nothing is guessed.

The SQL is the store's own (``store.reads``): ``:name`` parameters become ``$n``.
"""

from __future__ import annotations

import ctypes
import re
from collections.abc import Iterator, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import Any

CONNECTION_OK = 0
PGRES_TUPLES_OK = 2
PGRES_COMMAND_OK = 1

_PARAM = re.compile(r"(?<![:\w]):(\w+)")
_lib: Any = None


class Unsupported(Exception):
    """Something this client does not handle: the caller takes the full path."""


def _candidates() -> Iterator[str]:
    """The system's libpq, else the copy in the psycopg_binary wheel (looked up only then)."""
    yield "libpq.so.5"
    try:
        import importlib.util

        spec = importlib.util.find_spec("psycopg_binary")
    except (ImportError, ValueError):
        return
    if spec is not None and spec.origin:
        libs = Path(spec.origin).parent.parent / "psycopg_binary.libs"
        yield from (str(p) for p in sorted(libs.glob("libpq-*.so*")))


# the server's notices (a search word too long to index...) are not printed: psycopg, the full
# path's driver, only logs them
_NOTICE = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_char_p)
_IGNORE_NOTICE = _NOTICE(lambda _arg, _message: None)


def _load() -> Any:
    global _lib
    if _lib is not None:
        return _lib
    lib = None
    for name in _candidates():
        try:
            lib = ctypes.CDLL(name)
            break
        except OSError:
            continue
    if lib is None:
        raise Unsupported("no libpq")
    vp, cp, i = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
    for fn, res, args in (
        ("PQconnectdb", vp, [cp]),
        ("PQstatus", i, [vp]),
        ("PQfinish", None, [vp]),
        ("PQexecParams", vp, [vp, cp, i, vp, ctypes.POINTER(cp), vp, vp, i]),
        ("PQresultStatus", i, [vp]),
        ("PQntuples", i, [vp]),
        ("PQnfields", i, [vp]),
        ("PQftype", ctypes.c_uint, [vp, i]),
        ("PQgetvalue", vp, [vp, i, i]),
        ("PQgetlength", i, [vp, i, i]),
        ("PQgetisnull", i, [vp, i, i]),
        ("PQclear", None, [vp]),
        ("PQclientEncoding", i, [vp]),
        ("PQsetClientEncoding", i, [vp, cp]),
        ("PQsetNoticeProcessor", vp, [vp, _NOTICE, vp]),
    ):
        f = getattr(lib, fn)
        f.restype, f.argtypes = res, args
    _lib = lib
    return lib


def conninfo(url: str) -> str | None:
    """The libpq connection URI of a SQLAlchemy PostgreSQL URL for psycopg; None for any
    other driver (the quick path then takes the full path)."""
    for prefix in ("postgresql+psycopg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql://" + url[len(prefix) :]
    return None


def _timestamp(v: str) -> datetime:
    return datetime.fromisoformat(v)


def _bool(v: str) -> bool:
    return v == "t"


# type OID -> how a text value becomes the value psycopg would give (int, str, bool, times)
_CONVERT: dict[int, Any] = {
    16: _bool,
    20: int,
    21: int,
    23: int,
    26: int,
    25: str,
    1043: str,
    1042: str,
    19: str,
    700: float,
    701: float,
    1114: _timestamp,  # timestamp without time zone: naive, as psycopg returns it
    1184: _timestamp,  # with time zone: aware
    1082: date.fromisoformat,
}


def _param(v: Any) -> bytes | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return b"t" if v else b"f"
    if isinstance(v, int | float | str):
        return str(v).encode()
    if isinstance(v, datetime | date):
        return v.isoformat().encode()
    raise Unsupported(f"parameter of type {type(v).__name__}")


class Connection:
    """One libpq connection; ``run`` has the signature of ``store.reads.Run``."""

    def __init__(self, info: str):
        lib = _load()
        self._lib = lib
        self._conn = lib.PQconnectdb(info.encode())
        if not self._conn or lib.PQstatus(self._conn) != CONNECTION_OK:
            self.close()
            raise Unsupported("cannot connect")
        if lib.PQsetClientEncoding(self._conn, b"UTF8") != 0:
            self.close()
            raise Unsupported("client encoding")
        lib.PQsetNoticeProcessor(self._conn, _IGNORE_NOTICE, None)
        self._sql: dict[str, tuple[bytes, list[str]]] = {}

    def _prepare(self, sql: str) -> tuple[bytes, list[str]]:
        got = self._sql.get(sql)
        if got is None:
            names: list[str] = []

            def number(m: re.Match[str]) -> str:
                if m.group(1) not in names:
                    names.append(m.group(1))
                return f"${names.index(m.group(1)) + 1}"

            got = self._sql[sql] = (_PARAM.sub(number, sql).encode(), names)
        return got

    def run(self, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
        text, names = self._prepare(sql)
        lib, n = self._lib, len(names)
        values = (ctypes.c_char_p * max(n, 1))(*[_param(params[k]) for k in names])
        res = lib.PQexecParams(self._conn, text, n, None, values, None, None, 0)
        if not res:
            raise Unsupported("no result")
        try:
            status = lib.PQresultStatus(res)
            if status == PGRES_COMMAND_OK:
                return []
            if status != PGRES_TUPLES_OK:
                raise Unsupported(f"query failed (status {status})")
            rows, cols = lib.PQntuples(res), lib.PQnfields(res)
            convert = []
            for c in range(cols):
                fn = _CONVERT.get(lib.PQftype(res, c))
                if fn is None:
                    raise Unsupported(f"column type {lib.PQftype(res, c)}")
                convert.append(fn)
            out = []
            getvalue, isnull, length = lib.PQgetvalue, lib.PQgetisnull, lib.PQgetlength
            for r in range(rows):
                out.append(
                    tuple(
                        None
                        if isnull(res, r, c)
                        else convert[c](
                            ctypes.string_at(getvalue(res, r, c), length(res, r, c)).decode()
                        )
                        for c in range(cols)
                    )
                )
            return out
        finally:
            lib.PQclear(res)

    def execute(self, sql: str) -> None:
        self.run(sql, {})

    def close(self) -> None:
        if self._conn:
            self._lib.PQfinish(self._conn)
            self._conn = None


def rows_of(conn: Connection, sql: str, params: dict[str, Any]) -> Sequence[Sequence[Any]]:
    return conn.run(sql, params)
