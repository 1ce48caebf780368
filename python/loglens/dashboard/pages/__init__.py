"""Page scripts of the dashboard; each runs `render()` when Streamlit executes it as a page."""
