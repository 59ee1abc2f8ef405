"""rnaimg dashboard: ``streamlit run app.py``.

The navigation: the landing page (``home.py``, shown as "Home" rather than the
script's file name) and every page in ``pages/`` in file order (Data, Layout,
Gallery, Train, Explain, ...), each under its name without the number prefix,
at the same addresses as before (``/Data``, ``/Layout`` ...).
"""

from pathlib import Path

import streamlit as st

from dashboard.memory import freeze_startup_objects

freeze_startup_objects()  # once: the collection after each run scans only what runs create (dashboard/memory.py)

HERE = Path(__file__).resolve().parent
pages = [st.Page("home.py", title="Home", default=True)]
pages += [st.Page(f"pages/{path.name}") for path in sorted((HERE / "pages").glob("[0-9]*_*.py"))]
st.navigation(pages).run()
