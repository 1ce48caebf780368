"""`python -m loglens process --engine local|dask|ray ...`: `loglens process` from Python, on
this machine's engine or on a Dask or Ray cluster (see loglens.distributed);
`python -m loglens dashboard`: the Streamlit dashboard of the installed package.

Exit status as `loglens process`: 0 complete, 3 partial (some inputs unreadable), 1 error
(no input readable among them), 130/143 interrupted by SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from loglens import _engine
from loglens.distributed import (
    DEFAULT_CHUNK_BYTES,
    DRIVER_SCANS,
    ENGINES,
    Cluster,
    ClusterError,
    Job,
    process,
)

EXIT_PARTIAL = 3


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="python -m loglens", description=__doc__.splitlines()[0])
    commands = top.add_subparsers(dest="command", required=True)
    p = commands.add_parser("process", help="parse log files into the data directory")
    p.add_argument(
        "paths", nargs="*", type=Path, help="files and directories (default: the config's inputs)"
    )
    p.add_argument("-c", "--config", type=Path, help="configuration file (inputs, labels, formats)")
    p.add_argument(
        "--data-dir", type=Path, help="data directory [default: the config's, else ./loglens-data]"
    )
    p.add_argument("--format", help="parse every file with this format instead of detecting it")
    p.add_argument("--timezone", help="zone of timestamps that carry none [default: UTC]")
    p.add_argument(
        "--reprocess", action="store_true", help="ignore the checkpoints of earlier runs"
    )
    p.add_argument(
        "--final",
        action="store_true",
        help="the inputs are complete (read a last unterminated line)",
    )
    p.add_argument("--no-templates", action="store_true", help="skip template mining")
    p.add_argument("--detect", action="store_true", help="run `loglens detect` after processing")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument(
        "--engine", choices=ENGINES, default="local", help="where the work runs [default: local]"
    )
    p.add_argument(
        "--workers", type=int, default=2, help="workers of a local Dask or Ray cluster [default: 2]"
    )
    p.add_argument(
        "--threads", type=int, help="threads of the local engine [default: the number of cores]"
    )
    p.add_argument("--scheduler", help="an existing Dask scheduler, e.g. tcp://host:8786")
    p.add_argument("--ray-address", help="an existing Ray cluster, e.g. ray://host:10001 or auto")
    p.add_argument(
        "--dask-dashboard",
        action="store_true",
        help="keep the Dask dashboard at :8787 while the job runs",
    )
    p.add_argument(
        "--chunk-mb",
        type=float,
        default=DEFAULT_CHUNK_BYTES / (1 << 20),
        help="size of the chunks workers take, in MiB [default: 8]",
    )
    p.add_argument(
        "--driver-scans",
        type=int,
        default=DRIVER_SCANS,
        help="chunks the driver may scan and mine itself while the cluster starts; 0 leaves "
        f"every chunk to the workers [default: {DRIVER_SCANS}]",
    )
    d = commands.add_parser("dashboard", help="serve the Streamlit dashboard over a data directory")
    d.add_argument("--data-dir", type=Path, default=Path("loglens-data"), help="the data directory")
    d.add_argument("--port", type=int, default=8501, help="port to serve on [default: 8501]")
    return top


def dashboard(data_dir: Path, port: int) -> int:
    """Runs the package's dashboard with Streamlit until it stops (what `loglens dashboard`
    falls back to outside a checkout)."""
    app = Path(__file__).resolve().parent / "dashboard" / "streamlit_app.py"
    print(f"dashboard: http://localhost:{port} (data: {data_dir}; Ctrl-C stops it)", flush=True)
    command = [sys.executable, "-m", "streamlit", "run", str(app), "--server.headless", "true"]
    command += ["--browser.gatherUsageStats", "false", "--server.port", str(port)]
    # Replaced by Streamlit rather than waiting for it, so a signal to this process (Ctrl-C,
    # SIGTERM from a supervisor) reaches the server itself and leaves no orphan behind.
    os.execv(sys.executable, [*command, "--", "--data-dir", str(data_dir)])
    return 1  # not reached: execv returns only by raising


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.command == "dashboard":
        return dashboard(args.data_dir, args.port)
    job = Job(
        paths=args.paths,
        config=args.config,
        data_dir=args.data_dir,
        timezone=args.timezone,
        format=args.format,
        final_inputs=args.final,
        no_templates=args.no_templates,
        reprocess=args.reprocess,
        threads=args.threads,
        chunk_bytes=max(1, int(args.chunk_mb * (1 << 20))),
        driver_scans=args.driver_scans,
    )
    cluster = Cluster(
        engine=args.engine,
        workers=max(1, args.workers),
        scheduler=args.scheduler,
        ray_address=args.ray_address,
        dask_dashboard=args.dask_dashboard,
        on_dashboard=lambda url: print(f"Dask dashboard: {url}", file=sys.stderr, flush=True),
    )
    stop = _StopSignals(args.engine)
    found = None
    try:
        with stop.installed():
            summary = process(job, cluster, on_commit=stop.commit_begins, progress=not args.json)
            if args.detect and not stop.received:
                detected = _engine.detect(
                    summary["data_dir"], config=args.config, progress=not args.json
                )
                found = json.loads(detected)
    except (_engine.LoglensError, ClusterError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        signum = stop.received[-1] if stop.received else signal.SIGINT
        print(
            f"interrupted ({signal.Signals(signum).name}): nothing was committed; "
            "the next run reads these inputs again",
            file=sys.stderr,
        )
        return 128 + signum
    # As `loglens process`: what the run noticed, and every input it could not read, on stderr.
    for warning in summary.get("warnings", []):
        print(f"warning: {warning}", file=sys.stderr)
    for failed in summary.get("failed", []):
        print(f"warning: {failed.get('path')}: not read: {failed.get('reason')}", file=sys.stderr)
    if args.json:
        print(
            json.dumps({"process": summary, "detect": found} if args.detect else summary, indent=2)
        )
    else:
        print_summary(summary, args.engine, found)
    if stop.received:
        signum = stop.received[-1]
        skipped = "; detect was not run" if args.detect and found is None else ""
        print(
            f"interrupted ({signal.Signals(signum).name}) once the run was committing: its "
            f"output stands{skipped}",
            file=sys.stderr,
        )
        return 128 + signum
    if summary.get("status") == "failed":
        failed = len(summary.get("failed", []))
        print(
            f"error: no input could be read ({failed} failed; see the warnings above)",
            file=sys.stderr,
        )
        return 1
    return EXIT_PARTIAL if summary.get("status") == "partial" or summary.get("failed") else 0


class _StopSignals:
    """How SIGINT (Ctrl-C) and SIGTERM (a supervisor's stop) end `python -m loglens process`.

    On a cluster the job stops through its cleanup: until its commit begins, a signal raises
    KeyboardInterrupt in the driver, so the run is given up (its staged parts removed, the
    lock released) and a cluster of its own stopped, instead of the process dying on the
    spot. From the commit on the run's outcome is decided: the signal is noted and the job
    ends after the step in hand. The local engine's run is one call into the engine, which
    Python cannot interrupt; there both signals end the process at once, as they end
    `loglens process` (the next run removes what it left)."""

    def __init__(self, engine: str) -> None:
        self.received: list[int] = []
        self.committing = False
        self.local = engine == "local"

    def _interrupt(self, signum: int, _frame: object) -> None:
        self.received.append(signum)
        if not self.committing:
            raise KeyboardInterrupt

    def commit_begins(self) -> None:
        self.committing = True

    @contextmanager
    def installed(self) -> Iterator[None]:
        handler = signal.SIG_DFL if self.local else self._interrupt
        before = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            yield
        finally:
            for s, previous in before.items():
                signal.signal(s, previous)


def print_summary(summary: dict[str, Any], engine: str, found: dict[str, Any] | None) -> None:
    lines = summary.get("lines", 0)
    secs = summary.get("elapsed_secs") or 0.0
    rate = f"{lines / secs:,.0f} lines/s" if secs > 0 else "-"
    parsed = sum(summary.get("parsed", {}).values())
    unparsed = sum(summary.get("unparsed", {}).values())
    print(f"engine {engine}: {lines:,} lines in {secs:.2f} s ({rate})")
    if early := summary.get("driver_scans"):
        print(f"{early:>13,}  chunks scanned by the driver while the cluster started")
    print(f"{parsed:>13,}  parsed")
    print(f"{unparsed:>13,}  unparsed (kept in unparsed/)")
    files = summary.get("record_files", 0)
    print(f"{summary.get('records_written', 0):>13,}  records written in {files} files")
    print(f"{summary.get('templates', 0):>13,}  templates ({summary.get('templates_new', 0)} new)")
    if duplicates := summary.get("files_duplicate"):
        print(f"{duplicates:>13,}  files skipped: the same content as another input, read once")
    if found is not None:
        print(f"{len(found.get('incidents', [])):>13,}  incidents (loglens detect)")
    print(f"output: {summary.get('data_dir')}")


if __name__ == "__main__":
    sys.exit(main())
