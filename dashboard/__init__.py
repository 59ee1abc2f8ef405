"""The dashboard's own code, beside ``app.py`` and ``pages/``; the library (``rnaimg_core``) never imports it.

- :mod:`dashboard.state`: what one browser session holds (:class:`~dashboard.state.AppState`) and its cache keys
- :mod:`dashboard.training`: a training run in a background thread, the trained model as a zip
- :mod:`dashboard.widgets`: widget specs of generator parameters and training settings, persistent widgets
- :mod:`dashboard.figures`: plotly figures and PNGs (drawing only)
- :mod:`dashboard.workspace`: a session's work kept server-side under a private URL token, so a reload keeps it
- :mod:`dashboard.glue`: Streamlit glue the pages share: the session's state, page setup, cached steps
- :mod:`dashboard.navigation`: every page runs under ``app.py``'s navigation, also when opened by its address

``state``, ``training``, ``workspace`` and ``figures`` import no streamlit, so they are tested like plain Python.
``streamlit run app.py`` puts this folder's parent on ``sys.path``, so pages ``from dashboard import ...``.
"""
