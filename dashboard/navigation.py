"""Every page runs under ``app.py``'s navigation, also when a fresh server's first visitor opens a page's address.

Streamlit 1.67 decides once per server process whether the app uses the old ``pages/`` folder scheme: it
does so when a ``pages/`` folder sits beside the main script, and keeps doing so until some session has run
``st.navigation``. Until then a session that opens ``/Data`` (a bookmark, a reload) runs
``pages/1_Data.py`` without ``app.py`` and shows the old navigation, headed "app" instead of "Home". This
dashboard always navigates with ``app.py``: importing this module turns the old scheme off for every later
session, and :func:`ensure_app_navigation` reruns a page that was still started the old way.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager
from streamlit.runtime.scriptrunner import get_script_run_ctx


SEEN_KEY = "rnaimg_navigation_seen"  # in st.session_state: this session has run a page before


def turn_off_old_scheme() -> None:
    """Turn Streamlit's ``pages/`` folder scheme off for the runs to come (``st.navigation`` does it too)."""
    PagesManager.uses_pages_directory = False


def started_the_old_way() -> bool:
    """Whether this run's navigation is the old scheme's: the main script itself listed as a page.

    ``app.py``'s navigation lists ``home.py`` and ``pages/``, never ``app.py``.
    """
    ctx = get_script_run_ctx()
    if ctx is None or ctx.pages_manager is None:
        return False
    main = Path(ctx.main_script_path).resolve()
    return any(Path(str(info.get("script_path", ""))).resolve() == main
               for info in ctx.pages_manager.get_pages().values())


def ensure_app_navigation() -> None:
    """First thing on every page: a session's first run, started the old way, runs again under ``app.py``.

    The rerun opens the same page (a page's id is its address in either scheme). Only a session's first
    run is rerun: it carries no click, which a rerun would drop (``AppTest`` starts every run the old
    way, with clicks).
    """
    first_run = not st.session_state.get(SEEN_KEY, False)
    st.session_state[SEEN_KEY] = True
    if first_run and started_the_old_way():
        turn_off_old_scheme()
        st.rerun()


turn_off_old_scheme()  # at the first import by any page: later sessions start under app.py
