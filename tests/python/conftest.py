"""Shared fixtures: the loglens binary and a small generated, processed data directory."""

import json
import os
import shutil
import subprocess
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
