"""Alerts page: notification history from alerts/history, delivery status and retries.

One row of alerts/history is one delivery attempt outcome; a notification (idempotency key) shows
its latest result and how many attempts it took.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from loglens.dashboard import charts, data, filters, sql, ui

RESULTS = ("delivered", "retrying", "failed", "expired", "silenced", "summarized")


SCOPES = ("Sent in the selected range", "All history")


def _scope(ctx: filters.Context) -> sql.Filters | None:
    """The selected range, or None for the whole history (the default when the range has none).

    Rows are stamped when sent, so replayed or old logs put them outside the records' range.
    """
    span = ctx.query("alert_span", ctx.filters).iloc[0]
    default = 0 if int(span["in_range"]) > 0 else 1
    choice = st.radio("Notifications", SCOPES, index=default, horizontal=True, key="al_scope")
    if choice == SCOPES[1] and int(span["in_range"]) == 0 and int(span["total"]) > 0:
        st.caption(
            f"None of the {int(span['total']):,} delivery rows was sent in the selected range "
            f"(newest {pd.Timestamp(span['newest']):%Y-%m-%d %H:%M} UTC): showing all history."
        )
    return ctx.filters if choice == SCOPES[0] else None


def render() -> None:
    ctx = filters.context()
    st.title("Alerts")
    if not data.present(ctx.data_dir, "alerts"):
        ui.missing("alerts", ctx.data_dir)
        return
    with ui.guard():
        scope = _scope(ctx)
        notes = ctx.query("notifications", scope)
        counts = notes["result"].value_counts()
        cols = st.columns(6)
        cols[0].metric("Notifications", f"{len(notes):,}")
        cols[1].metric("Delivered", f"{int(counts.get('delivered', 0)):,}")
        # Retrying: not delivered yet, a later `loglens alert run` tries again; failed: refused
        # for good; expired: not delivered within `give_up_after`.
        cols[2].metric("Retrying", f"{int(counts.get('retrying', 0)):,}")
        cols[3].metric("Failed", f"{int(counts.get('failed', 0)):,}")
        cols[4].metric("Expired", f"{int(counts.get('expired', 0)):,}")
        cols[5].metric("Retries", f"{int(notes['retries'].sum()) if len(notes) else 0:,}")
        if notes.empty:
            st.info("No notification was sent in this range.")
            return
        summary = counts.rename_axis("result").reset_index(name="notifications")
        st.plotly_chart(charts.alert_results(summary), key="al_chart")
        st.subheader("Notifications (latest result)")
        st.dataframe(notes, hide_index=True, key="al_notes")
        history = ctx.query("alert_history", scope)
        with st.expander(f"Delivery log ({len(history):,} rows, newest first)"):
            st.dataframe(history, hide_index=True, key="al_history")


if __name__ == "__main__":
    render()
