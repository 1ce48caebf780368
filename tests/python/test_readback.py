"""The data directory opens as-is in DuckDB, polars and pandas, with exact counts."""

import duckdb
import pandas as pd
import polars as pl


def manifest_counts(manifest: dict) -> tuple[int, int]:
    """(lines, deliberately corrupted lines) over every generated file."""
    files = manifest["files"]
    return sum(f["lines"] for f in files), sum(f["corrupt_lines"] for f in files)


def test_summary_accounts_for_every_line(demo):
    lines, corrupt = manifest_counts(demo["manifest"])
    summary = demo["summary"]
    assert summary["lines"] == lines
    assert sum(summary["unparsed"].values()) == corrupt
    assert sum(summary["parsed"].values()) == lines - corrupt
    assert summary["records_written"] == lines - corrupt


def test_duckdb_reads_records_and_partitions(demo):
    data = demo["data"]
    con = duckdb.connect()
    glob = f"{data}/records/**/*.parquet"
    query = f"SELECT count(*) FROM read_parquet('{glob}', hive_partitioning=true)"
    total = con.execute(query).fetchone()[0]
    assert total == demo["summary"]["records_written"]
    # Every row sits in the partition of its own UTC hour.
    misplaced = con.execute(
        f"""SELECT count(*) FROM read_parquet('{glob}', hive_partitioning=true)
            WHERE strftime(ts AT TIME ZONE 'UTC', '%Y-%m-%d') <> CAST(date AS VARCHAR)
               OR hour(ts AT TIME ZONE 'UTC') <> CAST(hour AS INTEGER)"""
    ).fetchone()[0]
    assert misplaced == 0
    per_format = dict(
        con.execute(f"SELECT format, count(*) FROM read_parquet('{glob}') GROUP BY 1").fetchall()
    )
    assert per_format == demo["summary"]["parsed"]


def test_duckdb_reads_unparsed_with_reasons(demo):
    con = duckdb.connect()
    rows = con.execute(
        f"SELECT source, line, reason, raw FROM read_parquet('{demo['data']}/unparsed/*.parquet')"
    ).fetchall()
    assert len(rows) == sum(demo["summary"]["unparsed"].values())
    for source, line, reason, raw in rows:
        assert line >= 1 and reason and source.endswith((".log", ".jsonl", "syslog"))
        with open(source, encoding="utf-8", errors="replace") as handle:
            for number, text in enumerate(handle, start=1):
                if number == line:
                    assert text.rstrip("\r\n") == raw
                    break


def test_polars_and_pandas_agree(demo):
    data = demo["data"]
    lazy = pl.scan_parquet(f"{data}/records/**/*.parquet", hive_partitioning=True)
    by_level = lazy.group_by("level").len().collect()
    polars_counts = dict(zip(by_level["level"].to_list(), by_level["len"].to_list(), strict=True))
    frame = pd.read_parquet(data / "records")
    pandas_counts = frame["level"].value_counts(dropna=False).to_dict()
    assert {str(k): v for k, v in polars_counts.items()} == {
        "None" if pd.isna(k) else str(k): v for k, v in pandas_counts.items()
    }
    assert len(frame) == demo["summary"]["records_written"]
    assert str(frame["ts"].dtype).startswith("datetime64") and "UTC" in str(frame["ts"].dtype)
