"""Overview page: volume, errors, latency and where the activity comes from, with KPI deltas.

KPIs compare the selected range with the equal-length period just before it.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from loglens.dashboard import charts, filters, sql, ui


def _kpis(frame: pd.DataFrame) -> None:
    by_period = {row["period"]: row for row in frame.to_dict("records")}
    cur = by_period.get("current", {})
    prev = by_period.get("previous", {})
    cols = st.columns(5)
    cols[0].metric(
        "Records",
        ui.count(cur.get("records", 0)),
        ui.delta(cur.get("records"), prev.get("records")),
    )
    cols[1].metric(
        "Errors",
        ui.count(cur.get("errors", 0)),
        ui.delta(cur.get("errors"), prev.get("errors")),
        delta_color="inverse",
    )
    rate_delta = (
        ui.delta(100 * cur.get("error_rate", 0), 100 * prev.get("error_rate", 0), "{:+.2f} pp")
        if prev
        else None
    )
    cols[2].metric(
        "Error rate", ui.percent(cur.get("error_rate")), rate_delta, delta_color="inverse"
    )
    cols[3].metric(
        "Latency p95",
        ui.millis(cur.get("latency_p95")),
        ui.delta(cur.get("latency_p95"), prev.get("latency_p95"), "{:+,.1f} ms"),
        delta_color="inverse",
    )
    cols[4].metric(
        "Hosts", ui.count(cur.get("hosts", 0)), ui.delta(cur.get("hosts"), prev.get("hosts"))
    )
    st.caption("Deltas compare with the previous period of the same length.")


def _breakdowns(frame: pd.DataFrame) -> None:
    parts = {
        dim: frame[frame["dimension"] == dim] for dim in ("level", "service", "status", "source")
    }
    cols = st.columns(4)
    for col, (dim, title) in zip(
        cols,
        (
            ("level", "Level"),
            ("service", "Service"),
            ("status", "Status class"),
            ("source", "Source"),
        ),
        strict=True,
    ):
        col.plotly_chart(charts.donut(parts[dim], title), key=f"donut_{dim}")
    left, right = st.columns(2)
    for col, dim, title in ((left, "service", "Top services"), (right, "host", "Top hosts")):
        top = frame[frame["dimension"] == dim].head(10)
        total = max(int(top["records"].sum()), 1)
        col.plotly_chart(charts.bars(top, title), key=f"bars_{dim}")
        col.dataframe(
            top[["key", "records"]]
            .assign(share=top["records"] / total)
            .rename(columns={"key": dim}),
            hide_index=True,
            column_config={"share": st.column_config.NumberColumn(format="percent")},
            key=f"top_{dim}",
        )


def render() -> None:
    ctx = filters.context()
    f = ctx.filters
    st.title("Overview")
    with ui.guard():
        # 0 when the rollups are missing or lag the records: every query then reads records/.
        rollup_secs = ctx.query("rollup_bucket_secs")
        # One latency profile for the KPIs and the chart.
        latency = ctx.query("latency_profile", f, rollup_secs)
        _kpis(ctx.query("kpis", f, rollup_secs, latency))
        bucket = f.bucket_secs()
        volume = ctx.query("volume_by_level", f, rollup_secs)
        if volume.empty:
            st.info("No records match the filters in this time range.")
            return
        st.plotly_chart(charts.volume(volume, bucket), key="volume")
        health = ctx.query("health_series", f, rollup_secs, latency)
        left, right = st.columns(2)
        left.plotly_chart(charts.error_rate(health, bucket), key="error_rate")
        if health["latency_p50"].notna().any():
            right.plotly_chart(charts.latency(health, bucket), key="latency")
        else:
            right.info("No access-log records (with a latency) in this selection.")
        _breakdowns(ctx.query("breakdown", f, rollup_secs))
        source = "`records/`"
        if sql.whole_buckets(f, rollup_secs):
            source = "the `rollups/` of `loglens detect`"
        st.caption(f"Times in UTC. Figures read from {source}.")


if __name__ == "__main__":
    render()
