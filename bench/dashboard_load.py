"""Dashboard page load times on a large data directory (issue #5: under 2 s on 10M records).

    .venv/bin/python bench/dashboard_load.py [--data-dir DIR | --work DIR --lines 10000000]
                                             [--alerts] [--range "Last 24 hours"] [--page overview]

Without --data-dir it generates --lines lines over 7 days with the release binary ($LOGLENS_BIN or
target/release/loglens) under --work and runs `loglens process --detect` on them, so records,
templates, metrics, anomalies and incidents are the pipeline's own. --alerts also runs `loglens
alert run` against a local webhook receiver (tests/python/dashboard_fixtures.py) when the data
directory has no alert history yet. Each page is run through Streamlit's AppTest with an empty
query cache (cold: every DuckDB query runs, the sidebar's too) and again (warm: cached, what
switching back to a page or a rerun costs).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PAGES = ("overview", "anomalies", "templates", "explorer", "alerts", "pipeline")


def binary() -> str:
    return os.environ.get("LOGLENS_BIN") or str(REPO / "target" / "release" / "loglens")


def loglens(*args: str) -> None:
    subprocess.run([binary(), *args], check=True, stdout=subprocess.DEVNULL)


def generate(work: Path, lines: int) -> Path:
    """Generates a week of `lines` log lines and processes them; reuses an earlier run."""
    data = work / "loglens-data"
    if (data / "records").is_dir():
        return data
    started = time.perf_counter()
    loglens(
        "generate", "--out", str(work), "--lines", str(lines), "--duration", "7d", "--seed", "42"
    )
    config = str(work / "loglens.toml")
    loglens("process", "--config", config, "--data-dir", str(data), "--detect")
    print(
        f"generated, processed, detected {lines:,} lines in {time.perf_counter() - started:.0f} s"
    )
    return data


def with_alerts(data: Path) -> None:
    """Alert history from `loglens alert run` (a webhook to a local receiver), once."""
    if (data / "alerts" / "history").is_dir():
        return
    sys.path.insert(0, str(REPO / "tests" / "python"))
    from dashboard_fixtures import run_alerts  # noqa: PLC0415

    started = time.perf_counter()
    run_alerts(binary(), data)
    print(f"alert history written in {time.perf_counter() - started:.0f} s")


def measure(
    data: Path, time_range: str, pages: tuple[str, ...] = PAGES
) -> list[tuple[str, float, float, float]]:
    """(page, cold seconds, cold CPU seconds, warm seconds) for every page.

    CPU time (all threads of this process, DuckDB's included) does not grow when other work
    competes for the cores, so it is the figure to compare across runs on a shared machine.
    """
    import streamlit as st  # noqa: PLC0415
    from streamlit.testing.v1 import AppTest  # noqa: PLC0415

    os.environ["LOGLENS_DATA_DIR"] = str(data)
    at = AppTest.from_file(str(REPO / "dashboard" / "app.py"), default_timeout=600).run()
    at.selectbox(key="flt_range").set_value(time_range).run()
    results = []
    for page in pages:
        at.switch_page(f"../python/loglens/dashboard/pages/{page}.py")
        st.cache_data.clear()
        started, cpu = time.perf_counter(), time.process_time()
        at.run()
        cold, cold_cpu = time.perf_counter() - started, time.process_time() - cpu
        started = time.perf_counter()
        at.run()
        warm = time.perf_counter() - started
        if at.exception:
            raise SystemExit(f"{page}: {at.exception[0].value}")
        results.append((page, cold, cold_cpu, warm))
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path)
    parser.add_argument("--work", type=Path, default=REPO / "target" / "dashboard-bench")
    parser.add_argument("--lines", type=int, default=10_000_000)
    parser.add_argument("--alerts", action="store_true")
    parser.add_argument("--range", dest="ranges", action="append")
    parser.add_argument("--page", dest="pages", action="append", choices=PAGES)
    args = parser.parse_args()

    data = args.data_dir or generate(args.work, args.lines)
    if args.alerts:
        with_alerts(data)
    import duckdb  # noqa: PLC0415

    scan = f"read_parquet('{data}/records/**/*.parquet', hive_partitioning = true)"
    count = duckdb.sql(f"SELECT count(*) FROM {scan}").fetchall()[0][0]
    print(f"data directory {data}: {count:,} records")
    for time_range in args.ranges or ["Last 24 hours", "All data"]:
        print(f"\ntime range: {time_range}")
        print(f"{'page':<10} {'cold (s)':>9} {'cold CPU (s)':>13} {'warm (s)':>9}")
        for page, cold, cold_cpu, warm in measure(data, time_range, tuple(args.pages or PAGES)):
            print(f"{page:<10} {cold:>9.2f} {cold_cpu:>13.2f} {warm:>9.2f}")
    print(f"\nload average during the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
