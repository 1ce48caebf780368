"""loglens, the Python side: readers and the dashboard over a loglens data directory.

The engine is the Rust `loglens` binary; this package only reads the Parquet datasets it writes.
"""
