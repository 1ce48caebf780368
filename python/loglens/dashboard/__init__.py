"""The loglens Streamlit dashboard: pages over the Parquet datasets of a data directory.

`sql` holds every query (DuckDB, aggregated in SQL), `data` caches them per data directory and
change token, `filters` is the sidebar shared by all pages, `pages/` the page scripts, `app` the
entry point.
"""
