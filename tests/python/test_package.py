"""The installed Python package: its engine bindings over Arrow, and its own dashboard
(`python -m loglens dashboard`, what `loglens dashboard` runs outside a checkout)."""

import subprocess
import sys
import urllib.request

import pyarrow as pa
import pytest
from conftest import free_port, stop, wait_until_up
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


def test_python_m_loglens_dashboard_serves_the_packaged_app(demo):
    port = free_port()
    command = [sys.executable, "-m", "loglens", "dashboard", "--data-dir", str(demo["data"])]
    server = subprocess.Popen(
        [*command, "--port", str(port)],
        cwd="/",  # not the checkout: the app comes from the package
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
