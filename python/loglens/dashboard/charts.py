"""Plotly figures shared by the pages: labelled axes, units, and the time zone (UTC) spelled out.

Figures take small, already-aggregated frames from `sql`; nothing here queries.
"""

from __future__ import annotations

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

TIME_AXIS = "Time (UTC)"
LEVEL_COLORS = {
    "trace": "#9e9e9e",
    "debug": "#90a4ae",
    "info": "#4c78a8",
    "notice": "#72b7b2",
    "warn": "#f2a93b",
    "error": "#e45756",
    "critical": "#b22222",
    "alert": "#8b0000",
    "emergency": "#4a0000",
    "(none)": "#cccccc",
}


def bucket_label(secs: int) -> str:
    if secs % 86400 == 0:
        return f"{secs // 86400} d"
    if secs % 3600 == 0:
        return f"{secs // 3600} h"
    return f"{secs // 60} min"


def _layout(fig: go.Figure, title: str, y_title: str, height: int = 320) -> go.Figure:
    fig.update_layout(
        title=title,
        height=height,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"orientation": "h", "y": -0.35, "x": 0},
        hovermode="x unified",
    )
    fig.update_xaxes(title_text=TIME_AXIS)
    fig.update_yaxes(title_text=y_title, rangemode="tozero")
    return fig


def volume(frame: pd.DataFrame, bucket_secs: int) -> go.Figure:
    """Records per bucket, stacked by level."""
    fig = px.bar(
        frame,
        x="bucket",
        y="records",
        color="level",
        color_discrete_map=LEVEL_COLORS,
        labels={"bucket": TIME_AXIS, "records": "records", "level": "level"},
    )
    fig.update_layout(bargap=0)
    return _layout(fig, "Volume by level", f"records per {bucket_label(bucket_secs)}")


def error_rate(frame: pd.DataFrame, bucket_secs: int) -> go.Figure:
    fig = go.Figure(
        go.Scatter(x=frame["bucket"], y=frame["error_rate"], mode="lines", name="error rate")
    )
    fig.update_yaxes(tickformat=".1%")
    title = f"Error rate per {bucket_label(bucket_secs)}"
    return _layout(fig, title, "5xx or level ≥ error (% of records)")


def latency(frame: pd.DataFrame, bucket_secs: int) -> go.Figure:
    fig = go.Figure()
    for column, name in (("latency_p50", "p50"), ("latency_p95", "p95"), ("latency_p99", "p99")):
        fig.add_trace(go.Scatter(x=frame["bucket"], y=frame[column], mode="lines", name=name))
    return _layout(fig, f"Latency percentiles, per {bucket_label(bucket_secs)}", "latency (ms)")


def donut(frame: pd.DataFrame, title: str, top: int = 8) -> go.Figure:
    """Share of records per key; keys beyond `top` are summed as 'other'."""
    ordered = frame.sort_values("records", ascending=False)
    head = ordered.head(top)
    rest = int(ordered["records"].iloc[top:].sum())
    if rest:
        head = pd.concat([head, pd.DataFrame({"key": ["other"], "records": [rest]})])
    colors = [LEVEL_COLORS.get(str(k), None) for k in head["key"]] if title == "Level" else None
    labels = [_short(str(k)) for k in head["key"]]
    fig = go.Figure(
        go.Pie(
            labels=labels,
            values=head["records"],
            hole=0.55,
            sort=False,
            marker={"colors": colors} if colors and all(colors) else None,
            textinfo="percent",
            textposition="inside",
        )
    )
    fig.update_layout(
        title=title,
        height=300,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
        legend={"font": {"size": 10}},
    )
    return fig


def _short(label: str, keep: int = 2) -> str:
    """Long file paths as their last `keep` components, so legends stay readable."""
    parts = label.split("/")
    return label if len(parts) <= keep + 1 else "…/" + "/".join(parts[-keep:])


def bars(frame: pd.DataFrame, title: str, top: int = 10) -> go.Figure:
    """Horizontal bar chart of the top keys by records."""
    head = frame.sort_values("records", ascending=False).head(top).iloc[::-1]
    fig = go.Figure(go.Bar(x=head["records"], y=head["key"], orientation="h"))
    fig.update_layout(title=title, height=320, margin={"l": 10, "r": 10, "t": 40, "b": 10})
    fig.update_xaxes(title_text="records")
    return fig


def metric_with_band(series: pd.DataFrame, anomalies: pd.DataFrame, metric: str) -> go.Figure:
    """A metric's values, a shaded typical band, anomalies with the detector's expected range."""
    upper = series["band_mean"] + 3 * series["band_sd"]
    lower = (series["band_mean"] - 3 * series["band_sd"]).clip(lower=0)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(x=series["ts"], y=upper, mode="lines", line={"width": 0}, showlegend=False)
    )
    fig.add_trace(
        go.Scatter(
            x=series["ts"],
            y=lower,
            mode="lines",
            line={"width": 0},
            fill="tonexty",
            fillcolor="rgba(76,120,168,0.18)",
            name="typical band (mean ± 3 sd of the previous 60 buckets)",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=series["ts"], y=series["value"], mode="lines", name=metric, line={"color": "#4c78a8"}
        )
    )
    if not anomalies.empty:
        fig.add_trace(
            go.Scatter(
                x=anomalies["ts"],
                y=anomalies["expected"],
                mode="markers",
                marker={"symbol": "line-ew-open", "size": 10, "color": "#555"},
                error_y={
                    "type": "data",
                    "symmetric": False,
                    "array": anomalies["upper"] - anomalies["expected"],
                    "arrayminus": anomalies["expected"] - anomalies["lower"],
                },
                name="detector's expected range",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=anomalies["ts"],
                y=anomalies["observed"],
                mode="markers",
                marker={"color": "#e45756", "size": 9, "symbol": "x"},
                name="anomaly",
                text=anomalies["severity"],
            )
        )
    return _layout(fig, f"{metric}", metric_unit(metric), height=380)


def metric_unit(metric: str) -> str:
    if metric.startswith("latency"):
        return f"{metric} (ms)"
    if metric == "error_rate":
        return "errors / records"
    if metric == "bytes":
        return "bytes per bucket"
    return f"{metric} per bucket"


RESULT_COLORS = {
    "delivered": "#54a24b",
    "retrying": "#f2a93b",
    "failed": "#e45756",
    "expired": "#b279a2",
    "silenced": "#9e9e9e",
    "summarized": "#72b7b2",
}


def alert_results(frame: pd.DataFrame) -> go.Figure:
    fig = px.bar(
        frame, x="result", y="notifications", color="result", color_discrete_map=RESULT_COLORS
    )
    fig.update_layout(
        title="Notifications by latest result",
        height=300,
        showlegend=False,
        margin={"l": 10, "r": 10, "t": 40, "b": 10},
    )
    fig.update_yaxes(
        title_text="notifications",
        tickformat=",d",
        dtick=max(1, int(frame["notifications"].max()) // 5),
    )
    return fig


def runs(frame: pd.DataFrame) -> go.Figure:
    fig = go.Figure(go.Bar(x=frame["run_id"], y=frame["lines_per_s"], name="lines/s"))
    fig.update_layout(
        title="Throughput per run", height=300, margin={"l": 10, "r": 10, "t": 40, "b": 10}
    )
    fig.update_xaxes(title_text="run id (UTC start time)", type="category")
    fig.update_yaxes(title_text="lines per second")
    return fig
