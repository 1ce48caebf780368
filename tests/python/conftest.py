"""Shared fixtures: the loglens binary and a small generated, processed data directory."""

import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def loglens_bin() -> str:
    """The release binary `make py-test` built, or one on PATH."""
    candidate = os.environ.get("LOGLENS_BIN") or str(REPO / "target" / "release" / "loglens")
    if Path(candidate).exists():
        return candidate
    found = shutil.which("loglens")
    if found is None:
        pytest.fail("loglens binary not found: run `make build` or set LOGLENS_BIN")
    return found


def run(*args: str) -> subprocess.CompletedProcess:
    """Runs loglens, failing the test with its stderr if it exits non-zero."""
    result = subprocess.run([loglens_bin(), *args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        pytest.fail(f"loglens {' '.join(args)} exited {result.returncode}: {result.stderr}")
    return result


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    """A loopback port free for TCP (or `socket.SOCK_DGRAM`) at the time of the call."""
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_up(
    process: subprocess.Popen, url: str, seconds: float = 60, context: ssl.SSLContext | None = None
) -> None:
    """Polls `url` until it answers, failing the test if `process` exits or time runs out;
    `context` verifies an HTTPS server."""
    deadline = time.monotonic() + seconds
    while True:
        assert process.poll() is None, f"exited {process.returncode} before {url} answered"
        try:
            with urllib.request.urlopen(url, timeout=2, context=context):
                return
        except OSError:
            assert time.monotonic() < deadline, f"{url} did not answer within {seconds} s"
            time.sleep(0.2)


def stop(process: subprocess.Popen, seconds: float = 30) -> int:
    """SIGTERM, then SIGKILL if it has not exited within `seconds`; its exit status (negative
    for a signal). A server a test started never outlives the test, even when it fails."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        return process.returncode


@pytest.fixture(scope="session")
def demo(tmp_path_factory) -> dict:
    """Generates two days of logs in every format, processes them, returns paths and summaries."""
    root = tmp_path_factory.mktemp("demo")
    run("generate", "--out", str(root), "--lines", "20000", "--duration", "2d", "--seed", "7")
    data = root / "loglens-data"
    summary = run(
        "process", "--config", str(root / "loglens.toml"), "--data-dir", str(data), "--json"
    )
    return {
        "root": root,
        "data": data,
        "summary": json.loads(summary.stdout),
        "manifest": json.loads((root / "manifest.json").read_text()),
    }


@pytest.fixture(scope="session")
def dashboard_data(demo, tmp_path_factory) -> Path:
    """The demo data directory after `loglens detect` and `alert run` (see dashboard_fixtures)."""
    from dashboard_fixtures import build_data_dir  # noqa: PLC0415 (only the dashboard tests need it)

    dst = tmp_path_factory.mktemp("dashboard") / "loglens-data"
    return build_data_dir(loglens_bin(), demo["data"], dst)
