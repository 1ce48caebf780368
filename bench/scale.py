"""Throughput of `python -m loglens process` on the local engine, Dask and Ray (issue #15).

    bench/scale [--lines 10000000] [--workers 1,2] [--engines local,dask,ray] [--keep DIR]
                [--rounds 1]

Generates one input with `loglens generate` (a week of mixed formats), reads it once (so the
page cache holds it for every engine alike), then processes it into a fresh data directory
once per engine and worker count, and prints lines/s and MB/s, wall time
(cluster "own": the command starts and stops its own cluster, as `--engine dask|ray` does by
default) and each engine's throughput against the local engine with as many threads. For Dask
and Ray it then runs the job again on a cluster started beforehand (`--scheduler`,
`--ray-address`: a cluster users already have), whose start and stop are not part of the job
(cluster "running"). Every run must write the same number of records; the script stops
otherwise. With `--rounds N` the whole sequence runs N times, each run printed as it ends, and
a last table gives each configuration's median wall time and the ratio of medians: on a shared
2-core machine one run's ratio moves by several points.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The Ray cluster started here is local and short-lived: no token to hand to the job.
ENV = {**os.environ, "RAY_AUTH_MODE": "disabled"}


def loglens_bin() -> str:
    built = REPO / "target" / "release" / "loglens"
    return str(built) if built.exists() else "loglens"


def run_engine(
    gen: Path, data: Path, engine: str, workers: int, address: list[str] | None = None
) -> tuple[float, dict]:
    shutil.rmtree(data, ignore_errors=True)
    args = [sys.executable, "-m", "loglens", "process", "--config", str(gen / "loglens.toml")]
    args += ["--data-dir", str(data), "--engine", engine, "--json"]
    args += ["--threads", str(workers)] if engine == "local" else ["--workers", str(workers)]
    args += address or []
    started = time.monotonic()
    out = subprocess.run(args, capture_output=True, text=True, check=False, env=ENV)
    wall = time.monotonic() - started
    if out.returncode != 0:
        sys.exit(f"{engine} with {workers} workers failed ({out.returncode}): {out.stderr}")
    return wall, json.loads(out.stdout)


def warm(logs: Path) -> None:
    """Reads the input once, so the first engine measured does not also pay for the disk."""
    for file in sorted(p for p in logs.rglob("*") if p.is_file()):
        with file.open("rb") as f:
            while f.read(8 << 20):
                pass


@contextmanager
def running_cluster(engine: str, workers: int) -> Iterator[list[str]]:
    """A cluster of `workers` one-core workers, started before the job: the job's options."""
    if engine == "dask":
        from dask.distributed import LocalCluster  # noqa: PLC0415 (optional)

        with LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster:
            yield ["--scheduler", cluster.scheduler_address]
        return
    ray = str(Path(sys.executable).with_name("ray"))
    port = "6399"
    start = [ray, "start", "--head", f"--port={port}", f"--num-cpus={workers}"]
    subprocess.run([*start, "--include-dashboard=false"], check=True, capture_output=True, env=ENV)
    try:
        yield ["--ray-address", f"127.0.0.1:{port}"]
    finally:
        subprocess.run([ray, "stop", "--force"], check=False, capture_output=True, env=ENV)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--lines", type=int, default=10_000_000)
    p.add_argument("--workers", default="1,2")
    p.add_argument("--engines", default="local,dask,ray")
    p.add_argument("--keep", type=Path, help="generate into (and reuse) this directory")
    p.add_argument("--rounds", type=int, default=1, help="run everything this many times")
    args = p.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="loglens-scale-"))
    gen = root / "gen"
    if not (gen / "loglens.toml").exists():
        generate = [loglens_bin(), "generate", "--out", str(gen), "--lines", str(args.lines)]
        subprocess.run(
            [*generate, "--duration", "7d", "--seed", "42"],
            check=True,
            capture_output=True,
        )
    warm(gen / "logs")
    print(f"input: {gen} ({args.lines:,} lines requested)")
    print(
        f"{'engine':<7}{'cluster':<9}{'workers':>8}{'lines':>13}{'MB':>9}{'wall s':>9}"
        f"{'lines/s':>12}{'MB/s':>8}{'vs local':>10}"
    )
    records: set[int] = set()
    walls: dict[tuple[str, str, int], list[float]] = {}
    sizes: dict[str, float] = {}

    def row(name: str, cluster: str, workers: int, wall: float, versus: str) -> str:
        rate = sizes["lines"] / wall
        mb = sizes["bytes"] / 1e6
        return (
            f"{name:<7}{cluster:<9}{workers:>8}{sizes['lines']:>13,.0f}{mb:>9.0f}{wall:>9.1f}"
            f"{rate:>12,.0f}{mb / wall:>8.1f}{versus:>10}"
        )

    def versus(wall: float, local: list[float] | None) -> str:
        return f"{statistics.median(local) / wall:.0%}" if local else "-"

    def report(name: str, cluster: str, workers: int, wall: float, summary: dict) -> None:
        records.add(summary["records_written"])
        if len(records) > 1:
            sys.exit(f"{name}: {summary['records_written']} records, others {records}")
        sizes.update(lines=summary["lines"], bytes=summary["bytes"])
        walls.setdefault((name, cluster, workers), []).append(wall)
        local = walls.get(("local", "-", workers))
        print(row(name, cluster, workers, wall, versus(wall, local)), flush=True)

    engines = args.engines.split(",")
    worker_counts = [int(w) for w in args.workers.split(",")]
    for _ in range(args.rounds):
        for engine in engines:
            for workers in worker_counts:
                cluster = "-" if engine == "local" else "own"
                report(engine, cluster, workers, *run_engine(gen, root / "data", engine, workers))
        for engine in (e for e in engines if e != "local"):
            for workers in worker_counts:
                with running_cluster(engine, workers) as address:
                    wall, summary = run_engine(gen, root / "data", engine, workers, address)
                report(engine, "running", workers, wall, summary)
    if args.rounds > 1:
        print(f"\nmedian of {args.rounds} rounds (vs local: the ratio of medians)")
        for (name, cluster, workers), times in walls.items():
            wall = statistics.median(times)
            local = walls.get(("local", "-", workers))
            print(row(name, cluster, workers, wall, versus(wall, local)))
    if not args.keep:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
