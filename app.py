"""rnaimg dashboard: ``streamlit run app.py``.

The router: page configuration, the navigation menu, and keeping widget
choices when the user moves between pages. Each page lives in ``pages/``.
"""

import streamlit as st

from pages.common import keep_widget_values

st.set_page_config(page_title="rnaimg: expression as images", page_icon="🧬", layout="wide")
keep_widget_values()

PAGES = [
    st.Page("pages/home.py", title="Home", icon="🏠", default=True),
    st.Page("pages/data.py", title="Data", icon="📄", url_path="data"),
    st.Page("pages/layout.py", title="Layout", icon="🧩", url_path="layout"),
    st.Page("pages/gallery.py", title="Gallery", icon="🖼️", url_path="gallery"),
    st.Page("pages/train.py", title="Train", icon="🏋️", url_path="train"),
    st.Page("pages/explain.py", title="Explain", icon="🔍", url_path="explain"),
]

st.navigation(PAGES).run()
