"""Figures the dashboard shows: image heatmaps with per-pixel gene hover, overlays, grids, charts, tables.

Drawing only (plotly; PIL for PNGs): these functions take fitted layouts,
images and scores and draw them; they never compute a layout, a summary of
images (see :mod:`rnaimg_core.images`) or a model. Nothing here imports
streamlit, so every figure is testable on its own.

Conventions
-----------
- Images are ``(C, H, W)`` or ``(n, C, H, W)`` float arrays, as
  :meth:`~rnaimg_core.layout.Layout.transform` returns them; a figure shows
  one channel.
- Heatmaps reverse the y axis so row 0 is at the top, as in the layout.
- Hover text per pixel is built once per layout by
  :meth:`~rnaimg_core.layout.Layout.pixel_labels` and :func:`hover_labels`, and passed
  to the heatmaps as ``customdata``; the ``hovertemplate`` prints row,
  column, genes, region, value and, where given, attribution.
"""

from __future__ import annotations

import io
from typing import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.colors import sample_colorscale
from plotly.subplots import make_subplots

from rnaimg_core.layout import Layout

COLORMAPS = ("Viridis", "Cividis", "Magma", "Inferno", "RdBu_r", "Greys", "Turbo")
DIVERGING = "RdBu_r"


# ---------------------------------------------------------------- images

def hover_labels(gene_labels: np.ndarray, region_labels: np.ndarray | None = None) -> np.ndarray:
    """Per-pixel hover text: the genes, then `` · region`` where there is one.

    Returns a fixed-width str array of the same shape: plotly serialises it
    far faster than an object array, which matters in grids of many images.
    """
    text = np.asarray(gene_labels, dtype=object)
    if region_labels is not None:
        regions = np.asarray(region_labels, dtype=object)
        text = np.where(regions != "", text + " · " + regions, text)
    # no markup here: plotly escapes "<" in JSON, which would triple the size of every grid
    return text.astype(str)


def hovertemplate(with_attribution: bool = False, value_name: str = "value") -> str:
    """Row, column, genes (and region), value and, when given, the attribution score."""
    label = "<b>%{customdata[0]}</b>" if with_attribution else "<b>%{customdata}</b>"
    text = "row %{y}, col %{x}<br>" + label + "<br>" + value_name + ": %{z:.4g}"
    if with_attribution:
        text += "<br>attribution: %{customdata[1]:.4g}"
    return text + "<extra></extra>"


def image_heatmap(image: np.ndarray, labels: np.ndarray, *, attribution: np.ndarray | None = None,
                  empty: np.ndarray | None = None, zrange: tuple[float, float] | None = None,
                  colorscale: str = "Viridis", title: str = "", value_name: str = "value",
                  coloraxis: str | None = None, showscale: bool = True) -> go.Heatmap:
    """One channel as a heatmap trace with gene hover.

    Parameters
    ----------
    image : (H, W) values
    labels : (H, W) hover text from :func:`hover_labels` (genes and region of each pixel)
    attribution : optional (H, W) attribution scores, shown in the hover
    empty : optional (H, W) mask of pixels without genes; drawn blank
    """
    z = np.asarray(image, dtype=np.float64).copy()
    if empty is not None:
        z[empty] = np.nan
    if attribution is None:
        customdata = np.asarray(labels, dtype=str)
    else:
        customdata = np.stack([np.asarray(labels, dtype=object),
                               np.asarray(attribution, dtype=np.float64).round(6).astype(object)], axis=-1)
    kwargs: dict = dict(z=z, customdata=customdata, hovertemplate=hovertemplate(attribution is not None, value_name),
                        name=title, hoverongaps=False)
    if coloraxis:
        kwargs["coloraxis"] = coloraxis
    else:
        kwargs.update(colorscale=colorscale, showscale=showscale)
        if zrange is not None:
            kwargs.update(zmin=zrange[0], zmax=zrange[1])
    return go.Heatmap(**kwargs)


def _square_axes(fig: go.Figure, n: int) -> None:
    for i in range(1, n + 1):
        suffix = "" if i == 1 else str(i)
        fig.layout["yaxis" + suffix].update(autorange="reversed", scaleanchor="x" + suffix, constrain="domain",
                                             showticklabels=False, showgrid=False, zeroline=False)
        fig.layout["xaxis" + suffix].update(constrain="domain", showticklabels=False, showgrid=False, zeroline=False)


def region_outline_traces(layout: Layout, channel: int = 0, *, xref: int = 1) -> list[go.Scatter]:
    """Outlines and labels of the layout's regions on one channel, as line traces."""
    _, h, w = layout.shape
    xs: list = []
    ys: list = []
    label_x, label_y, label_text = [], [], []
    for region in layout.regions:
        if int(region.get("channel", 0)) != channel:
            continue
        if "first" in region:
            r0, c0 = divmod(int(region["first"]), w)
            r1, c1 = divmod(int(region["last"]), w)
            if r0 == r1:
                px = [c0 - .5, c1 + .5, c1 + .5, c0 - .5, c0 - .5]
                py = [r0 - .5, r0 - .5, r0 + .5, r0 + .5, r0 - .5]
            else:
                px = [c0 - .5, w - .5, w - .5, c1 + .5, c1 + .5, -.5, -.5, c0 - .5, c0 - .5]
                py = [r0 - .5, r0 - .5, r1 - .5, r1 - .5, r1 + .5, r1 + .5, r0 + .5, r0 + .5, r0 - .5]
            label_x.append((w - 1) / 2 if r1 > r0 else (c0 + c1) / 2)
            label_y.append((r0 + r1) / 2)
        else:
            (r0, r1), (c0, c1) = region["rows"], region["cols"]
            px = [c0 - .5, c1 + .5, c1 + .5, c0 - .5, c0 - .5]
            py = [r0 - .5, r0 - .5, r1 + .5, r1 + .5, r0 - .5]
            label_x.append((c0 + c1) / 2)
            label_y.append((r0 + r1) / 2)
        xs += px + [None]
        ys += py + [None]
        label_text.append(str(region["name"]))
    axis = "" if xref == 1 else str(xref)
    if not label_text:
        return []
    return [
        go.Scatter(x=xs, y=ys, mode="lines", line=dict(color="white", width=1), hoverinfo="skip",
                   showlegend=False, xaxis="x" + axis, yaxis="y" + axis),
        go.Scatter(x=label_x, y=label_y, mode="text", text=label_text, hoverinfo="skip", showlegend=False,
                   textfont=dict(color="white", size=10), xaxis="x" + axis, yaxis="y" + axis),
    ]


def highlight_trace(pixels: Sequence[tuple[int, int, int]], channel: int, *, name: str = "", xref: int = 1) -> go.Scatter:
    """Open red squares around the given pixels (those on ``channel``)."""
    pts = [(r, c) for ch, r, c in pixels if ch == channel]
    axis = "" if xref == 1 else str(xref)
    return go.Scatter(x=[c for _, c in pts], y=[r for r, _ in pts], mode="markers", name=name,
                      marker=dict(symbol="square-open", size=14, color="red", line=dict(width=3)),
                      hovertemplate=f"{name} (row %{{y}}, col %{{x}})<extra></extra>", showlegend=False,
                      xaxis="x" + axis, yaxis="y" + axis)


def image_figure(image: np.ndarray, labels: np.ndarray, *,
                 attribution: np.ndarray | None = None, empty: np.ndarray | None = None,
                 zrange: tuple[float, float] | None = None, colorscale: str = "Viridis", title: str = "",
                 value_name: str = "value", overlay: list[go.Scatter] | None = None,
                 highlight: go.Scatter | None = None, height: int = 480) -> go.Figure:
    """A single-channel image with gene hover, optional region overlay and highlighted pixels."""
    fig = go.Figure(image_heatmap(image, labels, attribution=attribution,
                                  empty=empty, zrange=zrange, colorscale=colorscale, title=title,
                                  value_name=value_name))
    for trace in overlay or []:
        fig.add_trace(trace)
    if highlight is not None:
        fig.add_trace(highlight)
    _square_axes(fig, 1)
    fig.update_layout(title=dict(text=title, font=dict(size=14)), height=height,
                      margin=dict(l=10, r=10, t=40 if title else 10, b=10), plot_bgcolor="#eeeeee",
                      hovermode="closest")
    return fig


def image_grid_figure(images: Sequence[np.ndarray], titles: Sequence[str], labels: np.ndarray, *,
                      empty: np.ndarray | None = None,
                      zrange: tuple[float, float], colorscale: str = "Viridis", n_cols: int = 4,
                      highlight_pixels: Sequence[tuple[int, int, int]] = (), channel: int = 0,
                      value_name: str = "value", cell_px: int = 220,
                      attributions: Sequence[np.ndarray] | None = None) -> go.Figure:
    """Several (H, W) images in a grid with one shared colour scale and gene hover on every pixel."""
    n = len(images)
    n_cols = max(1, min(n_cols, n))
    n_rows = max(1, int(np.ceil(n / n_cols)))
    fig = make_subplots(rows=n_rows, cols=n_cols, subplot_titles=[str(t) for t in titles],
                        horizontal_spacing=0.02, vertical_spacing=0.08 / max(1, n_rows) + 0.02)
    traces, rows, cols = [], [], []
    for i, image in enumerate(images):
        attribution = None if attributions is None else attributions[i]
        traces.append(image_heatmap(image, labels, empty=empty, attribution=attribution,
                                    value_name=value_name, coloraxis="coloraxis", title=str(titles[i])))
        rows.append(i // n_cols + 1)
        cols.append(i % n_cols + 1)
        if highlight_pixels:
            traces.append(highlight_trace(highlight_pixels, channel, name="search"))
            rows.append(i // n_cols + 1)
            cols.append(i % n_cols + 1)
    fig.add_traces(traces, rows=rows, cols=cols)
    _square_axes(fig, n_rows * n_cols)
    fig.update_layout(coloraxis=dict(colorscale=colorscale, cmin=zrange[0], cmax=zrange[1],
                                     colorbar=dict(title=value_name, thickness=12)),
                      height=max(260, int(cell_px * n_rows + 60)), margin=dict(l=10, r=10, t=40, b=10),
                      plot_bgcolor="#eeeeee", hovermode="closest")
    fig.update_annotations(font_size=11)
    return fig


# ---------------------------------------------------------------- tables and charts

def quality_table(layout: Layout) -> pd.DataFrame:
    """The layout's quality figures as a two-column DataFrame."""
    rows = [(k, v) for k, v in layout.quality.items() if not isinstance(v, (dict, list))]
    return pd.DataFrame(rows, columns=["figure", "value"]).astype({"value": str})


def report_tables(report: dict) -> tuple[pd.DataFrame, pd.DataFrame, dict | None]:
    """The data report (:meth:`Expression.report`) as (classes, gene mapping routes, label join) for display."""
    classes = pd.DataFrame(sorted(report.get("classes", {}).items()), columns=["class", "samples"])
    mapping = report.get("gene_mapping", {})
    routes = pd.DataFrame(sorted(mapping.get("by_route", {}).items(), key=lambda kv: -kv[1]),
                          columns=["matched by", "genes"])
    return classes, routes, report.get("label_join")


def training_curves_figure(history: Sequence[dict]) -> go.Figure:
    """Loss and accuracy per epoch; ``history`` rows hold epoch and any of
    train_loss, val_loss, train_accuracy, val_accuracy."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "accuracy"))
    epochs = [h.get("epoch", i + 1) for i, h in enumerate(history)]
    for col, metric in ((1, "loss"), (2, "accuracy")):
        for split, dash in (("train", None), ("val", "dash")):
            key = f"{split}_{metric}"
            values = [h.get(key) for h in history]
            if any(v is not None for v in values):
                fig.add_trace(go.Scatter(x=epochs, y=values, mode="lines+markers", name=key,
                                         line=dict(dash=dash)), row=1, col=col)
    fig.update_xaxes(title_text="epoch")
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def confusion_figure(matrix: np.ndarray, classes: Sequence[str], title: str = "Confusion matrix") -> go.Figure:
    """Counts of true (rows) vs predicted (columns) classes."""
    matrix = np.asarray(matrix)
    classes = [str(c) for c in classes]
    fig = go.Figure(go.Heatmap(z=matrix, x=classes, y=classes, colorscale="Blues", text=matrix,
                               texttemplate="%{text}", hovertemplate="true %{y}<br>predicted %{x}<br>%{z} samples"
                               "<extra></extra>"))
    fig.update_yaxes(autorange="reversed", title="true class")
    fig.update_xaxes(title="predicted class")
    fig.update_layout(title=title, height=420, margin=dict(l=10, r=10, t=40, b=10))
    return fig


# ---------------------------------------------------------------- files

def png_grid(images: Sequence[np.ndarray], *, zrange: tuple[float, float], colorscale: str = "Viridis",
             n_cols: int = 4, scale: int = 3, gap: int = 4, empty: np.ndarray | None = None) -> bytes:
    """A PNG of several (H, W) images side by side with one colour scale (empty pixels grey)."""
    from PIL import Image

    lut = np.array([[int(v) for v in c[c.index("(") + 1:-1].split(",")[:3]]
                    for c in sample_colorscale(colorscale, np.linspace(0, 1, 256), colortype="rgb")], dtype=np.uint8)
    n = max(1, len(images))
    n_cols = max(1, min(n_cols, n))
    n_rows = int(np.ceil(n / n_cols))
    h, w = np.asarray(images[0]).shape
    canvas = np.full((n_rows * (h * scale + gap), n_cols * (w * scale + gap), 3), 255, dtype=np.uint8)
    lo, hi = zrange
    for i, image in enumerate(images):
        scaled = np.clip((np.asarray(image, dtype=np.float64) - lo) / max(1e-12, hi - lo), 0, 1)
        rgb = lut[np.nan_to_num(scaled * 255).astype(np.uint8)]
        if empty is not None:
            rgb[empty] = 200
        rgb = rgb.repeat(scale, axis=0).repeat(scale, axis=1)
        r, c = divmod(i, n_cols)
        y, x = r * (h * scale + gap), c * (w * scale + gap)
        canvas[y:y + h * scale, x:x + w * scale] = rgb
    buffer = io.BytesIO()
    Image.fromarray(canvas).save(buffer, format="PNG")
    return buffer.getvalue()


def figure_html(fig: go.Figure) -> bytes:
    """An HTML file of a figure (interactive, hover included; loads plotly.js from its CDN to stay small)."""
    return fig.to_html(include_plotlyjs="cdn", full_html=True).encode()
