"""Processes logs on a local Dask cluster with its dashboard up (http://localhost:8787).

    python run_dask_dashboard.py [python -m loglens process options]

is `python -m loglens process --engine dask --dask-dashboard ...`; with no arguments it runs the
demo's inputs (`make demo` generates them) into demo/loglens-data-dask.
"""

import sys

from loglens.__main__ import main

if __name__ == "__main__":
    args = sys.argv[1:] or ["--config", "demo/loglens.toml", "--data-dir", "demo/loglens-data-dask"]
    sys.exit(main(["process", "--engine", "dask", "--dask-dashboard", *args]))
