"""Templates page: the most frequent templates in range with trend sparklines, and new templates.

Counts come from records grouped by template_id; texts from templates/ when it exists.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from loglens.dashboard import data, filters, ui

TOP = 25


def _with_trends(
    top: pd.DataFrame, trends: pd.DataFrame, buckets: pd.DatetimeIndex
) -> pd.DataFrame:
    """Adds a `trend` column: records per bucket over the whole range (zeros where none)."""
    series = {
        tid: group.set_index("bucket")["records"].reindex(buckets, fill_value=0).tolist()
        for tid, group in trends.groupby("template_id")
    }
    trend = [series.get(tid, [0] * len(buckets)) for tid in top["template_id"]]
    with_trend = top.assign(trend=trend)
    # Text and trend first, where the eye starts; the numeric id last.
    first = ["template", "trend", "records", "errors"]
    rest = [c for c in with_trend.columns if c not in first and c != "template_id"]
    return with_trend[[*first, *rest, "template_id"]]


def _top(ctx: filters.Context, rollup_secs: int) -> None:
    f = ctx.filters
    top = ctx.query("top_templates", f, TOP, rollup_secs)
    if top.empty:
        st.info("No templated records match the filters in this range.")
        return
    ids = tuple(int(t) for t in top["template_id"])
    trends = ctx.query("template_trends", f, ids, rollup_secs)
    secs = f.bucket_secs()
    first = pd.Timestamp(f.start).floor(f"{secs}s")
    buckets = pd.date_range(first, pd.Timestamp(f.end), freq=f"{secs}s", inclusive="left")
    st.subheader(f"Top {len(top)} templates in range")
    st.dataframe(
        _with_trends(top, trends, buckets),
        hide_index=True,
        key="tpl_top",
        column_config={
            "template_id": st.column_config.TextColumn("id"),
            "template": st.column_config.TextColumn("template", width="large"),
            "trend": st.column_config.LineChartColumn(f"trend (records per {secs // 60} min, UTC)"),
        },
    )


def _new(ctx: filters.Context) -> None:
    st.subheader("New templates (first seen in this range)")
    if not data.present(ctx.data_dir, "templates"):
        ui.missing("templates", ctx.data_dir)
        return
    new = ctx.query("new_templates", ctx.filters)
    st.caption(f"{len(new):,} templates first seen in range")
    st.dataframe(
        new,
        hide_index=True,
        key="tpl_new",
        column_config={"template_id": st.column_config.TextColumn("id")},
    )


def render() -> None:
    ctx = filters.context()
    st.title("Templates")
    with ui.guard():
        # 0 when rollups/ are missing or lag the records: counts then come from records/.
        rollup_secs = ctx.query("rollup_bucket_secs")
        coverage = ctx.query("template_coverage", ctx.filters, rollup_secs).iloc[0]
        cols = st.columns(3)
        cols[0].metric("Records in range", ui.count(coverage["records"]))
        cols[1].metric("With a template", ui.count(coverage["with_template"]))
        cols[2].metric("Distinct templates", ui.count(coverage["templates"]))
        if int(coverage["with_template"]) == 0:
            st.info(
                "No record in this range has a template_id: they were processed before template "
                "mining was enabled. Reprocess with `loglens process --reprocess` to mine them."
            )
        else:
            _top(ctx, rollup_secs)
    with ui.guard():
        _new(ctx)


if __name__ == "__main__":
    render()
