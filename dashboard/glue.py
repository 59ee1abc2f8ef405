"""Streamlit glue the pages share: the session's state, page setup, cached steps.

Everything that computes lives in ``rnaimg_core``; this module only decides
what is cached where:

- ``st.cache_data`` for deterministic steps keyed by content: the demo and
  synthetic data, images of a layout, hover text of a layout. Keys start with
  the data key (``"demo"``, ``"synthetic:..."`` or a hash of the uploaded
  bytes), so a session only ever hits entries for data it holds itself.
- ``st.session_state`` (one :class:`~dashboard.state.AppState`) for the
  session's data, fitted layouts and trained model. Layout fits are cached
  there, not in ``st.cache_data``, because a fit draws a live progress bar and
  Streamlit's cache would replay those progress elements on a cache hit.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import streamlit as st

from rnaimg_core import expression as rx
from rnaimg_core.errors import InputError
from rnaimg_core.generators import get_generator
from rnaimg_core.images import class_difference_images, class_mean_images, write_images
from rnaimg_core.layout import Layout

from dashboard.figures import hover_labels
from dashboard.state import AppState
from dashboard.widgets import keep_widget_values

STATE_KEY = "rnaimg_state"


def get_state() -> AppState:
    """This session's state; loads the demo data on first use so every page has images."""
    if STATE_KEY not in st.session_state:
        st.session_state[STATE_KEY] = AppState()
    state: AppState = st.session_state[STATE_KEY]
    if state.expression is None:
        with st.spinner("Loading the demo data…"):
            state.set_data(demo_expression(), "demo")
    return state


def page_setup(title: str) -> None:
    """First call of every page: wide layout, title, widget memory across pages."""
    st.set_page_config(page_title=f"{title} · rnaimg", page_icon="🧬", layout="wide")
    keep_widget_values()


def start_page(title: str, *, caption: bool = True) -> AppState:
    """The top of every page: set-up, title, this session's state and (by default) the data line."""
    page_setup(title)
    st.title(title)
    state = get_state()
    if caption:
        data_caption(state)
    return state


def current_images(state: AppState) -> tuple[str, Layout, np.ndarray]:
    """The layout chosen on the Layout page (fitted now if needed), its cache key and the images."""
    key, layout = fit_or_stop(state, state.generator)
    return key, layout, layout_images(key, layout, state.expression)


def data_caption(state: AppState) -> None:
    """One line naming the data in use."""
    expr = state.expression
    st.caption(f"Data: **{expr.source}** — {expr.n_samples:,} samples × {expr.n_genes:,} genes, "
               f"{len(expr.classes)} classes. Change it on the Data page.")


# ---------------------------------------------------------------- cached data

@st.cache_data(max_entries=1, show_spinner=False)
def demo_expression() -> rx.Expression:
    """The demo data (:func:`rnaimg_core.expression.load_demo`)."""
    return rx.load_demo()


@st.cache_data(max_entries=4, show_spinner=False)
def synthetic_expression(n_samples: int, n_genes: int, n_classes: int, seed: int) -> rx.Expression:
    """Seeded synthetic data (:func:`rnaimg_core.expression.load_synthetic`)."""
    return rx.load_synthetic(n_samples=n_samples, n_genes=n_genes, n_classes=n_classes, seed=seed)


# ---------------------------------------------------------------- layouts

def fit_layout(state: AppState, name: str, *, container=None) -> tuple[str, Layout]:
    """The session's layout for generator ``name`` with its current parameters.

    Fits it (with a progress bar in ``container``) only when this session has
    not fitted exactly these data and parameters before.

    Raises
    ------
    InputError
        When the generator cannot build a layout for these data.
    """
    params = state.generator_params(name)
    key = state.layout_key(name, params)
    layout = state.layouts.recall(key)
    if layout is not None:
        return key, layout
    cls = get_generator(name)
    place = container if container is not None else st.empty()
    bar = place.progress(0.0, text=f"Fitting {cls.title}…")

    def progress(fraction: float, message: str) -> None:
        bar.progress(float(min(1.0, max(0.0, fraction))), text=f"{cls.title}: {message}" if message else cls.title)

    try:
        layout = cls(**params).fit(state.expression, train_index=state.fit_index, progress=progress)
    finally:
        place.empty()
    return key, state.layouts.remember(key, layout)


def fit_or_stop(state: AppState, name: str, *, container=None) -> tuple[str, Layout]:
    """:func:`fit_layout`, showing the library's message and stopping the page on bad input."""
    try:
        return fit_layout(state, name, container=container)
    except InputError as exc:
        st.error(f"{get_generator(name).title}: {exc}")
        st.stop()
        raise  # unreachable; st.stop raises


@st.cache_data(max_entries=12, show_spinner=False)
def layout_images(key: str, _layout: Layout, _expression: rx.Expression) -> np.ndarray:
    """Images of every sample under the layout ``key``, shape (n, C, H, W)."""
    return _layout.transform(_expression.values, _expression.gene_ids, device="cpu")


@st.cache_data(max_entries=12, show_spinner=False)
def hover_text(key: str, _layout: Layout) -> tuple[np.ndarray, np.ndarray]:
    """(hover labels, empty mask) per pixel, each (C, H, W), built once per layout."""
    return hover_labels(_layout.pixel_labels(), _layout.region_grid()), _layout.genes_per_pixel == 0


@st.cache_data(max_entries=12, show_spinner=False)
def placed_symbols(key: str, _layout: Layout) -> list[str]:
    """Sorted distinct display names of the placed genes, for gene search boxes."""
    names = _layout.display_names[_layout.placed_genes()]
    return sorted(set(names.tolist()), key=str.upper)


@st.cache_data(max_entries=12, show_spinner=False)
def class_images(key: str, _images: np.ndarray, labels: tuple[str, ...]) -> dict:
    """Class means and class-minus-rest images of the layout ``key``: {"classes", "means", "diffs"}."""
    classes, means = class_mean_images(_images, labels)
    _, diffs = class_difference_images(_images, labels)
    return {"classes": classes, "means": means, "diffs": diffs}


@st.cache_data(max_entries=4, show_spinner=False)
def images_file(key: str, _images: np.ndarray, _layout: Layout, sample_ids: tuple, labels: tuple | None) -> bytes:
    """The images file ``rnaimg train`` reads (:func:`rnaimg_core.images.write_images`), as bytes."""
    with tempfile.TemporaryDirectory(prefix="rnaimg-images-") as tmp:
        path = write_images(Path(tmp) / "images.npz", _images, list(sample_ids),
                            None if labels is None else list(labels), _layout)
        return path.read_bytes()
