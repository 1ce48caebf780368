"""Auto-detection on real logs no one here wrote: the Loghub-2k raw logs, checked field by field.

    bench/formats [--loghub ../shared/data/loghub]

Processes each `<System>_2k.log` with no config (format detected, zone UTC) and compares every
record with Loghub's `<System>_2k.log_structured.csv` row of the same line: the timestamp (to the
second; month, day and time only for year-less logs; the epoch column where Loghub has one) and
the level where Loghub has a level column. Prints per file the detected format, lines parsed,
timestamps and levels right, and whether the issue's bar (>= 95% of lines with the right
timestamp and level) is met. The Loghub data stays outside the repository; the script says so
and exits 0 when it is absent.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import duckdb

REPO = Path(__file__).resolve().parents[1]
# LOGLENS_BIN runs another build (e.g. target/debug/loglens while developing).
LOGLENS = os.environ.get("LOGLENS_BIN", str(REPO / "target" / "release" / "loglens"))

# Per system: how to read Loghub's timestamp columns into (strftime layout of what to compare,
# the expected text), and the level column (None: Loghub has none).
YEARLESS = "%m-%d %H:%M:%S"
FULL = "%Y-%m-%d %H:%M:%S"


def _epoch(text: str) -> str:
    return datetime.fromtimestamp(int(text), UTC).strftime(FULL)


# Per system: Loghub's timestamp text from a CSV row, its strptime layout (None: epoch seconds),
# and what to compare (month, day and time only for year-less logs).
TIMESTAMPS = {
    "Android": (lambda r: f"{r['Date']} {r['Time'][:8]}", "%m-%d %H:%M:%S", YEARLESS),
    "Apache": (lambda r: r["Time"], "%a %b %d %H:%M:%S %Y", FULL),
    "BGL": (lambda r: r["Timestamp"], None, FULL),
    "HDFS": (lambda r: f"{r['Date']} {r['Time']}", "%y%m%d %H%M%S", FULL),
    "HPC": (lambda r: r["Time"], None, FULL),
    "Hadoop": (lambda r: f"{r['Date']} {r['Time'][:8]}", FULL, FULL),
    "Linux": (lambda r: f"{r['Month']} {r['Date']} {r['Time']}", "%b %d %H:%M:%S", YEARLESS),
    "OpenStack": (lambda r: f"{r['Date']} {r['Time'][:8]}", FULL, FULL),
    "Proxifier": (lambda r: r["Time"], "%m.%d %H:%M:%S", YEARLESS),
    "Spark": (lambda r: f"{r['Date']} {r['Time']}", "%y/%m/%d %H:%M:%S", FULL),
    "Windows": (lambda r: f"{r['Date']} {r['Time']}", FULL, FULL),
    "Zookeeper": (lambda r: f"{r['Date']} {r['Time'][:8]}", FULL, FULL),
}


def expected_ts(system: str, row: dict[str, str]) -> tuple[str, str] | None:
    """(what to compare, Loghub's timestamp in that layout), None for an unknown system."""
    if system not in TIMESTAMPS:
        return None
    text, layout, compare = TIMESTAMPS[system]
    if layout is None:
        return compare, _epoch(text(row))
    return compare, datetime.strptime(text(row), layout).strftime(compare)


LEVELS = {
    "v": "trace", "verbose": "trace", "trace": "trace",
    "d": "debug", "debug": "debug",
    "i": "info", "info": "info", "information": "info",
    "notice": "notice",
    "w": "warn", "warn": "warn", "warning": "warn",
    "e": "error", "error": "error", "severe": "error",
    "f": "critical", "fatal": "critical", "critical": "critical", "crit": "critical",
    "failure": "critical",
}  # fmt: skip
LEVEL_COLUMN = {
    "Android": "Level", "Apache": "Level", "BGL": "Level", "HDFS": "Level", "Hadoop": "Level",
    "OpenStack": "Level", "Spark": "Level", "Windows": "Level", "Zookeeper": "Level",
}  # fmt: skip


def check(system: str, raw: Path, structured: Path, work: Path) -> tuple:
    data = work / system
    subprocess.run(
        [LOGLENS, "process", str(raw), "--data-dir", str(data), "--final"],
        check=True,
        capture_output=True,
    )
    files = f"{data}/records/**/*.parquet"
    query = f"""SELECT line, strftime(ts AT TIME ZONE 'UTC', '%Y-%m-%d %H:%M:%S'), level, format
                FROM read_parquet('{files}')"""
    try:
        got = {r[0]: r[1:] for r in duckdb.sql(query).fetchall()}
    except duckdb.IOException:
        got = {}
    rows = list(csv.DictReader(structured.open(encoding="utf-8", errors="replace")))
    ts_ok = level_ok = level_total = 0
    for row in rows:
        record = got.get(int(row["LineId"]))
        want = expected_ts(system, row)
        if record is None or want is None:
            continue
        compare, text = want
        stamp = datetime.strptime(record[0], FULL).strftime(compare)
        ts_ok += stamp == text
        column = LEVEL_COLUMN.get(system)
        if column:
            level_total += 1
            level_ok += LEVELS.get(row[column].strip().lower()) == record[1]
    formats = sorted({r[2] for r in got.values()})
    return len(rows), len(got), ts_ok, level_ok, level_total, ",".join(formats) or "-"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--loghub", type=Path, default=REPO.parent / "shared" / "data" / "loghub")
    args = p.parse_args()
    if not args.loghub.is_dir():
        print(f"bench/formats: {args.loghub} not found (the Loghub samples live outside the repo)")
        return
    work = Path(tempfile.mkdtemp(prefix="loglens-formats-"))
    header = f"{'system':<10} {'format':<14} {'lines':>6} {'parsed':>7} {'ts ok':>7}"
    print(f"{header} {'level ok':>9}  bar")
    met = 0
    systems = sorted(d.name for d in args.loghub.iterdir() if (d / f"{d.name}_2k.log").exists())
    for system in systems:
        base = args.loghub / system / f"{system}_2k.log"
        lines, parsed, ts_ok, lvl_ok, lvl_total, formats = check(
            system, base, base.with_name(f"{system}_2k.log_structured.csv"), work
        )
        levels = f"{lvl_ok / lvl_total:>8.1%}" if lvl_total else f"{'n/a':>8}"
        ok = ts_ok >= 0.95 * lines and (not lvl_total or lvl_ok >= 0.95 * lvl_total)
        met += ok
        print(
            f"{system:<10} {formats:<14} {lines:>6} {parsed / lines:>7.1%} {ts_ok / lines:>7.1%} "
            f"{levels}  {'met' if ok else 'NOT met'}"
        )
    print(
        f"bar (>= 95% of lines with the right timestamp and level): {met} of {len(systems)} files"
    )
    shutil.rmtree(work, ignore_errors=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
