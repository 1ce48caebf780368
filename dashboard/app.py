"""Entry point of the loglens dashboard.

    streamlit run dashboard/app.py -- --data-dir DIR   (or LOGLENS_DATA_DIR=DIR)
    loglens dashboard --data-dir DIR

Thin on purpose: the app lives in python/loglens/dashboard, importable here without installing.
"""

import sys
from pathlib import Path

PYTHON_DIR = Path(__file__).resolve().parents[1] / "python"
if str(PYTHON_DIR) not in sys.path:
    sys.path.insert(0, str(PYTHON_DIR))

from loglens.dashboard.app import main  # noqa: E402

main()
