"""The dashboard's entry point: page config, navigation, the shared sidebar, then the chosen page.

`dashboard/app.py` (what `streamlit run` and `loglens dashboard` start) only calls `main()`.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from loglens.dashboard import data, filters, sql, ui

PAGES_DIR = Path(__file__).resolve().parent / "pages"
PAGES = (
    ("overview.py", "Overview", ":material/monitoring:"),
    ("anomalies.py", "Anomalies", ":material/crisis_alert:"),
    ("templates.py", "Templates", ":material/text_snippet:"),
    ("explorer.py", "Explorer", ":material/search:"),
    ("alerts.py", "Alerts", ":material/notifications:"),
    ("pipeline.py", "Pipeline", ":material/conveyor_belt:"),
)


def navigation() -> tuple[st.navigation, dict[str, st.Page]]:
    """The navigation and its pages by url path (`overview`, `explorer`, ...)."""
    pages = {
        name.removesuffix(".py"): st.Page(
            PAGES_DIR / name,
            title=title,
            icon=icon,
            url_path=name.removesuffix(".py"),
            default=i == 0,
        )
        for i, (name, title, icon) in enumerate(PAGES)
    }
    return st.navigation(list(pages.values())), pages


def main(argv: list[str] | None = None) -> None:
    st.set_page_config(page_title="loglens", page_icon=":material/monitoring:", layout="wide")
    data_dir = filters.data_dir_from_args(argv)
    page, pages = navigation()
    if not sql.dataset_present(data_dir, "records"):
        ui.empty_state(data_dir)
        return
    token = data.change_token(data_dir)
    try:
        filters.sidebar(data_dir, token)
    except sql.DatasetError as err:
        st.error(f"Cannot read the **{err.dataset}** dataset at `{err.path}`: {err.reason}")
        return
    filters.auto_refresh(data_dir, token)
    goto = st.session_state.pop(filters.GOTO_KEY, None)
    if goto in pages:  # a jump asked for by a page's button (filters.jump_to_window)
        st.switch_page(pages[goto])
    page.run()
