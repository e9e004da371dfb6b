"""Helpers shared by the real-server test peers: free ports, readiness, missing binaries."""

from __future__ import annotations

import fcntl
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import NoReturn

import pytest

APT_LOCK = Path(tempfile.gettempdir()) / "supportdesk-tests-apt.lock"


def in_ci() -> bool:
    """True when the run is a CI run (``CI=true``): a missing peer must fail, not skip."""
    return os.environ.get("CI", "").strip().lower() in {"1", "true", "yes"}


def is_root() -> bool:
    return hasattr(os, "geteuid") and os.geteuid() == 0


def peer_unavailable(reason: str) -> NoReturn:
    """Skip loudly (or fail under CI=true) because a real server peer cannot run."""
    message = f"TEST PEER UNAVAILABLE: {reason}"
    print(message, file=sys.stderr)
    if in_ci():
        pytest.fail(f"{message} (CI=true: a missing peer fails the run)", pytrace=False)
    pytest.skip(message)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free a moment ago on ``host`` (servers here cannot bind port 0)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def port_open(host: str, port: int, timeout: float = 0.2) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def wait_until(
    condition: Callable[[], bool], timeout: float, interval: float = 0.01, what: str = ""
) -> None:
    """Poll ``condition`` until it holds; raise TimeoutError naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout:.1f} s waiting for {what or condition}")
        time.sleep(interval)


def wait_for_port(host: str, port: int, timeout: float = 10.0) -> None:
    wait_until(lambda: port_open(host, port), timeout, what=f"{host}:{port} to accept connections")


def wait_for_port_closed(host: str, port: int, timeout: float = 10.0) -> None:
    wait_until(lambda: not port_open(host, port), timeout, what=f"{host}:{port} to close")


def require_binary(path: str, apt_package: str) -> str:
    """Return ``path`` if the server binary exists; install it with apt-get when running as
    root; otherwise skip loudly (fail under CI=true)."""
    if os.access(path, os.X_OK):
        return path
    if not is_root():
        peer_unavailable(
            f"{path} is missing and the tests are not running as root, so they cannot "
            f"install it; run `apt-get install {apt_package}` to enable these tests"
        )
    if shutil.which("apt-get") is None:
        peer_unavailable(f"{path} is missing and apt-get is not available to install it")
    # Several xdist workers may get here at once: install under a lock, once.
    with open(APT_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.access(path, os.X_OK):
            print(
                f"TEST PEER: {path} missing; installing {apt_package} with apt-get",
                file=sys.stderr,
            )
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            result = subprocess.run(
                ["apt-get", "install", "-y", "--no-install-recommends", apt_package],
                env=env,
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                subprocess.run(["apt-get", "update"], env=env, capture_output=True, check=False)
                result = subprocess.run(
                    ["apt-get", "install", "-y", "--no-install-recommends", apt_package],
                    env=env,
                    capture_output=True,
                    text=True,
                    check=False,
                )
            if result.returncode != 0 or not os.access(path, os.X_OK):
                tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
                peer_unavailable(f"apt-get install {apt_package} failed: {' | '.join(tail)}")
    return path


def self_signed_certificate(directory: Path) -> tuple[Path, Path] | None:
    """A self-signed certificate for localhost/127.0.0.1, or None without openssl."""
    openssl = shutil.which("openssl")
    if openssl is None:
        return None
    cert, key = directory / "cert.pem", directory / "key.pem"
    result = subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "3",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        capture_output=True,
        check=False,
    )
    if result.returncode != 0 or not cert.exists():
        return None
    return cert, key


def corpus_dir() -> Path:
    """The shared real-world corpus: $SUPPORTDESK_CORPUS, or ../shared/corpus beside the checkout."""
    env = os.environ.get("SUPPORTDESK_CORPUS")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2].parent / "shared" / "corpus"


def require_corpus() -> Path:
    """The shared corpus, or skip with one clear line (fail under CI=true) when it is absent."""
    corpus = corpus_dir()
    if corpus.is_dir():
        return corpus
    message = (
        f"SHARED CORPUS MISSING: not at {corpus}; set SUPPORTDESK_CORPUS or put it at "
        "../shared/corpus beside the checkout"
    )
    if in_ci():
        pytest.fail(f"{message} (CI=true: a missing corpus fails the run)", pytrace=False)
    pytest.skip(message)
