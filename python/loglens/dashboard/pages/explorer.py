"""Explorer page: search records by text, regex (DuckDB regexp_matches, RE2 syntax) or field, paged.

Each row shows the raw line as parsed (the message) and where it came from (source:line).
"""

from __future__ import annotations

import math

import streamlit as st

from loglens.dashboard import data, filters, sql, ui

PAGE_SIZE = 50
EXPORT_ROWS = 100_000  # a CSV download's cap: enough for a spreadsheet, bounded memory
MODES = {"Text": "text", "Regex": "regex", "Field": "field"}


def _search_inputs() -> tuple[str, str, str]:
    cols = st.columns([1, 1, 3])
    mode = MODES[cols[0].radio("Search by", list(MODES), horizontal=True, key="ex_mode")]
    field = ""
    if mode == "field":
        choice = cols[1].selectbox("Field", [*sql.FIELDS, "attrs.…"], key="ex_field")
        if choice == "attrs.…":
            field = "attrs." + cols[1].text_input("Attribute key", key="ex_attr_key")
        else:
            field = choice
    hint = {"text": "contains (case-insensitive)", "regex": "RE2 regex", "field": "equals"}[mode]
    text = cols[2].text_input(f"Search ({hint})", key="ex_text")
    return mode, text, field


def render() -> None:
    ctx = filters.context()
    st.title("Explorer")
    search = _search_inputs()
    mode, text, _field = search
    with ui.guard():
        if mode == "regex" and text:
            sql.check_regex(data.cursor(), text)
        total = ctx.query("search_count", ctx.filters, search)
        pages = max(math.ceil(total / PAGE_SIZE), 1)
        page = st.number_input("Page", min_value=1, max_value=pages, value=1, step=1, key="ex_page")
        st.caption(f"{total:,} matching records · page {int(page)} of {pages:,} · newest first")
        rows = ctx.query("search_page", ctx.filters, search, (int(page) - 1, PAGE_SIZE))
        st.dataframe(
            rows,
            hide_index=True,
            key="ex_rows",
            column_config={
                "ts": st.column_config.DatetimeColumn(
                    "time (UTC)", format="YYYY-MM-DD HH:mm:ss.SSS"
                ),
                "location": st.column_config.TextColumn("source:line"),
                "raw": st.column_config.TextColumn("raw line", width="large"),
            },
        )
        _download(ctx, search, total)


def _download(ctx: filters.Context, search: tuple[str, str, str], total: int) -> None:
    """A CSV of the newest matches; the query runs only when the button is pressed."""
    rows = min(total, EXPORT_ROWS)
    f = ctx.filters

    def csv() -> bytes:
        frame = sql.search_export(data.cursor(), ctx.data_dir, f, search, EXPORT_ROWS)
        return frame.to_csv(index=False).encode()

    st.download_button(
        f"Download {rows:,} matching records as CSV" + (" (newest)" if total > rows else ""),
        data=csv,
        file_name=f"loglens-{f.start:%Y%m%dT%H%M}-{f.end:%Y%m%dT%H%M}.csv",
        mime="text/csv",
        key="ex_csv",
        disabled=total == 0,
        icon=":material/download:",
    )


if __name__ == "__main__":
    render()
