"""Shared fixtures: the loglens binary and a small generated, processed data directory."""

import contextlib
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


# The test certificate (localhost, 127.0.0.1), its key and the CA that signed it.
TLS = Path(__file__).resolve().parents[2] / "crates" / "loglens-cli" / "tests" / "testdata" / "tls"


def trusting_test_ca(url):
    """An SSL context trusting the test CA for an https `url`, else None."""
    return ssl.create_default_context(cafile=TLS / "ca.pem") if url.startswith("https") else None


@contextlib.contextmanager
def serve_http(data, *extra, tls=False):
    """`loglens serve` with an HTTP source (and `extra` arguments), HTTPS with the test
    certificate if `tls`, yielding its base URL; on leaving, stops it and checks it exited
    cleanly (SIGTERM flushes and commits)."""
    http = free_port()
    listen = ["--http", f"127.0.0.1:{http}", *extra]
    if tls:
        listen += ["--http-tls-cert", str(TLS / "cert.pem"), "--http-tls-key", str(TLS / "key.pem")]
    base = f"{'https' if tls else 'http'}://127.0.0.1:{http}"
    serve = subprocess.Popen(
        [loglens_bin(), "serve", "--data-dir", str(data), *listen],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until_up(serve, f"{base}/health", seconds=30, context=trusting_test_ca(base))
        yield base
    finally:
        status = stop(serve)
    assert status == 0, serve.stderr.read()
