"""Widgets the pages draw from library parameter specs, and widget values that persist across pages.

A generator's :class:`~rnaimg_core.generators.Param` and a field of
:class:`~rnaimg_core.model.TrainSettings` become one :class:`WidgetSpec`
(kind, label, bounds, a help line naming default and range); :func:`draw`
puts it on the page. Widget keys start with ``w_`` so :func:`keep_widget_values`
can keep them when the user switches pages.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import streamlit as st

from rnaimg_core.generators import Param
from rnaimg_core.layout import Layout
from rnaimg_core.model import TrainSettings

from dashboard import navigation  # noqa: F401  every page imports it through here: turns the old pages/ scheme off

WIDGET_PREFIX = "w_"


@dataclass(frozen=True)
class WidgetSpec:
    """How a page should draw one parameter."""

    kind: str  # "select", "checkbox", "int", "float", "text"
    label: str
    help: str
    options: tuple = ()
    min_value: float | None = None
    max_value: float | None = None
    step: float | None = None


def widget_spec(param: Param, *, label: str | None = None, step: float | None = None) -> WidgetSpec:
    """Widget kind, bounds and a help line naming default and range, for a :class:`Param`.

    Parameters
    ----------
    param : the parameter
    label : shown label (default: the parameter's name with spaces)
    step : step of a float input (default: about a hundredth of its range)
    """
    range_text = ""
    if param.low is not None or param.high is not None:
        lo = "" if param.low is None else f"{param.low:g}"
        hi = "" if param.high is None else f"{param.high:g}"
        range_text = f" Range: {lo} to {hi or 'no limit'}."
    help_text = f"{param.help} Default: {param.default}.{range_text}"
    label = param.name.replace("_", " ") if label is None else label
    automatic = re.search(r"\((0 = [^)]*)\)", param.help)
    if automatic and automatic.group(1) not in label:  # e.g. "height (0 = automatic)": visible, not in a tooltip
        label = f"{label} ({automatic.group(1)})"
    if param.choices is not None:
        return WidgetSpec("select", label, help_text, options=tuple(param.choices))
    kind = param.kind
    if kind == "bool":
        return WidgetSpec("checkbox", label, help_text)
    if kind == "int":
        return WidgetSpec("int", label, help_text,
                          min_value=None if param.low is None else int(param.low),
                          max_value=None if param.high is None else int(param.high), step=1)
    if kind == "float":
        if step is None:
            span = (param.high - param.low) if (param.low is not None and param.high is not None) else None
            step = float(10 ** np.floor(np.log10(span / 100))) if span else 0.01
        return WidgetSpec("float", label, help_text,
                          min_value=None if param.low is None else float(param.low),
                          max_value=None if param.high is None else float(param.high), step=step)
    return WidgetSpec("text", label, help_text)


def setting_spec(name: str, label: str) -> WidgetSpec:
    """The widget of a :class:`TrainSettings` field: its default, bounds and help come from the library.

    A float's step is a tenth of its default's order of magnitude (learning rate 0.002: step 0.0001).
    """
    low, high = TrainSettings.bounds(name) or (None, None)
    value = getattr(TrainSettings(), name)
    param = Param(name, value, TrainSettings.help(name), low=low, high=high)
    step = float(10 ** np.floor(np.log10(abs(value))) / 10) if isinstance(value, float) and value else None
    return widget_spec(param, label=label, step=step)


def setting_widget(name: str, label: str, container: Any = st) -> Any:
    """Draw the widget of training setting ``name`` (key ``w_train_<name>``, seeded with the default)."""
    key = default(f"{WIDGET_PREFIX}train_{name}", getattr(TrainSettings(), name))
    return draw(setting_spec(name, label), key, container)


def draw(spec: WidgetSpec, key: str, container: Any = st) -> Any:
    """Draw ``spec`` in ``container`` (the page, a column, a form) under ``key``; returns its value."""
    if spec.kind == "select":
        return container.selectbox(spec.label, spec.options, key=key, help=spec.help)
    if spec.kind == "checkbox":
        return container.checkbox(spec.label, key=key, help=spec.help)
    if spec.kind in ("int", "float") and spec.max_value is not None:
        value = st.session_state.get(key)
        if isinstance(value, (int, float)) and value > spec.max_value:  # a bound lowered since (memory budget)
            st.session_state[key] = type(value)(spec.max_value)
    if spec.kind == "int":
        return int(container.number_input(spec.label, min_value=spec.min_value, max_value=spec.max_value,
                                          step=1, key=key, help=spec.help))
    if spec.kind == "float":
        return float(container.number_input(spec.label, min_value=spec.min_value, max_value=spec.max_value,
                                            step=spec.step, key=key, help=spec.help, format="%g"))
    return container.text_input(spec.label, key=key, help=spec.help)


def param_key(generator: str, name: str) -> str:
    """Widget key of parameter ``name`` of ``generator`` on the Layout page."""
    return f"{WIDGET_PREFIX}param_{generator}_{name}"


def default(key: str, value: Any) -> str:
    """Seed a widget's value the first time it is drawn; returns the key."""
    if key not in st.session_state:
        st.session_state[key] = value
    return key


def default_choice(key: str, options: list) -> str:
    """Seed a choice widget with ``options[0]``, and again when its value is no longer an option; returns the key."""
    default(key, options[0])
    if st.session_state[key] not in options:
        st.session_state[key] = options[0]
    return key


def keep_widget_values() -> None:
    """Keep widget choices across page switches (Streamlit drops keys of widgets not drawn).

    Only keys starting with ``w_`` are kept; buttons (``w_btn_*``) and file
    uploaders (keys without the prefix) cannot be set and need not persist.
    """
    for key in list(st.session_state.keys()):
        if isinstance(key, str) and key.startswith(WIDGET_PREFIX) and not key.startswith(WIDGET_PREFIX + "btn"):
            st.session_state[key] = st.session_state[key]


def channel_picker(layout: Layout, key: str) -> int:
    """A channel selector, drawn only for multi-channel layouts."""
    n_channels = layout.shape[0]
    if n_channels == 1:
        return 0
    default(key, 0)
    return int(st.selectbox("Channel", list(range(n_channels)), key=key))


SESSION_LAYOUT_PARAMS = ("like",)
"""Generator parameters that name a layout: drawn by :func:`session_layout_choice`, never as free text."""


def session_layout_choice(layouts: dict, label: str, key: str, container: Any = st) -> Layout | str:
    """Pick one of this session's fitted layouts, or upload a layout file; never a server path.

    Parameters
    ----------
    layouts : this session's fitted layouts by cache key (``AppState.layouts``)
    label : the widget label
    key : widget key prefix

    Returns
    -------
    The chosen or uploaded Layout, or ``""`` for none. A bad upload shows its message and gives ``""``.
    """
    from rnaimg_core.errors import InputError

    options = [""] + [k for k in layouts if k != ""]
    default_choice(f"{WIDGET_PREFIX}{key}", options)
    chosen = container.selectbox(
        label, options, key=f"{WIDGET_PREFIX}{key}",
        format_func=lambda k: "(none)" if not k else f"{layouts[k].generator} · {'×'.join(map(str, layouts[k].shape))}",
        help="A layout this session has fitted (Layout page) whose shape and genes-per-pixel counts to copy.")
    # no type filter: Streamlit would raise on another file type; the layout reader names the problem instead
    upload = container.file_uploader(f"{label}: or upload a layout file (.json, .json.gz)", key=f"{key}_upload")
    if upload is not None:
        from rnaimg_core.limits import check

        try:
            check("max_json_bytes", upload.size, upload.name)
            return Layout.from_json(upload.getvalue())
        except InputError as exc:
            container.error(f"{upload.name}: {exc}")
            return ""
    return layouts[chosen] if chosen else ""
