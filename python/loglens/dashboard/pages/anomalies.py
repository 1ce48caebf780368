"""Anomalies page: a metric series with its band and anomalies marked, and the incident table.

Picking an incident shows the template that explains it, its example lines and matching records.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from loglens.dashboard import charts, data, filters, ui


def _series(ctx: filters.Context) -> None:
    if not data.present(ctx.data_dir, "metrics"):
        ui.missing("metrics", ctx.data_dir)
        return
    f = ctx.filters
    metrics = ctx.query("metric_names")["metric"].tolist()
    if not metrics:
        st.info("The metrics dataset is empty.")
        return
    cols = st.columns(2)
    default = metrics.index("volume") if "volume" in metrics else 0
    metric = cols[0].selectbox("Metric", metrics, index=default, key="an_metric")
    series_names = ctx.query("metric_series_names", f, metric)["series"].tolist()
    if not series_names:
        st.info(f"No `{metric}` values in this range.")
        return
    series = cols[1].selectbox("Series", series_names, key="an_series")
    values = ctx.query("metric_series", f, metric, series)
    anomalies = pd.DataFrame()
    if data.present(ctx.data_dir, "anomalies"):
        anomalies = ctx.query("anomalies_of", f, metric, series)
    else:
        ui.missing("anomalies", ctx.data_dir)
    st.caption(f"{len(anomalies):,} anomalous buckets of `{metric}` / `{series}` in range")
    st.plotly_chart(charts.metric_with_band(values, anomalies, metric), key="an_chart")


def _incident_detail(ctx: filters.Context, incident: dict) -> None:
    st.markdown(
        f"**{incident['severity']}** · `{incident['detector']}` on `{incident['metric']}` / "
        f"`{incident['series']}` · {incident['start']:%Y-%m-%d %H:%M} → "
        f"{incident['end']:%Y-%m-%d %H:%M} UTC · "
        f"observed {incident['observed']:.4g} vs expected {incident['expected']:.4g} "
        f"(band {incident['lower']:.4g} … {incident['upper']:.4g})"
    )
    _members(incident)
    template = incident.get("template")
    st.markdown("**Explaining template**")
    st.code(template if isinstance(template, str) else "(no template recorded)", language=None)
    examples = incident.get("examples")
    examples = [] if examples is None else list(examples)
    st.markdown(f"**Example lines** ({len(examples)})")
    for line in examples:
        st.code(str(line), language=None)
    lines = ctx.query("incident_lines", incident)
    st.markdown(f"**Matching records during the incident** ({len(lines)} shown)")
    st.dataframe(lines, hide_index=True, key="inc_lines")
    _explore_button(ctx, incident)


MEMBER_COLUMNS = {
    "member_ids": "incident",
    "member_detectors": "detector",
    "member_series": "series",
    "member_severities": "severity",
}


def _members(incident: dict) -> None:
    """The incidents merged into this one (one failure seen by several series or detectors)."""
    lists = {label: incident.get(column) for column, label in MEMBER_COLUMNS.items()}
    if any(values is None for values in lists.values()):
        return  # written before correlation: the incident is its own only member
    members = pd.DataFrame({label: list(values) for label, values in lists.items()})
    st.markdown(f"**Root** `{incident['root']}` · **members** ({len(members)})")
    st.dataframe(members, hide_index=True, key="inc_members")


def _explore_button(ctx: filters.Context, incident: dict) -> None:
    """Opens Explorer on the incident's window: its template's records, else its service's."""
    template_id = ctx.query("incident_template_id", incident)
    state: dict[str, object] = {"ex_page": 1}
    if template_id is not None:
        what = f"records of template {template_id}"
        state |= {"ex_mode": "Field", "ex_field": "template_id", "ex_text": str(template_id)}
    else:
        state |= {"ex_mode": "Text", "ex_text": ""}
        what = "all records"
    service = incident.get("service")
    if isinstance(service, str):
        state["flt_service"] = [service]
        what += f" of service {service}"
    st.button(
        f"Open in Explorer: {what}, {incident['start']:%H:%M} → {incident['end']:%H:%M} UTC",
        key="inc_explore",
        icon=":material/search:",
        on_click=filters.jump_to_window,
        args=("explorer", incident["start"], incident["end"], state),
    )


def _incidents(ctx: filters.Context) -> None:
    st.subheader("Incidents")
    if not data.present(ctx.data_dir, "incidents"):
        ui.missing("incidents", ctx.data_dir)
        return
    table = ctx.query("incidents", ctx.filters)
    counts = table["severity"].value_counts()
    cols = st.columns(3)
    for col, severity in zip(cols, ("critical", "warning", "info"), strict=True):
        col.metric(f"{severity.capitalize()} incidents", f"{int(counts.get(severity, 0)):,}")
    if table.empty:
        st.info("No incident overlaps this range.")
        return
    event = st.dataframe(
        table.drop(columns=["examples", *MEMBER_COLUMNS], errors="ignore"),
        hide_index=True,
        key="inc_table",
        on_select="rerun",
        selection_mode="single-row",
        column_config={"template_id": st.column_config.TextColumn("template_id")},
    )
    labels = {
        row["incident_id"]: f"{row['start']:%m-%d %H:%M} {row['severity']} {row['detector']} "
        f"{row['metric']} {row['series']}"
        for row in table.to_dict("records")
    }
    chosen = st.selectbox(
        "Incident details (or click a row above)",
        list(labels),
        format_func=labels.__getitem__,
        key="inc_pick",
    )
    clicked = list(event.selection.rows) if event and event.selection else []
    if clicked and clicked[0] < len(table):
        chosen = table["incident_id"].iloc[clicked[0]]  # a clicked row wins over the list
    if chosen is not None:
        row = table[table["incident_id"] == chosen].iloc[0].to_dict()
        _incident_detail(ctx, row)


def render() -> None:
    ctx = filters.context()
    st.title("Anomalies")
    with ui.guard():
        _series(ctx)
    with ui.guard():
        _incidents(ctx)


if __name__ == "__main__":
    render()
