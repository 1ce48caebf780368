"""`python -m loglens process --engine dask|ray` on real local clusters writes what
`loglens process` writes: the same records (per partition, `(source, line, template_id)`), the
same templates and ids, and after `--detect` the same metrics and incidents."""

import gzip
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from conftest import REPO, run, stop
from loglens import _engine, distributed


def python_loglens(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-m", "loglens", *args],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO,
        timeout=600,
    )
    if check and result.returncode != 0:
        pytest.fail(
            f"python -m loglens {' '.join(args)} exited {result.returncode}: {result.stderr}"
        )
    return result


def rows(query: str) -> list[tuple]:
    return duckdb.sql(query).fetchall()


def scan(data: Path, dataset: str) -> str:
    files = f"{data}/{dataset}/**/*.parquet"
    return f"read_parquet('{files}', hive_partitioning = true, union_by_name = true)"


def contents(data: Path) -> dict[str, list[tuple]]:
    """What a user reads from a data directory, in a stable order (file layout aside)."""
    return {
        "partitions": rows(
            f"""SELECT date::VARCHAR, hour, count(*) FROM {scan(data, "records")}
                GROUP BY ALL ORDER BY ALL"""
        ),
        "records": rows(
            f"""SELECT source, line, template_id, epoch_us(ts), level, service, host, message
                FROM {scan(data, "records")} ORDER BY source, line"""
        ),
        "unparsed": rows(f"SELECT source, line, reason FROM {scan(data, 'unparsed')} ORDER BY ALL"),
        "templates": rows(
            f"""SELECT template_id, template, canonical_id, count
                FROM {scan(data, "templates")} ORDER BY ALL"""
        ),
        "metrics": rows(
            f"SELECT metric, series, epoch_us(ts), value FROM {scan(data, 'metrics')} ORDER BY ALL"
        ),
        "incidents": rows(
            f"""SELECT incident_id, epoch_us(start), epoch_us("end"), severity, detector, metric,
                       series, root, member_ids
                FROM {scan(data, "incidents")} ORDER BY ALL"""
        ),
    }


@pytest.fixture(scope="module")
def reference(demo, tmp_path_factory) -> dict:
    """The demo's inputs through the CLI (`loglens process --detect`)."""
    data = tmp_path_factory.mktemp("cli") / "data"
    run(
        "process",
        "--config",
        str(demo["root"] / "loglens.toml"),
        "--data-dir",
        str(data),
        "--detect",
    )
    return contents(data)


def ray_processes() -> set[int]:
    """The Ray instance processes (raylet, GCS server, autoscaler monitor, workers) running."""
    found = set()
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:  # not a process, or it ended meanwhile
            continue
        if any(part in cmdline for part in (b"raylet", b"gcs_server", b"monitor.py", b"ray::")):
            found.add(int(proc.name))
    return found


# While its cluster starts, the driver scans and mines the first chunks itself: on Dask as
# many as it gets through (here often all), on Ray five, so its workers scan the rest.
DRIVER_SCANS = {"local": [], "dask": [], "ray": ["--driver-scans", "5"]}


@pytest.mark.parametrize("engine", ["local", "dask", "ray"])
def test_each_engine_writes_what_the_cli_writes(engine, demo, reference, tmp_path):
    data = tmp_path / "data"
    before = ray_processes()
    out = python_loglens(
        "process",
        "--config",
        str(demo["root"] / "loglens.toml"),
        "--data-dir",
        str(data),
        "--engine",
        engine,
        "--workers",
        "2",
        "--chunk-mb",
        "0.1",  # many chunks per file: ids must still come out in input order
        "--detect",
        "--json",
        *DRIVER_SCANS[engine],
    )
    summary = json.loads(out.stdout)
    assert summary["process"]["lines"] == demo["summary"]["lines"]
    assert summary["process"]["records_written"] == demo["summary"]["records_written"]
    # Detect built on the run's partials (one per write group on a cluster), not from records.
    assert summary["detect"]["rebuilt"] is None
    parts = sorted((data / "state" / "partials").glob("*.bin"))
    assert summary["detect"]["partials_consumed"] == len(parts) >= (engine != "local") + 1
    assert summary["detect"]["runs_consumed"] == 1
    if engine == "ray":  # Ray's start takes a second at least: the driver takes its five
        assert summary["process"]["driver_scans"] == 5
    elif engine == "dask":
        assert summary["process"]["driver_scans"] > 0
    assert all(p.name.startswith(summary["process"]["run_id"]) for p in parts)
    got = contents(data)
    assert len(got["records"]) == demo["summary"]["records_written"] > 10_000
    for dataset, expected in reference.items():
        assert got[dataset] == expected, dataset
    assert got["incidents"], "the demo injects incidents: detect must find some"
    # The job's own Ray instance is stopped with it, raylet, GCS and workers alike (its stop
    # kills what ray.shutdown() would have waited a second each for).
    assert ray_processes() <= before


def test_a_second_run_reads_only_what_was_appended(demo, tmp_path):
    """Checkpoints are the engine's: a distributed run after a run adds nothing."""
    data = tmp_path / "data"
    config = str(demo["root"] / "loglens.toml")
    python_loglens("process", "--config", config, "--data-dir", str(data), "--engine", "dask")
    again = python_loglens(
        "process", "--config", config, "--data-dir", str(data), "--engine", "dask", "--json"
    )
    assert json.loads(again.stdout)["records_written"] == 0
    total = rows(f"SELECT count(*) FROM {scan(data, 'records')}")[0][0]
    assert total == demo["summary"]["records_written"]


@pytest.mark.parametrize(
    ("engine", "address", "message"),
    [
        ("dask", ["--scheduler", "tcp://127.0.0.1:9"], "the Dask scheduler at tcp://127.0.0.1:9"),
        ("ray", ["--ray-address", "127.0.0.1:9"], "the Ray cluster at 127.0.0.1:9"),
    ],
)
def test_an_unreachable_cluster_is_a_clear_error_within_30_s(
    engine, address, message, demo, tmp_path
):
    started = time.monotonic()
    out = python_loglens(
        "process",
        "--config",
        str(demo["root"] / "loglens.toml"),
        "--data-dir",
        str(tmp_path / "data"),
        "--engine",
        engine,
        *address,
        check=False,
    )
    assert out.returncode == 1
    assert f"cannot reach {message}" in out.stderr
    assert time.monotonic() - started < 45  # 20 s connect timeout, plus Python's start
    assert not (tmp_path / "data" / "records").exists()


def test_engine_errors_name_the_file(tmp_path):
    out = python_loglens(
        "process",
        str(tmp_path / "missing.log"),
        "--data-dir",
        str(tmp_path / "d"),
        "--engine",
        "dask",
        check=False,
    )
    assert out.returncode == 1
    assert "missing.log" in out.stderr


def test_warnings_and_unreadable_inputs_are_reported_as_the_cli_reports_them(tmp_path):
    """A rotated copy read once and an input that cannot be read are said on stderr; a run
    that could read no input is an error (exit 1), as with `loglens process`."""
    line = '10.0.0.{} - - [01/Nov/2026:00:00:{:02} +0000] "GET /a HTTP/1.1" 200 12 "-" "curl"\n'
    text = "".join(line.format(i % 250, i % 60) for i in range(2000))
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "access.log").write_text(text)
    (logs / "access.log.1.gz").write_bytes(gzip.compress(text.encode()))
    out = python_loglens("process", str(logs), "--data-dir", str(tmp_path / "d1"))
    assert "access.log.1.gz: same content as" in out.stderr
    assert "files skipped: the same content as another input" in out.stdout
    assert "2,000  records written" in out.stdout
    broken = tmp_path / "broken.log.gz"
    broken.write_bytes(gzip.compress(text.encode())[:3000])  # cut off mid-stream
    out = python_loglens("process", str(broken), "--data-dir", str(tmp_path / "d2"), check=False)
    assert out.returncode == 1
    assert "broken.log.gz: not read: " in out.stderr
    assert out.stderr.strip().splitlines()[-1] == (
        "error: no input could be read (1 failed; see the warnings above)"
    )


def test_lines_longer_than_the_cap_are_kept_truncated_as_the_local_engine_keeps_them(tmp_path):
    """Lines over the 1 MiB cap, one longer than a local read (1 MiB) and one that a local
    read may hold whole: each is one unparsed row with its full length on every engine, and
    the lines around it keep their numbers; a Dask worker holds its first MiB only."""
    log = tmp_path / "app.log"
    line = "2026-11-01T00:00:{:02}Z INFO web request served in {} ms\n"
    head = "".join(line.format(i % 60, i) for i in range(3000))
    log.write_text(head + "x" * (3 << 19) + "\n" + head + "y" * (5 << 18) + "\n" + head)
    found = {}
    for engine in ("local", "dask"):
        data = tmp_path / engine
        out = python_loglens(
            "process", str(log), "--data-dir", str(data), "--engine", engine, "--json",
            "--chunk-mb", "0.05", "--detect",
        )  # fmt: skip
        summary = json.loads(out.stdout)["process"]
        assert summary["lines"] == 9002
        assert summary["records_written"] == 9000
        assert summary["unparsed"] == {"line longer than the cap (kept truncated)": 2}
        found[engine] = contents(data)
    assert found["dask"] == found["local"]
    assert found["local"]["unparsed"] == [
        (
            str(log),
            3001,
            f"line of {3 << 19} bytes is longer than the cap; its first 1048576 bytes are kept",
        ),
        (
            str(log),
            6002,
            f"line of {5 << 18} bytes is longer than the cap; its first 1048576 bytes are kept",
        ),
    ]
    numbers = [r[1] for r in found["local"]["records"]]
    assert numbers == [*range(1, 3001), *range(3002, 6002), *range(6003, 9003)]


def test_a_gzip_cut_off_midway_keeps_its_whole_lines_on_every_engine(tmp_path):
    """A compressed input that ends mid-stream: its lines up to the error are written and it
    is listed as failed (exit 3), the same on a Dask worker as in `loglens process` (a worker
    stopped the whole run before)."""
    logs = tmp_path / "logs"
    logs.mkdir()
    line = "2026-11-01T00:00:{:02}Z INFO web request {} served in {} ms\n"
    text = "".join(line.format(i % 60, i * 7919 % 100003, i) for i in range(40000))
    packed = gzip.compress(text.encode())
    (logs / "app.log.1.gz").write_bytes(packed[: len(packed) // 2])  # the plan's head reads well
    (logs / "app.log").write_text("".join(line.format(i % 60, i, i) for i in range(500)))
    found = {}
    for engine in ("local", "dask"):
        data = tmp_path / engine
        out = python_loglens(
            "process", str(logs), "--data-dir", str(data), "--engine", engine, "--json",
            check=False,
        )  # fmt: skip
        assert out.returncode == 3, out.stderr
        assert "app.log.1.gz: not read: incomplete deflate stream" in out.stderr
        summary = json.loads(out.stdout)
        assert summary["failed"] == [
            {"path": str(logs / "app.log.1.gz"), "reason": "incomplete deflate stream"}
        ]
        assert 500 < summary["records_written"] == summary["lines"] < 40500
        found[engine] = rows(
            f"SELECT source, line, template_id, epoch_us(ts), message FROM {scan(data, 'records')}"
            " ORDER BY source, line"
        )
    assert found["dask"] == found["local"]


def test_a_chunk_that_fails_on_a_worker_stops_the_run_with_its_file_named(tmp_path):
    """An input that is gone by the time a worker reads it: the worker's engine error comes
    back to the driver (returned, not raised, so Dask neither retries nor logs it) and is the
    run's, naming the file; nothing is committed."""
    log = tmp_path / "app.log"
    log.write_text("2026-11-01T00:00:00Z INFO web request served in 3 ms\n" * 100)
    data = tmp_path / "data"
    planned = _engine.Run([str(log)], data_dir=data)
    log.unlink()
    try:
        cluster = distributed.Cluster(engine="dask", workers=1)
        with pytest.raises(_engine.LoglensError, match=r"processing stopped: .*app\.log"):
            with distributed.executor(cluster) as ex:
                early = distributed._EarlyScans(planned, 0).stop()
                distributed.run_distributed(planned, ex, early, lambda: None)
    finally:
        planned.abort()
    assert not list((data / "records").rglob("*.parquet"))


def test_sigterm_stops_the_job_through_its_cleanup(demo, tmp_path):
    """A supervisor's SIGTERM mid-job: the run is given up as on Ctrl-C (one line, exit 143,
    nothing committed, its staged parts removed) and the job's own cluster stops with it."""
    data = tmp_path / "data"
    job = subprocess.Popen(
        [sys.executable, "-m", "loglens", "process", "--config", str(demo["root"] / "loglens.toml"),
         "--data-dir", str(data), "--engine", "dask", "--chunk-mb", "0.02"],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        # Mid-job: a write group's parts are staged.
        deadline = time.monotonic() + 120
        while not list((data / "state" / "staging").rglob("*.parquet")):
            assert time.monotonic() < deadline and job.poll() is None, "no part was staged"
            time.sleep(0.02)
        nannies = children(job.pid)  # the Dask cluster's processes the job started
        job.send_signal(signal.SIGTERM)
        _, stderr = job.communicate(timeout=60)
    finally:
        stop(job)
    assert job.returncode == 128 + signal.SIGTERM, stderr
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("interrupted (SIGTERM): nothing was committed"), stderr
    assert not list((data / "records").rglob("*.parquet"))
    assert not list((data / "state" / "staging").rglob("*.parquet"))
    assert nannies, "the job started no Dask processes?"
    # Gone with the job (its multiprocessing helper ends when its pipe closes: soon after).
    deadline = time.monotonic() + 10
    while alive := [pid for pid in nannies if Path(f"/proc/{pid}").exists()]:
        assert time.monotonic() < deadline, f"processes {alive} outlived the job"
        time.sleep(0.1)


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid`."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            parent = (proc / "stat").read_text().rsplit(")", 1)[1].split()[1]
        except (OSError, IndexError):  # ended meanwhile
            continue
        if parent == str(pid):
            found.append(int(proc.name))
    return found


def test_a_worker_killed_mid_job_is_retried_and_nothing_is_lost_or_doubled(
    demo, reference, tmp_path
):
    """A Dask worker dies while the job runs: its tasks run again elsewhere (the nanny starts
    a new worker), and the output is still exactly the CLI's."""
    from dask.distributed import Client, LocalCluster  # noqa: PLC0415 (only this test)

    data = tmp_path / "data"
    with (
        LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None) as cluster,
        Client(cluster) as client,
    ):
        pids = client.run(os.getpid)  # worker address -> its process
        config = ["--config", str(demo["root"] / "loglens.toml"), "--data-dir", str(data)]
        remote = ["--engine", "dask", "--scheduler", cluster.scheduler_address]
        job = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "loglens",
                "process",
                *config,
                *remote,
                "--chunk-mb",
                "0.02",
                "--detect",
            ],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        # Wait until the job's tasks run, then kill one worker's process outright.
        deadline = time.monotonic() + 120
        busy = None
        while busy is None:
            assert time.monotonic() < deadline and job.poll() is None, "the job never started"
            time.sleep(0.05)
            # One snapshot: tasks may finish between two calls to processing().
            busy = next((w for w, tasks in client.processing().items() if tasks), None)
        os.kill(pids[busy], signal.SIGKILL)
        killed_while_running = job.poll() is None
        try:
            _, stderr = job.communicate(timeout=600)
        finally:
            stop(job)  # already exited unless communicate timed out or failed
    assert job.returncode == 0, stderr
    assert killed_while_running, "the job ended before the worker was killed: make it longer"
    got = contents(data)
    for dataset, expected in reference.items():
        assert got[dataset] == expected, dataset


def test_run_dask_dashboard_serves_the_dask_dashboard_while_the_job_runs(demo, tmp_path):
    """`python run_dask_dashboard.py` (the name users of the original design know) runs the
    job on a local Dask cluster with `--dask-dashboard`: the URL it prints answers while the
    job runs, and the job writes what `loglens process` writes."""
    import threading  # noqa: PLC0415 (only this test)
    import urllib.request  # noqa: PLC0415 (only this test)

    config = ["--config", str(demo["root"] / "loglens.toml"), "--data-dir", str(tmp_path / "d")]
    job = subprocess.Popen(
        [sys.executable, "run_dask_dashboard.py", *config, "--chunk-mb", "0.005", "--json"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    stderr: list[str] = []
    url = threading.Event()
    stderr_lines = job.stderr
    assert stderr_lines is not None

    def drain() -> None:  # Dask logs to stderr: never let the pipe fill
        for line in stderr_lines:
            stderr.append(line)
            if line.startswith("Dask dashboard: "):
                url.set()

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        assert url.wait(120), f"no dashboard URL printed: {''.join(stderr)}"
        link = next(s for s in stderr if s.startswith("Dask dashboard: ")).split(": ", 1)[1]
        assert link.strip().startswith("http://") and link.strip().endswith("/status"), link
        running = job.poll() is None
        with urllib.request.urlopen(link.strip(), timeout=30) as page:
            status, body = page.status, page.read().decode(errors="replace")
        stdout, _ = job.communicate(timeout=600)
    finally:
        stop(job)
    reader.join(timeout=10)
    assert running, "the job ended before the dashboard was asked for: make it longer"
    assert status == 200 and "Dask" in body
    assert job.returncode == 0, "".join(stderr)
    summary = json.loads(stdout)
    assert summary["records_written"] == demo["summary"]["records_written"]


# Enters the job's own Ray instance and prints the command lines of the processes it started,
# then whether a task runs there.
OWN_RAY_PROCESSES = """
import json, psutil, ray
from loglens.distributed import Cluster, _ray
from ray._private import parameter
before = parameter.RayParams
with _ray(Cluster(engine="ray", workers=1)):
    started = [" ".join(p.cmdline()) for p in psutil.Process().children(recursive=True)]
    works = ray.get(ray.remote(lambda: 6 * 7).remote())
print(json.dumps({"started": started, "works": works, "restored": parameter.RayParams is before}))
"""


def test_the_jobs_own_ray_instance_starts_quietly_without_its_monitors():
    out = subprocess.run(
        [sys.executable, "-c", OWN_RAY_PROCESSES],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert seen["works"] == 42 and seen["restored"]
    started = "\n".join(seen["started"])
    assert "raylet" in started and "gcs_server" in started, started
    assert "log_monitor.py" not in started, started
    assert "autoscaler/_private/monitor.py" not in started, started
    assert "Token authentication" not in out.stderr, out.stderr  # Ray's notice, not the job's
