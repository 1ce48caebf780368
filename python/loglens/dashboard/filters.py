"""The sidebar every page shares: data directory, time range, label filters and auto-refresh.

Widgets live in the entry point, before the page runs, so their values (session state) carry over
from page to page; pages read the result through `context()`.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

import pandas as pd
import streamlit as st

from loglens.dashboard import data, sql

CONTEXT_KEY = "loglens_context"
DEFAULT_DATA_DIR = "loglens-data"

# Preset ranges end at the newest record, not at the wall clock: a data directory of last week's
# logs still shows something under "Last 24 hours".
PRESETS = {
    "Last hour": timedelta(hours=1),
    "Last 6 hours": timedelta(hours=6),
    "Last 24 hours": timedelta(hours=24),
    "Last 7 days": timedelta(days=7),
    "All data": None,
    "Custom days": None,
    "Custom window": None,
}
# Session keys of the custom window's widgets, and of a pending jump to another page.
WINDOW_KEYS = ("flt_from_day", "flt_from_time", "flt_to_day", "flt_to_time")
GOTO_KEY = "loglens_goto"
DEFAULT_PRESET = "Last 24 hours"
LABELS = (("service", "Service"), ("host", "Host"), ("level", "Level"), ("source", "Source"))


@dataclass(frozen=True)
class Context:
    """What a page needs: where the data is, its change token and the filters in force."""

    data_dir: Path
    token: float
    filters: sql.Filters

    def query(self, name: str, *args: object) -> object:
        """A cached query of `sql` with this context's data directory and token."""
        return data.query(name, self.data_dir, self.token, *args)


def data_dir_from_args(argv: list[str] | None = None) -> Path:
    """`--data-dir DIR` else $LOGLENS_DATA_DIR, else loglens-data."""
    args = sys.argv[1:] if argv is None else argv
    for i, arg in enumerate(args):
        if arg == "--data-dir" and i + 1 < len(args):
            return Path(args[i + 1])
        if arg.startswith("--data-dir="):
            return Path(arg.split("=", 1)[1])
    return Path(os.environ.get("LOGLENS_DATA_DIR") or DEFAULT_DATA_DIR)


def _ceil_minute(ts: datetime) -> datetime:
    floored = ts.replace(second=0, microsecond=0)
    return floored + timedelta(minutes=1)


def time_range(preset: str, first: datetime, last: datetime) -> tuple[datetime, datetime]:
    """[start, end) for a preset, anchored at the newest record (whole minutes)."""
    end = _ceil_minute(last)
    length = PRESETS.get(preset)
    if length is None:
        return first.replace(second=0, microsecond=0), end
    return end - length, end


def _custom_range(first: datetime, last: datetime) -> tuple[datetime, datetime]:
    picked = st.sidebar.date_input(
        "Days (UTC)",
        value=(last.date() - timedelta(days=1), last.date()),
        min_value=first.date(),
        max_value=last.date(),
        key="flt_days",
    )
    days = list(picked) if isinstance(picked, tuple | list) else [picked]
    start_day = days[0] if days else first.date()
    end_day = days[-1] if days else last.date()
    start = datetime.combine(start_day, time(), tzinfo=UTC)
    return start, datetime.combine(end_day, time(), tzinfo=UTC) + timedelta(days=1)


def _custom_window(last: datetime) -> tuple[datetime, datetime]:
    """Start and end instants (UTC, to the minute), e.g. an incident's window from Anomalies."""
    end = _ceil_minute(last)
    defaults = (end.date() - timedelta(days=1), end.time(), end.date(), end.time())
    for key, value in zip(WINDOW_KEYS, defaults, strict=True):
        st.session_state.setdefault(key, value)  # set here, not as value=, so jumps can preset it
    left, right = st.sidebar.columns(2)
    start_day = left.date_input("From (UTC)", key=WINDOW_KEYS[0])
    start_time = right.time_input("at", key=WINDOW_KEYS[1], step=60)
    end_day = left.date_input("To (UTC)", key=WINDOW_KEYS[2])
    end_time = right.time_input("at ", key=WINDOW_KEYS[3], step=60)
    start = datetime.combine(start_day, start_time, tzinfo=UTC)
    end = datetime.combine(end_day, end_time, tzinfo=UTC)
    if end <= start:
        st.sidebar.warning("The window ends before it starts: showing one minute from its start.")
        end = start + timedelta(minutes=1)
    return start, end


def jump_to_window(page: str, start: datetime, end: datetime, state: dict[str, object]) -> None:
    """An on_click callback: sets a custom window and other widget `state`, then opens `page`.

    It runs before the next script run, so the widgets pick up these values when they are drawn;
    the entry point then switches to `page` (pages cannot switch from inside a callback).
    """
    start = start.astimezone(UTC).replace(second=0, microsecond=0)
    end = end.astimezone(UTC)
    if end.second or end.microsecond:
        end = _ceil_minute(end)
    st.session_state["flt_range"] = "Custom window"
    values = (start.date(), start.time(), end.date(), end.time())
    for key, value in zip(WINDOW_KEYS, values, strict=True):
        st.session_state[key] = value
    for key, value in state.items():
        st.session_state[key] = value
    st.session_state[GOTO_KEY] = page


def _as_utc(value: object) -> datetime:
    return pd.Timestamp(value).tz_convert("UTC").to_pydatetime()


def sidebar(data_dir: Path, token: float) -> Context:
    """Draws the shared filters and stores the resulting context in session state."""
    bounds = data.query("record_bounds", data_dir, token).iloc[0]
    if pd.isna(bounds["first"]) or pd.isna(bounds["last"]):
        path = sql.dataset_dir(data_dir, "records")
        raise sql.DatasetError("records", path, "no record has a timestamp")
    first, last = _as_utc(bounds["first"]), _as_utc(bounds["last"])
    rollup_secs = data.query("rollup_bucket_secs", data_dir, token)
    options = data.query("filter_options", data_dir, token, rollup_secs)
    st.sidebar.caption(f"Data: `{data_dir}` · {int(bounds['records']):,} records")
    preset = st.sidebar.selectbox("Time range", list(PRESETS), index=2, key="flt_range")
    if preset == "Custom days":
        start, end = _custom_range(first, last)
    elif preset == "Custom window":
        start, end = _custom_window(last)
    else:
        start, end = time_range(preset, first, last)
    st.sidebar.caption(f"{start:%Y-%m-%d %H:%M} → {end:%Y-%m-%d %H:%M} UTC")
    chosen = {}
    for label, title in LABELS:
        values = options.loc[options["label"] == label, "value"].tolist()
        chosen[label] = tuple(st.sidebar.multiselect(title, values, key=f"flt_{label}"))
    filters = sql.Filters(
        start=start,
        end=end,
        services=chosen["service"],
        hosts=chosen["host"],
        levels=chosen["level"],
        sources=chosen["source"],
    )
    ctx = Context(data_dir=data_dir, token=token, filters=filters)
    st.session_state[CONTEXT_KEY] = ctx
    return ctx


def context() -> Context:
    """The context the entry point stored for this run."""
    ctx = st.session_state.get(CONTEXT_KEY)
    if not isinstance(ctx, Context):
        st.error("Open the dashboard through its entry point: `streamlit run dashboard/app.py`.")
        st.stop()
    return ctx


def auto_refresh(data_dir: Path, token: float) -> None:
    """When enabled, polls the change token and reruns the app as soon as new data lands."""
    enabled = st.sidebar.toggle(
        "Auto-refresh", key="flt_refresh", help="For a live `loglens serve`."
    )
    if not enabled:
        return
    every = st.sidebar.select_slider(
        "Check every (s)", options=[2, 5, 10, 30, 60], value=5, key="flt_refresh_secs"
    )

    @st.fragment(run_every=every)
    def poll() -> None:
        if data.change_token(data_dir) != token:
            st.rerun(scope="app")
        st.caption(f"Watching for new data every {every} s")

    with st.sidebar:
        poll()
