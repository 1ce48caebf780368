"""Cached access to the queries in `sql`, keyed on the data directory and a cheap change token.

The token is the newest modification time of any directory under the data directory: every writer
renames finished files into place, which touches the directory, so new data invalidates the cache
without reading a single file.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import streamlit as st

from loglens.dashboard import sql

# Results stay cached this long even when the token is unchanged (a safety net, not the mechanism).
CACHE_TTL_SECS = 600


@st.cache_resource(show_spinner=False)
def _connection() -> duckdb.DuckDBPyConnection:
    return sql.connect()


def cursor() -> duckdb.DuckDBPyConnection:
    """A cursor of the shared connection: DuckDB cursors are safe to use from one thread each."""
    return sql.quiet(_connection().cursor())


def change_token(data_dir: Path) -> float:
    """Newest mtime of the data directory and every directory below it (0 when there is none)."""
    newest = 0.0
    for root, _dirs, _files in os.walk(data_dir):
        try:
            newest = max(newest, os.stat(root).st_mtime)
        except OSError:
            continue  # removed while walking: the next token will differ anyway
    return newest


@st.cache_data(ttl=CACHE_TTL_SECS, show_spinner=False, max_entries=512)
def _cached(name: str, data_dir: str, token: float, args: tuple[Any, ...]) -> Any:
    del token  # part of the cache key only
    return getattr(sql, name)(cursor(), Path(data_dir), *args)


def query(name: str, data_dir: Path, token: float, *args: Any) -> Any:
    """Runs `sql.<name>(cursor, data_dir, *args)` through the cache."""
    return _cached(name, str(data_dir), token, tuple(args))


@st.cache_data(ttl=CACHE_TTL_SECS, show_spinner=False)
def run_summaries(data_dir: str, token: float) -> pd.DataFrame:
    del token
    return sql.run_summaries(Path(data_dir))


@st.cache_data(ttl=CACHE_TTL_SECS, show_spinner=False)
def file_formats(data_dir: str, token: float) -> dict[str, str]:
    del token
    return sql.file_formats(Path(data_dir))


def present(data_dir: Path, dataset: str) -> bool:
    return sql.dataset_present(data_dir, dataset)
