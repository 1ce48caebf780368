"""`loglens process` on a Dask or Ray cluster: the engine's stages, cut at their seams.

The driver (this process) plans chunks of whole lines and commits the run; workers scan each
chunk (its messages), the driver gives the messages template ids in input order (ids depend on
every message before them), and workers write groups of chunks of about the same hours as
Parquet parts with those ids, save each group's metric partial beside them (detect merges
them) and return their counts. The result is what `loglens process` writes, byte for byte in
the datasets' rows (tests/python/test_distributed.py).
"""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from loglens import _engine

ENGINES = ("local", "dask", "ray")
DEFAULT_CHUNK_BYTES = 8 << 20
# How long connecting to a cluster may take before it is a clear error.
CONNECT_TIMEOUT_SECS = 20


class ClusterError(RuntimeError):
    """A cluster could not be started or reached."""


class Pending(Protocol):
    def result(self) -> Any: ...
    def done(self) -> bool: ...


class Executor(Protocol):
    """Runs a task somewhere and hands back something whose `result()` waits for it."""

    def submit(self, fn: Callable[..., Any], *args: Any) -> Pending: ...


@dataclass
class Job:
    """What `python -m loglens process` was asked to do."""

    paths: list[Path]
    config: Path | None = None
    data_dir: Path | None = None
    timezone: str | None = None
    format: str | None = None
    final_inputs: bool = False
    no_templates: bool = False
    reprocess: bool = False
    threads: int | None = None
    chunk_bytes: int = DEFAULT_CHUNK_BYTES


@dataclass
class Cluster:
    """Where the work runs: how many local workers, or the address of an existing cluster."""

    engine: str = "local"
    workers: int = 2
    scheduler: str | None = None
    ray_address: str | None = None
    dask_dashboard: bool = False
    on_dashboard: Callable[[str], None] = field(default=lambda url: None)


def process(job: Job, cluster: Cluster) -> dict[str, Any]:
    """Runs the job on the cluster's engine; the run summary (as `loglens process --json`)."""
    if cluster.engine == "local":
        summary = _engine.process(
            [str(p) for p in job.paths],
            config=job.config,
            data_dir=job.data_dir,
            threads=job.threads,
            timezone=job.timezone,
            format=job.format,
            final_inputs=job.final_inputs,
            no_templates=job.no_templates,
            reprocess=job.reprocess,
        )
        return json.loads(summary)
    with executor(cluster) as ex:
        return run_distributed(job, ex)


# Scanned chunks waiting for the driver, at most: the driver mines them in order, so a scan
# stuck behind a write on a busy worker stalls it while the other worker runs out of work;
# 16 rather than 8 gives the driver room (with Dask's scans first and the engine's allocator
# keeping freed pages, 10M lines on 2 Dask workers: 12.05 -> 11.51 s, four runs alternated).
SCAN_WINDOW = 16


def run_distributed(job: Job, ex: Executor, window: int = SCAN_WINDOW) -> dict[str, Any]:
    """Drives one run over `ex`: at most `window` scanned chunks wait for the driver, and the
    engine holds back mined chunks only up to a bounded window, so memory stays bounded
    whatever the input's size."""
    run = _engine.Run(
        [str(p) for p in job.paths],
        config=job.config,
        data_dir=job.data_dir,
        timezone=job.timezone,
        format=job.format,
        final_inputs=job.final_inputs,
        no_templates=job.no_templates,
        reprocess=job.reprocess,
        chunk_bytes=job.chunk_bytes,
    )
    try:
        chunks = run.chunks()
        worker, staged, run_id = run.worker, str(run.staged_dir), run.run_id
        scans: dict[int, Pending] = {}
        writes: list[Pending] = []

        def write(groups: list[bytes]) -> None:
            writes.extend(ex.submit(write_group, worker, g, staged, run_id) for g in groups)

        def absorb(wait: bool) -> None:
            # Counts are merged as groups finish, so little is left to merge at the end.
            for w in [w for w in writes if wait or w.done()]:
                run.absorb(w.result())
                writes.remove(w)

        for seq in range(len(chunks)):
            for ahead in range(seq, min(seq + window, len(chunks))):
                if ahead not in scans:
                    scans[ahead] = ex.submit(scan_chunk, worker, chunks[ahead])
            scan, messages = scans.pop(seq).result()
            write(run.assign(seq, scan, messages))
            absorb(wait=False)
        write(run.remaining_groups())
        absorb(wait=True)
        return json.loads(run.finish())
    finally:
        run.abort()  # after finish() this does nothing; after an error it releases the lock


def scan_chunk(worker: str, chunk: str) -> tuple[str, bytes]:
    """A worker's first step (plain Python functions, as Ray and pickling want them)."""
    return _engine.scan_chunk(worker, chunk)


def write_group(worker: str, group: bytes, staged: str, run_id: str) -> bytes:
    """A worker's second step: a group of chunks' parts and metric partial written, its
    counts and template tallies returned."""
    return _engine.write_group(worker, group, staged, run_id)


@contextmanager
def executor(cluster: Cluster) -> Iterator[Executor]:
    """The cluster's executor, started (or connected to) for the job and stopped after it."""
    if cluster.engine == "dask":
        with _dask(cluster) as ex:
            yield ex
    elif cluster.engine == "ray":
        with _ray(cluster) as ex:
            yield ex
    else:
        raise ValueError(f"unknown engine {cluster.engine!r} (one of {', '.join(ENGINES)})")


class _DaskExecutor:
    def __init__(self, client: Any) -> None:
        self.client = client

    def submit(self, fn: Callable[..., Any], *args: Any) -> Pending:
        # pure=False: two chunks with equal arguments are still two tasks; retries cover a
        # worker that dies mid-task (write_group replaces the group's files). Scans go first:
        # the driver waits for them in order, writes can wait.
        priority = 1 if fn is scan_chunk else 0
        return self.client.submit(fn, *args, pure=False, retries=3, priority=priority)


@contextmanager
def _dask(cluster: Cluster) -> Iterator[Executor]:
    try:
        from dask.distributed import Client, LocalCluster  # noqa: PLC0415 (optional)
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ClusterError(
            "--engine dask needs dask[distributed]: pip install 'loglens[dask]'"
        ) from e
    if cluster.scheduler:
        try:
            client = Client(cluster.scheduler, timeout=f"{CONNECT_TIMEOUT_SECS}s")
        except (OSError, TimeoutError) as e:
            raise ClusterError(
                f"cannot reach the Dask scheduler at {cluster.scheduler} "
                f"within {CONNECT_TIMEOUT_SECS} s: {e}"
            ) from e
        try:
            yield _DaskExecutor(client)
        finally:
            client.close()
        return
    local = LocalCluster(
        n_workers=cluster.workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":8787" if cluster.dask_dashboard else None,
    )
    client = Client(local)
    try:
        if cluster.dask_dashboard and client.dashboard_link:
            cluster.on_dashboard(client.dashboard_link)
        yield _DaskExecutor(client)
    finally:
        client.close()
        local.close()


def _reachable(address: str) -> None:
    """Fails within CONNECT_TIMEOUT_SECS when a Ray address (`host:port` or `ray://host:port`)
    takes no connection: `ray.init` itself retries an unreachable cluster for minutes."""
    if address == "auto":
        return  # resolved by Ray from the environment
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_SECS):
            return
    except (OSError, ValueError) as e:
        raise ClusterError(
            f"cannot reach the Ray cluster at {address} within {CONNECT_TIMEOUT_SECS} s: {e}"
        ) from e


class _RayPending:
    def __init__(self, ref: Any) -> None:
        self.ref = ref

    def result(self) -> Any:
        import ray  # noqa: PLC0415 (optional: only --engine ray needs it)

        return ray.get(self.ref)

    def done(self) -> bool:
        import ray  # noqa: PLC0415 (optional: only --engine ray needs it)

        ready, _ = ray.wait([self.ref], timeout=0)
        return bool(ready)


class _RayExecutor:
    def __init__(self) -> None:
        import ray  # noqa: PLC0415 (optional: only --engine ray needs it)

        # Ray tasks retry on a worker's death (max_retries); one CPU each, as Dask's workers.
        self.remote = {
            fn: ray.remote(num_cpus=1, max_retries=3)(fn) for fn in (scan_chunk, write_group)
        }

    def submit(self, fn: Callable[..., Any], *args: Any) -> Pending:
        return _RayPending(self.remote[fn].remote(*args))


@contextmanager
def _ray(cluster: Cluster) -> Iterator[Executor]:
    try:
        import ray  # noqa: PLC0415 (optional: only --engine ray needs it)
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ClusterError("--engine ray needs ray: pip install 'loglens[ray]'") from e
    started = time.monotonic()
    if cluster.ray_address:
        _reachable(cluster.ray_address)
    try:
        if cluster.ray_address:
            ray.init(address=cluster.ray_address, log_to_driver=False)
        else:
            ray.init(
                num_cpus=cluster.workers,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
    except (ConnectionError, RuntimeError, ValueError) as e:
        where = cluster.ray_address or "a local Ray instance"
        raise ClusterError(
            f"cannot start or reach {where} (after {time.monotonic() - started:.0f} s): {e}"
        ) from e
    try:
        yield _RayExecutor()
    finally:
        if cluster.ray_address:
            ray.shutdown()  # disconnects; the cluster is the user's
        else:
            _stop_own_ray(ray)


def _stop_own_ray(ray: Any) -> None:
    """Stops the local Ray instance the job started, 1 to 2 s sooner than `ray.shutdown()`.

    `ray.shutdown()` stops the instance's processes one at a time, each with SIGTERM and up
    to a second's wait before SIGKILL; the GCS server and the autoscaler monitor use that
    whole second every time (shutdown 1.3 to 2.1 s, measured). The raylet still stops
    gracefully (it stops its workers); the others hold nothing that outlives the job, so they
    get SIGKILL at once (0.3 s). Ray's private `Node` API: where it is not as expected, the
    plain shutdown."""
    try:
        from ray._private import ray_constants, worker  # noqa: PLC0415 (private, checked)

        node = worker._global_node
        kill_all = node.kill_all_processes
        kill_one = node._kill_process_type
        raylet = ray_constants.PROCESS_TYPE_RAYLET
    except (ImportError, AttributeError):
        ray.shutdown()
        return

    def kill_all_processes(**options: bool) -> None:
        wait = options.get("wait", False)
        try:
            kill_one(raylet, check_alive=False, allow_graceful=True, wait=wait)
            kill_all(check_alive=False, allow_graceful=False, wait=wait)
        except TypeError:  # another Ray's signatures: its own way, as ray.shutdown() asked
            kill_all(**options)

    node.kill_all_processes = kill_all_processes
    ray.shutdown()
