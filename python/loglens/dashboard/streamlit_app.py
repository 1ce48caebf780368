"""What `python -m loglens dashboard` hands to `streamlit run`: the installed package's app
(the checkout's `dashboard/app.py` does the same from a source tree)."""

from loglens.dashboard.app import main

main()
