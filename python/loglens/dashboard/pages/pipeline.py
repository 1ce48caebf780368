"""Pipeline page: ingest health from what `loglens process` leaves behind: run summaries
(state/runs/*.json: throughput, parsed and unparsed counts), checkpoints (state/checkpoints.json:
how far each file was read, so the lag to its size now), unparsed lines per file and reason, data
freshness; and `loglens serve` statistics when it publishes them, else a clear "not running".
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import streamlit as st

from loglens.dashboard import charts, data, filters, sql, ui

# Where a running `loglens serve` publishes its counters (rewritten every second, removed when
# it stops; JSON object of numbers and strings, with `updated` and per-source `sources`).
SERVE_STATS = ("state/serve.json", "state/serve/stats.json")
# Counters shown first, in this order, when serve publishes them.
SERVE_HEADLINE = (
    "lines_in_total",
    "lines_out_total",
    "queue_depth_lines",
    "rejected_total",
    "dropped_total",
    "parse_errors_total",
    "incidents_open",
    "alerts_sent_total",
    "flush_failures_total",
    "detect_runs_total",
)
# A status file older than this was left by a serve that died (kill -9) or hangs.
STALE_AFTER_SECS = 30


def _serve(data_dir: Path) -> None:
    st.subheader("Live service")
    path = next((data_dir / p for p in SERVE_STATS if (data_dir / p).is_file()), None)
    if path is None:
        st.info(
            "`loglens serve` is **not running** for this data directory (it publishes no "
            f"`{SERVE_STATS[0]}`): the figures above come from `loglens process` runs. "
            "Run `loglens process` again (from cron or a timer) to ingest new lines."
        )
        return
    try:
        stats = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        st.error(f"Cannot read serve statistics at `{path}`: {err}")
        return
    if not isinstance(stats, dict):
        st.error(f"Cannot read serve statistics at `{path}`: not a JSON object")
        return
    _serve_freshness(stats)
    numbers = {k: v for k, v in stats.items() if isinstance(v, int | float) and k != "pid"}
    shown = [k for k in SERVE_HEADLINE if k in numbers] or list(numbers)
    cols = st.columns(max(min(len(shown), 5), 1))
    for i, key in enumerate(shown[:10]):
        cols[i % len(cols)].metric(key, f"{numbers[key]:,.6g}")
    sources = stats.get("sources")
    if isinstance(sources, list) and sources:
        st.dataframe(pd.DataFrame(sources), hide_index=True, key="serve_sources")
    st.json(stats, expanded=False)


def _serve_freshness(stats: dict) -> None:
    """Says whether the counters are live: serve rewrites them every second."""
    updated = pd.to_datetime(stats.get("updated"), utc=True, errors="coerce")
    if pd.isna(updated):
        return
    age = (pd.Timestamp.now(tz="UTC") - updated).total_seconds()
    pid = stats.get("pid", "?")
    if age > STALE_AFTER_SECS:
        st.warning(
            f"`loglens serve` (pid {pid}) last published {age:,.0f} s ago "
            f"({updated:%Y-%m-%d %H:%M:%S} UTC): it stopped without cleaning up or is stuck."
        )
    else:
        st.success(f"`loglens serve` is running (pid {pid}); counters updated {age:,.0f} s ago.")


def _runs(ctx: filters.Context) -> None:
    runs: pd.DataFrame = data.run_summaries(str(ctx.data_dir), ctx.token)
    if runs.empty:
        st.info(
            f"No run summary in `{ctx.data_dir / 'state' / 'runs'}` yet: "
            "`loglens process` writes one per run."
        )
        return
    last = runs.iloc[-1]
    st.subheader(f"Last run: `{last['run_id']}`")
    cols = st.columns(6)
    cols[0].metric("Runs", f"{len(runs):,}")
    cols[1].metric("Last run: lines", ui.count(last["lines"]))
    cols[2].metric("Last run: records", ui.count(last["records_written"]))
    cols[3].metric("Last run: unparsed", ui.count(last["unparsed"]))
    rate, mbs = last["lines_per_s"], last["mb_per_s"]
    cols[4].metric("Last run: lines/s", "—" if ui.is_missing(rate) else f"{rate:,.0f}")
    cols[5].metric("Last run: MB/s", "—" if ui.is_missing(mbs) else f"{mbs:,.1f}")
    st.plotly_chart(charts.runs(runs), key="pl_runs_chart")
    with st.expander(f"All runs ({len(runs):,}, newest first)"):
        st.dataframe(
            runs.iloc[::-1],
            hide_index=True,
            key="pl_runs",
            column_config={
                "mb": st.column_config.NumberColumn("MB read", format="%.1f"),
                "lines_per_s": st.column_config.NumberColumn("lines/s", format="%.0f"),
                "mb_per_s": st.column_config.NumberColumn("MB/s", format="%.1f"),
            },
        )


def _files(ctx: filters.Context) -> None:
    """Per input file: read position vs size now (lag), lines read and unparsed lines."""
    st.subheader("Input files")
    # Not cached: the lag depends on the input files' sizes now, which the token does not see.
    files = sql.checkpoints(ctx.data_dir)
    if files.empty:
        st.caption(f"No checkpoints in `{ctx.data_dir / 'state' / 'checkpoints.json'}` yet.")
        return
    if data.present(ctx.data_dir, "unparsed"):
        bad = ctx.query("unparsed_by_source")
        files = files.merge(bad, on="file", how="left")
    else:
        files = files.assign(unparsed=0, top_reason=None)
    files["unparsed"] = files["unparsed"].fillna(0).astype("int64")
    files["unparsed_share"] = files["unparsed"] / files["lines_read"].where(files["lines_read"] > 0)
    formats = data.file_formats(str(ctx.data_dir), ctx.token)
    files.insert(1, "format", files["file"].map(formats))
    lag = files["lag_bytes"].dropna()
    cols = st.columns(4)
    cols[0].metric("Files", f"{len(files):,}")
    cols[1].metric("Files behind", f"{int((files['state'] != 'caught up').sum()):,}")
    cols[2].metric("Checkpoint lag", f"{int(lag.sum()):,} bytes")
    cols[3].metric("Files with unparsed lines", f"{int((files['unparsed'] > 0).sum()):,}")
    st.caption(
        "Lag = the file's size now minus the bytes the last run read: what the next "
        "`loglens process` will read. Unparsed lines are kept in `unparsed/` with their reason."
    )
    st.dataframe(
        files,
        hide_index=True,
        key="pl_files",
        column_config={
            "file": st.column_config.TextColumn("file", width="large"),
            "unparsed_share": st.column_config.NumberColumn("unparsed %", format="percent"),
        },
    )


def _freshness(ctx: filters.Context) -> None:
    bounds = ctx.query("record_bounds").iloc[0]
    last = pd.Timestamp(bounds["last"]).to_pydatetime()
    lag = (datetime.now(UTC) - last).total_seconds()
    ago = f"{lag / 86400:,.1f} days" if lag >= 2 * 86400 else f"{lag / 60:,.0f} min"
    st.caption(f"Newest record: {last:%Y-%m-%d %H:%M:%S} UTC ({ago} before now).")


def _unparsed(ctx: filters.Context) -> None:
    st.subheader("Unparsed lines by reason")
    if not data.present(ctx.data_dir, "unparsed"):
        st.caption("No unparsed lines were written.")
        return
    reasons = ctx.query("unparsed_reasons")
    st.caption(f"{int(reasons['lines'].sum()):,} unparsed lines (all runs)")
    st.dataframe(reasons, hide_index=True, key="pl_unparsed")


def render() -> None:
    ctx = filters.context()
    st.title("Pipeline")
    with ui.guard():
        _freshness(ctx)
    with ui.guard():
        _runs(ctx)
    with ui.guard():
        _files(ctx)
    with ui.guard():
        _unparsed(ctx)
    _serve(ctx.data_dir)


if __name__ == "__main__":
    render()
