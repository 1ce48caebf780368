"""Pipeline page: ingest health from `loglens process` run summaries (state/runs/*.json), unparsed
lines by reason, data freshness, and `loglens serve` statistics when it writes them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import streamlit as st

from loglens.dashboard import charts, data, filters, ui

# Where a running `loglens serve` may publish its counters (JSON object of numbers and strings).
SERVE_STATS = ("state/serve.json", "state/serve/stats.json")


def _serve(data_dir: Path) -> None:
    st.subheader("Live service")
    path = next((data_dir / p for p in SERVE_STATS if (data_dir / p).is_file()), None)
    if path is None:
        st.caption("`loglens serve` is not publishing statistics for this data directory.")
        return
    try:
        stats = json.loads(path.read_text())
    except (OSError, ValueError) as err:
        st.error(f"Cannot read serve statistics at `{path}`: {err}")
        return
    numbers = (
        {k: v for k, v in stats.items() if isinstance(v, int | float)}
        if isinstance(stats, dict)
        else {}
    )
    cols = st.columns(max(min(len(numbers), 5), 1))
    for i, (key, value) in enumerate(list(numbers.items())[:10]):
        cols[i % len(cols)].metric(key, f"{value:,.6g}")
    st.json(stats, expanded=False)


def _runs(ctx: filters.Context) -> None:
    runs: pd.DataFrame = data.run_summaries(str(ctx.data_dir), ctx.token)
    if runs.empty:
        st.info(
            f"No run summary in `{ctx.data_dir / 'state' / 'runs'}` yet: "
            "`loglens process` writes one per run."
        )
        return
    last = runs.iloc[-1]
    cols = st.columns(5)
    cols[0].metric("Runs", f"{len(runs):,}")
    cols[1].metric("Last run: lines", ui.count(last["lines"]))
    cols[2].metric("Last run: records", ui.count(last["records_written"]))
    cols[3].metric("Last run: unparsed", ui.count(last["unparsed"]))
    rate = last["lines_per_s"]
    cols[4].metric("Last run: lines/s", "—" if ui.is_missing(rate) else f"{rate:,.0f}")
    st.plotly_chart(charts.runs(runs), key="pl_runs_chart")
    st.dataframe(runs.iloc[::-1], hide_index=True, key="pl_runs")


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
        _runs(ctx)
    with ui.guard():
        _freshness(ctx)
    with ui.guard():
        _unparsed(ctx)
    _serve(ctx.data_dir)


if __name__ == "__main__":
    render()
