"""The installed Python package: its engine bindings over Arrow, and its own dashboard
(`python -m loglens dashboard`, what `loglens dashboard` runs outside a checkout)."""

import os
import pickle
import shutil
import socket
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet
import pytest
from conftest import REPO, free_port, loglens_bin, stop, wait_until_up
from loglens import _engine


def test_parse_lines_gives_an_arrow_batch_of_the_records_schema():
    lines = [
        '203.0.113.7 - - [10/Oct/2026:13:55:36 +0000] "GET /a HTTP/1.1" 503 512 "-" "curl/8.5.0"',
        "not an access line",
        '203.0.113.8 - - [10/Oct/2026:13:55:37 +0000] "POST /b HTTP/1.1" 200 0 "-" "curl/8.5.0"',
    ]
    batch = _engine.parse_lines("combined", lines, source="access.log")
    assert isinstance(batch, pa.RecordBatch)
    rows = batch.to_pylist()
    assert [r["line"] for r in rows] == [1, 3]  # the bad line is skipped, numbers kept
    assert [r["status"] for r in rows] == [503, 200]
    assert {r["source"] for r in rows} == {"access.log"}
    assert [r["level"] for r in rows] == ["error", "info"]
    # Asked for, the line left out comes back with its number, format and reason.
    records, unparsed = _engine.parse_lines("combined", lines, source="access.log", unparsed=True)
    assert records.to_pylist() == rows
    (refused,) = unparsed.to_pylist()
    assert refused["source"] == "access.log" and refused["line"] == 2
    assert refused["format"] == "combined" and refused["raw"] == "not an access line"
    assert refused["reason"]


def test_parse_bytes_parses_as_process_does_with_tracebacks_joined(tmp_path):
    """A log's bytes parse as `loglens process` parses the file: the traceback joins the
    record it belongs to (one record spanning its lines); garbage before any record and a
    damaged line (invalid UTF-8, kept with U+FFFD) are unparsed with their line numbers; the
    CLI writes the same."""
    log = (
        b"stray line before any record\n"
        b"2026-11-01 12:00:00,123 - worker.tasks - ERROR - Task failed\n"
        b"Traceback (most recent call last):\n"
        b'  File "tasks.py", line 3, in run\n'
        b"ValueError: bad input\n"
        b"2026-11-01 12:00:01,000 - worker.tasks - INFO - Task done\n"
        b"damaged \xff bytes\n"
    )
    records, unparsed = _engine.parse_bytes("pylog", log, source="app.log", unparsed=True)
    rows = records.to_pylist()
    assert [(r["line"], r["lines"], r["level"]) for r in rows] == [(2, 4, "error"), (6, 1, "info")]
    assert rows[0]["message"].splitlines() == [
        "Task failed",
        "Traceback (most recent call last):",
        '  File "tasks.py", line 3, in run',
        "ValueError: bad input",
    ]
    refused = [(u["line"], u["raw"]) for u in unparsed.to_pylist()]
    assert refused == [(1, "stray line before any record"), (7, "damaged \ufffd bytes")]
    # The same file through the CLI: the same records and unparsed lines.
    (tmp_path / "app.log").write_bytes(log)
    data = tmp_path / "data"
    cli = [loglens_bin(), "process", str(tmp_path / "app.log"), "--format", "pylog"]
    subprocess.run([*cli, "--data-dir", str(data), "--json"], check=False, capture_output=True)

    def table(name: str) -> pa.Table:
        files = sorted((data / name).rglob("*.parquet"))
        return pa.concat_tables([pa.parquet.read_table(f) for f in files]).sort_by("line")

    assert table("records").column("message").to_pylist() == [r["message"] for r in rows]
    assert table("records").column("line").to_pylist() == [2, 6]
    written = table("unparsed")
    assert (
        list(zip(written["line"].to_pylist(), written["raw"].to_pylist(), strict=True)) == refused
    )
    # parse_lines is parse_bytes over the lines joined.
    lines = log.decode("utf-8", "replace").splitlines()
    assert _engine.parse_lines("pylog", lines, source="app.log").to_pylist() == rows


def test_parse_bytes_reads_a_w3c_header_as_process_does():
    """W3C names its columns in a `#Fields:` directive: parse_bytes fits the format to it, as
    `process` fits it to a file's head (here not IIS's default columns or order)."""
    log = (
        b"#Software: Microsoft Internet Information Services 10.0\n"
        b"#Version: 1.0\n"
        b"#Fields: date time c-ip cs-method s-computername cs-uri-stem cs-version sc-status "
        b"sc-bytes time-taken\n"
        b"2026-03-04 05:06:07.250 198.51.100.4 GET edge-7 /img/a.png HTTP/2.0 404 512 0.004\n"
        b"2026-03-04 05:06:08.000 198.51.100.5 POST edge-7 /api/cart HTTP/2.0 503 0 1.250\n"
    )
    rows = _engine.parse_bytes("w3c", log, source="u_ex260304.log").to_pylist()
    got = [(r["line"], r["client_ip"], r["path"], r["status"], r["bytes"]) for r in rows]
    assert got == [
        (4, "198.51.100.4", "/img/a.png", 404, 512),
        (5, "198.51.100.5", "/api/cart", 503, 0),
    ]
    assert [r["latency_ms"] for r in rows] == [4.0, 1250.0]


def test_engine_errors_are_loglens_errors_with_the_cli_message():
    with pytest.raises(_engine.LoglensError, match='unknown format "xml"'):
        _engine.parse_lines("xml", ["x"])


def test_engine_errors_are_typed(tmp_path):
    """The class says what went wrong, so callers can catch one kind and not the others."""
    with pytest.raises(_engine.ConfigError, match="--timezone"):
        _engine.process([str(tmp_path)], data_dir=str(tmp_path / "d"), timezone="Mars/Olympus")
    with pytest.raises(_engine.InputError, match=r"missing\.log"):
        _engine.process([str(tmp_path / "missing.log")], data_dir=str(tmp_path / "d"))
    state = tmp_path / "d2" / "state"
    state.mkdir(parents=True)
    (state / "checkpoints.json").write_text("{not json")
    log = tmp_path / "a.log"
    log.write_text("2026-03-04T05:06:07Z level=info msg=ok\n")
    with pytest.raises(_engine.DataError, match=r"checkpoints\.json"):
        _engine.process([str(log)], data_dir=str(tmp_path / "d2"))
    assert issubclass(_engine.DataError, _engine.LoglensError)


def test_template_stage_gives_ids_in_input_order():
    stage = _engine.TemplateStage()
    ids = stage.assign(["user 1 logged in", "user 2 logged in", "disk full on /dev/sda"])
    assert ids[0] == ids[1] != ids[2]
    again = _engine.TemplateStage(stage.state_json())
    assert again.assign(["user 3 logged in"]) == [ids[0]]
    shipped = pickle.loads(pickle.dumps(stage))  # as Dask and Ray ship it
    assert shipped.assign(["user 4 logged in", "disk full on /dev/sdb"]) == [ids[0], ids[2]]


def test_python_m_loglens_dashboard_serves_the_packaged_app(demo):
    command = [sys.executable, "-m", "loglens", "dashboard", "--data-dir", str(demo["data"])]
    assert_serves_the_dashboard(command, dict(os.environ))


def assert_serves_the_dashboard(command: list[str], env: dict[str, str]) -> None:
    """Runs `command --port P` outside the checkout (the app must come from the package) and
    checks that Streamlit serves the dashboard; stops it either way."""
    port = free_port()
    server = subprocess.Popen(
        [*command, "--port", str(port)],
        cwd="/",
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        wait_until_up(server, f"http://127.0.0.1:{port}/_stcore/health")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as r:
            assert b"<title>Streamlit</title>" in r.read()
    finally:
        stop(server)
    # The signal reached the server itself: nothing is left serving the port.
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_loglens_dashboard_says_what_to_install_when_streamlit_is_missing(demo, tmp_path):
    """A Python without Streamlit is a clear error naming it and the fix, not a traceback."""
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    command = [loglens_bin(), "dashboard", "--data-dir", str(demo["data"])]
    command += ["--python", str(bare / "bin" / "python"), "--port", str(free_port())]
    out = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode != 0
    assert "cannot import streamlit" in out.stderr and "make venv" in out.stderr, out.stderr


def test_the_wheel_carries_the_engine_and_the_dashboard_for_loglens_dashboard(demo, tmp_path):
    """`maturin build` makes a wheel that holds the engine, the drivers and the dashboard; a
    `loglens` binary outside any checkout serves that dashboard (`python -m loglens dashboard`
    from the wheel, not the checkout's `dashboard/app.py`)."""
    maturin = Path(sys.executable).with_name("maturin")
    wheels = tmp_path / "wheels"
    build = [str(maturin), "build", "--release", "--locked", "--quiet", "-o", str(wheels)]
    subprocess.run(build, cwd=REPO, check=True, timeout=1800)
    (wheel,) = wheels.glob("loglens-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for packaged in ["_engine.abi3.so", "_engine.pyi", "distributed.py", "dashboard/app.py"]:
        assert f"loglens/{packaged}" in names, packaged
    site = tmp_path / "site"
    install = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--target"]
    subprocess.run([*install, str(site), str(wheel)], check=True, timeout=600)
    binary = tmp_path / "bin" / "loglens"  # no checkout around it
    binary.parent.mkdir()
    shutil.copy2(loglens_bin(), binary)
    env = {**os.environ, "PYTHONPATH": str(site), "LOGLENS_PYTHON": sys.executable}
    where = [sys.executable, "-c", "import loglens.dashboard as d; print(d.__file__)"]
    found = subprocess.run(where, env=env, cwd="/", capture_output=True, text=True, check=True)
    assert found.stdout.startswith(str(site)), found.stdout
    assert_serves_the_dashboard([str(binary), "dashboard", "--data-dir", str(demo["data"])], env)


def test_the_engine_stubs_match_the_engine(tmp_path):
    """`_engine.pyi` (what editors and type checkers read) names every function, class and
    parameter the compiled engine has, with the same defaults: mypy's stubtest compares them."""
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\nignore_missing_imports = True\n")  # pyarrow ships no stubs
    check = [sys.executable, "-m", "mypy.stubtest", "--mypy-config-file", str(config)]
    run = {"cwd": tmp_path, "capture_output": True, "text": True, "timeout": 600}
    result = subprocess.run([*check, "loglens._engine"], check=False, **run)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Success: no issues found in 1 module" in result.stdout
