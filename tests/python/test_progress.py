"""The progress bar of long runs: `loglens process` and `python -m loglens process` (the local
engine and a Dask cluster) draw the same bar on a terminal's stderr, and none with `--json`
or when stderr is not a terminal. A pseudo-terminal stands in for the user's;
`LOGLENS_PROGRESS_AFTER=0` shows the bar at once instead of after two seconds, so the tests
do not depend on how fast the machine is."""

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from conftest import REPO, loglens_bin, stop

# The bar's line: stage, bar, bytes of the total, lines and lines/s, ETA (ANSI codes aside).
BAR = re.compile(
    r"process \[[=> ]{30}\] [\d.]+ [KMG]?i?B/[\d.]+ [KMG]?i?B ([\d,]+) lines, [\d,]+ lines/s ETA"
)
DETECT_BAR = re.compile(r"detect \[[=> ]{30}\] [\d.]+ [KMG]?i?B/[\d.]+ [KMG]?i?B")
ANSI = re.compile(rb"\x1b\[[0-9;?]*[A-Za-z]")


def on_terminal(command: list[str], seconds: float = 300) -> tuple[int, str]:
    """Runs `command` with stdout and stderr on a new pseudo-terminal; its exit status and
    what it wrote there (escape codes removed)."""
    leader, follower = pty.openpty()
    # Wide enough for the whole bar (a terminal without a size gets 80 columns).
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    env = {**os.environ, "LOGLENS_PROGRESS_AFTER": "0"}
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=follower, stderr=follower, cwd=REPO, env=env
    )
    os.close(follower)
    written = bytearray()
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 1.0)
            if not ready:
                continue
            try:
                data = os.read(leader, 1 << 16)
            except OSError:  # EIO: every process holding the terminal has closed it
                break
            if not data:
                break
            written += data
        else:
            pytest.fail(f"{command} did not end within {seconds} s")
        status = process.wait(timeout=30)
    finally:
        stop(process)  # SIGTERM first: a Dask job then stops its cluster as it leaves
        os.close(leader)
    return status, ANSI.sub(b"", bytes(written)).decode(errors="replace")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> Path:
    """About 25 MB of logs in six formats: enough updates for the bar to be drawn."""
    root = tmp_path_factory.mktemp("progress")
    subprocess.run(
        [loglens_bin(), "generate", "--out", str(root), "--lines", "120000", "--duration", "1d"],
        check=True,
        capture_output=True,
    )
    return root


def process(runner: str, *options: str) -> list[str]:
    """`process` with `options` by the CLI (`cli`), by `python -m loglens` on the local engine
    (`local`) or on a Dask cluster of its own (`dask`, chunks of 1 MiB: several groups)."""
    if runner == "cli":
        return [loglens_bin(), "process", *options]
    engine = ["--engine", "dask", "--chunk-mb", "1"] if runner == "dask" else []
    return [sys.executable, "-m", "loglens", "process", *engine, *options]


@pytest.mark.parametrize("runner", ["cli", "local", "dask"])
def test_a_terminal_shows_the_bar_and_then_the_summary(runner, inputs, tmp_path):
    config, data = str(inputs / "loglens.toml"), str(tmp_path / "data")
    status, shown = on_terminal(process(runner, "--detect", "--config", config, "--data-dir", data))
    assert status == 0, shown
    bars = list(BAR.finditer(shown))
    assert bars, f"no progress bar in:\n{shown}"
    # The bar counts lines up; then detect's bar, and the summaries follow the bars.
    lines = [int(bar.group(1).replace(",", "")) for bar in bars]
    assert lines == sorted(lines) and lines[-1] > 0, lines
    detect_bar = DETECT_BAR.search(shown, bars[-1].end())
    assert detect_bar, f"no detect bar after the process bar in:\n{shown}"
    assert shown.find("incidents", detect_bar.end()) > 0, shown
    assert shown.find("parsed", bars[-1].end()) > 0, shown


@pytest.mark.parametrize("runner", ["cli", "dask"])
def test_json_output_has_no_bar(runner, inputs, tmp_path):
    config, data = str(inputs / "loglens.toml"), str(tmp_path / "data")
    status, shown = on_terminal(process(runner, "--json", "--config", config, "--data-dir", data))
    assert status == 0, shown
    assert not BAR.search(shown), shown
    summary, _ = json.JSONDecoder().raw_decode(shown, shown.index("{"))
    assert summary["lines"] > 100_000


def test_no_bar_when_stderr_is_not_a_terminal(inputs, tmp_path):
    config, data = str(inputs / "loglens.toml"), str(tmp_path / "data")
    result = subprocess.run(
        process("dask", "--config", config, "--data-dir", data),
        capture_output=True,
        text=True,
        cwd=REPO,
        env={**os.environ, "LOGLENS_PROGRESS_AFTER": "0"},
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "lines/s ETA" not in result.stderr + result.stdout
