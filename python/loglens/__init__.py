"""loglens, the Python side: the engine's bindings (`loglens._engine`, a PyO3 module over Arrow),
`python -m loglens process --engine local|dask|ray` (loglens.distributed) and the dashboard.

The engine is Rust; `make engine-py` (maturin) builds and installs this package into the venv.
"""
