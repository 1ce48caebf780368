"""Small display helpers shared by the pages: dataset errors, empty states, KPI formatting.

A page never shows a traceback for bad data: `guard()` turns a DatasetError into a message naming
the dataset and its path.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import streamlit as st

from loglens.dashboard import sql

# Which command writes each dataset (docs/datasets.md owners).
FILLED_BY = {
    "records": "loglens process --config loglens.toml --data-dir {dir}",
    "unparsed": "loglens process --config loglens.toml --data-dir {dir}",
    "templates": "loglens process --data-dir {dir}  (template mining)",
    "metrics": "loglens detect --data-dir {dir}",
    "anomalies": "loglens detect --data-dir {dir}",
    "incidents": "loglens detect --data-dir {dir}",
    "alerts": "loglens alert --data-dir {dir}",
}


@contextmanager
def guard() -> Iterator[None]:
    """Shows a DatasetError or SearchError as a message instead of a traceback."""
    try:
        yield
    except sql.DatasetError as err:
        st.error(f"Cannot read the **{err.dataset}** dataset at `{err.path}`: {err.reason}")
    except sql.SearchError as err:
        st.error(str(err))


def missing(dataset: str, data_dir: Path) -> None:
    """Explains that a dataset is not there yet and which command writes it."""
    command = FILLED_BY[dataset].format(dir=data_dir)
    st.info(
        f"No **{dataset}** dataset yet "
        f"(`{sql.dataset_dir(data_dir, dataset)}` has no Parquet file). "
        f"It is written by `{command}`."
    )


def empty_state(data_dir: Path) -> None:
    """The whole-app message when there are no records at all."""
    st.title("loglens")
    where = "does not exist" if not data_dir.exists() else "has no records yet"
    st.warning(f"The data directory `{data_dir}` {where}.")
    st.markdown(
        "Fill it with:\n\n"
        f"```sh\nloglens process --config loglens.toml --data-dir {data_dir}\n```\n"
        "or try the dashboard on generated demo data:\n\n"
        "```sh\nmake demo\nloglens dashboard --data-dir demo/loglens-data\n```\n"
        "(equivalently `streamlit run dashboard/app.py -- --data-dir demo/loglens-data`)."
    )


def is_missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def count(value: object) -> str:
    return "—" if is_missing(value) else f"{int(value):,}"


def percent(value: object) -> str:
    return "—" if is_missing(value) else f"{float(value):.2%}"


def millis(value: object) -> str:
    return "—" if is_missing(value) else f"{float(value):,.1f} ms"


def delta(current: object, previous: object, fmt: str = "{:+,.0f}") -> str | None:
    """The change vs the previous period, or None when either side is unknown."""
    if is_missing(current) or is_missing(previous):
        return None
    return fmt.format(float(current) - float(previous))
