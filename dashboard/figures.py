"""Figures the dashboard shows: image heatmaps with per-pixel gene hover, overlays, grids, charts, tables.

Drawing only (plotly): these functions take fitted layouts,
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

from typing import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from rnaimg_core.layout import Layout, pixel_coordinates

COLORMAPS = ("Viridis", "Cividis", "Magma", "Inferno", "RdBu_r", "Greys", "Turbo")
# One pair of colour maps for every page: signed values (z-scores, differences, signed
# attributions) on a diverging map centred on 0, non-negative values on a sequential one.
DIVERGING = "RdBu_r"
SEQUENTIAL = "Viridis"
# Region labels: near-black text on a near-white box, legible over any colour of either map.
LABEL_TEXT = "#111111"
LABEL_BOX = "rgba(255,255,255,0.88)"
OUTLINE = "rgba(40,40,40,0.75)"
EMPTY_PIXEL = "#eeeeee"  # the plot background, seen through pixels that hold no gene


def colorscale_for(signed: bool) -> str:
    """The house colour map: diverging for signed values, sequential for non-negative ones."""
    return DIVERGING if signed else SEQUENTIAL


def layout_values_signed(layout: Layout, images: np.ndarray | None = None) -> bool:
    """Whether a layout's image values are signed: the rule for its colour map (see :func:`colorscale_for`).

    The layout's own fitted normalisation decides, not the Data page's current choice: per-gene
    z-scores centre on 0 (signed: diverging map, range symmetric about 0); ``minmax`` (0-1 per gene)
    and ``sample_max`` (Lyu & Haque: 0-1 per sample) are not (sequential map); with ``none`` the
    values are as given, signed only where ``images`` (the layout's images) hold a negative value.
    """
    scale = layout.normalization.scale
    if scale == "zscore":
        return True
    if scale == "none" and images is not None and np.size(images):
        return bool(np.nanmin(images) < 0)
    return False


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
    return go.Heatmap(**_heatmap_props(image, labels, attribution=attribution, empty=empty, zrange=zrange,
                                       colorscale=colorscale, title=title, value_name=value_name,
                                       coloraxis=coloraxis, showscale=showscale))


def _heatmap_props(image: np.ndarray, labels: np.ndarray, *, attribution: np.ndarray | None = None,
                   empty: np.ndarray | None = None, zrange: tuple[float, float] | None = None,
                   colorscale: str = "Viridis", title: str = "", value_name: str = "value",
                   coloraxis: str | None = None, showscale: bool = True) -> dict:
    """The properties of :func:`image_heatmap`'s trace, as a dict (for figures validated once as a whole)."""
    # + 0.0 turns -0.0 into 0.0: hover never reads "-0"; float32 (7 digits, more than the hover shows) halves
    # what plotly sends of each image (numpy arrays travel as binary)
    z = np.asarray(image, dtype=np.float32) + np.float32(0.0)
    if empty is not None:
        z[empty] = np.nan
    if attribution is None:
        customdata = np.asarray(labels, dtype=str)
    else:
        customdata = np.stack([np.asarray(labels, dtype=object),
                               (np.asarray(attribution, dtype=np.float64).round(6) + 0.0).astype(object)], axis=-1)
    kwargs: dict = dict(z=z, customdata=customdata, hovertemplate=hovertemplate(attribution is not None, value_name),
                        name=title, hoverongaps=False)
    if coloraxis:
        kwargs["coloraxis"] = coloraxis
    else:
        kwargs.update(colorscale=colorscale, showscale=showscale)
        if zrange is not None:
            kwargs.update(zmin=zrange[0], zmax=zrange[1])
    return kwargs


def _square_axis_props(*, ticks: bool = False) -> tuple[dict, dict]:
    """(x axis, y axis) properties of an image: square pixels, row 0 on top, the image at the top of a taller
    cell (under its title, not centred below it); ``ticks`` numbers rows and columns (else no tick marks).
    The y axis still needs ``scaleanchor`` naming its x axis."""
    marks = "outside" if ticks else ""
    common = dict(showticklabels=ticks, ticks=marks, showgrid=False, zeroline=False, constrain="domain")
    return (dict(common, title=dict(text="column" if ticks else None, standoff=2)),
            dict(common, autorange="reversed", constraintoward="top",
                 title=dict(text="row" if ticks else None, standoff=2)))


def _square_axes(fig: go.Figure, n: int, *, ticks: bool = False) -> None:
    """Square pixels, row 0 on top, on the figure's first ``n`` subplots (see :func:`_square_axis_props`)."""
    x_axis, y_axis = _square_axis_props(ticks=ticks)
    props = {}
    for i in range(1, n + 1):
        suffix = "" if i == 1 else str(i)
        props["xaxis" + suffix] = x_axis
        props["yaxis" + suffix] = dict(y_axis, scaleanchor="x" + suffix)
    fig.update_layout(**props)


def _region_shapes(layout: Layout, channel: int):
    """(name, outline x, outline y, label x, label y) of each region on ``channel``."""
    _, h, w = layout.shape
    for region in layout.regions:
        if int(region.get("channel", 0)) != channel:
            continue
        if "first" in region:
            _, (r0, r1), (c0, c1) = pixel_coordinates((1, h, w), [int(region["first"]), int(region["last"])])
            r0, r1, c0, c1 = int(r0), int(r1), int(c0), int(c1)
            if r0 == r1:
                px = [c0 - .5, c1 + .5, c1 + .5, c0 - .5, c0 - .5]
                py = [r0 - .5, r0 - .5, r0 + .5, r0 + .5, r0 - .5]
            else:
                px = [c0 - .5, w - .5, w - .5, c1 + .5, c1 + .5, -.5, -.5, c0 - .5, c0 - .5]
                py = [r0 - .5, r0 - .5, r1 - .5, r1 - .5, r1 + .5, r1 + .5, r0 + .5, r0 + .5, r0 - .5]
            label_x = (w - 1) / 2 if r1 > r0 else (c0 + c1) / 2
            label_y = (r0 + r1) / 2
        else:
            (r0, r1), (c0, c1) = region["rows"], region["cols"]
            px = [c0 - .5, c1 + .5, c1 + .5, c0 - .5, c0 - .5]
            py = [r0 - .5, r0 - .5, r1 + .5, r1 + .5, r0 - .5]
            label_x, label_y = (c0 + c1) / 2, (r0 + r1) / 2
        yield str(region["name"]), px, py, label_x, label_y


def region_outline_traces(layout: Layout, channel: int = 0, *, xref: int = 1) -> list[go.Scatter]:
    """Outlines of the layout's regions on one channel, as one dark line trace (empty list without regions)."""
    xs: list = []
    ys: list = []
    for _, px, py, _, _ in _region_shapes(layout, channel):
        xs += px + [None]
        ys += py + [None]
    if not xs:
        return []
    axis = "" if xref == 1 else str(xref)
    return [go.Scatter(x=xs, y=ys, mode="lines", line=dict(color=OUTLINE, width=1), hoverinfo="skip",
                       showlegend=False, xaxis="x" + axis, yaxis="y" + axis)]


# Region labels are placed in screen pixels: a label's box is (about) this wide per character and this tall
# per point of font size, plus the box's padding. Generous, so an estimate never lets two boxes touch.
CHAR_WIDTH_EM = 0.56
LINE_HEIGHT_EM = 1.3
LABEL_PAD_PX = 4
MIN_LABEL_FONT = 8
# Width of the main column the charts stretch over at a 1400-px-wide window with the sidebar open: what a
# figure assumes when the caller does not say how wide it will be drawn.
ASSUMED_CHART_WIDTH_PX = 860
# Bottom margin of a clickable image: column numbers, the "column" title, then its horizontal colour bar.
COLORBAR_MARGIN_PX = 80
# Width an image grid's vertical colour bar (with its title) takes from the images.
GRID_COLORBAR_PX = 90


def _region_cells(layout: Layout, region: dict) -> list[tuple[int, int, int]]:
    """(row, first col, last col) of each row a region covers."""
    _, h, w = layout.shape
    if "first" in region:
        _, (r0, r1), (c0, c1) = pixel_coordinates((1, h, w), [int(region["first"]), int(region["last"])])
        r0, r1, c0, c1 = int(r0), int(r1), int(c0), int(c1)
        return [(r, c0 if r == r0 else 0, c1 if r == r1 else w - 1) for r in range(r0, r1 + 1)]
    (r0, r1), (c0, c1) = region["rows"], region["cols"]
    return [(r, int(c0), int(c1)) for r in range(int(r0), int(r1) + 1)]


def _label_candidates(spans: list[tuple[int, int, int]], box_w: float, box_h: float) -> list[tuple[float, float]]:
    """Label centres for a region, best first: on its middle rows, in the middle of each row, then sideways
    in alternating steps of half a label (so labels of small neighbouring regions take turns left and right);
    last, just above and just below it, the box still covering the region's edge row."""
    full = [s for s in spans if s[2] - s[1] == max(t[2] - t[1] for t in spans)]
    rows = full if len(spans) > 2 else spans
    middle = (rows[0][0] + rows[-1][0]) / 2
    ys = [middle] + sorted({float(r) for r, _, _ in rows} - {middle}, key=lambda r: abs(r - middle))
    step = max(1.0, box_w / 2)
    out = []
    for y in ys:
        r = int(round(y))
        _, c0, c1 = min(spans, key=lambda s: abs(s[0] - r))
        centre = (c0 + c1) / 2
        xs = [centre]
        for k in range(1, 40):
            for x in (centre - k * step, centre + k * step):
                if c0 - 0.5 <= x <= c1 + 0.5:
                    xs.append(x)
            if centre - k * step < c0 and centre + k * step > c1:
                break
        out += [(x, y) for x in xs]
    for r, y in ((spans[0][0], spans[0][0] + 0.5 - box_h / 2), (spans[-1][0], spans[-1][0] - 0.5 + box_h / 2)):
        _, c0, c1 = next(s for s in spans if s[0] == r)
        out += [(x, y) for x, _ in out if c0 - 0.5 <= x <= c1 + 0.5]
    return out


def _on_region(spans: list[tuple[int, int, int]], x: float, y: float) -> bool:
    """Whether a label centred at (x, y) marks the region given by its row spans: over one of its columns and
    at most one row off one of its rows."""
    return any(abs(y - r) <= 1.0 and c0 - 0.5 <= x <= c1 + 0.5 for r, c0, c1 in spans)


def _shorter(text: str, short: bool) -> list[str]:
    """The forms a label may take, longest first: the name, without ``chr``, cut to fewer characters."""
    forms = [text]
    if text.startswith("chr") and len(text) > 3:
        forms.append(text[3:])
    if short:
        forms = forms[-1:]
    base = forms[-1]
    for n in (24, 16, 10):
        if len(base) > n + 2:
            forms.append(base[:n].rstrip() + "…")
    return forms


def region_label_annotations(layout: Layout, channel: int = 0, *, xref: int = 1, short: bool = False,
                             font_size: int = 11, px_per_cell: float | None = None) -> list[dict]:
    """Region names (chromosomes, arms, GO blocks) as annotations: dark text on a light box, none overlapping.

    Labels are placed at the size the image is drawn, largest region first: each at its region's centre
    where that is free, else moved sideways or to another row of the region (small neighbouring regions
    take turns left and right), else smaller, shortened (``chr13`` → ``13``, long GO terms cut with "…"),
    else left out: its name stays in every pixel's hover text. No label leaves the image.

    Parameters
    ----------
    short : start from short names (``chr19`` → ``19``), for small thumbnails
    font_size : largest font size in px; labels may shrink to ``MIN_LABEL_FONT`` to fit
    px_per_cell : screen px per image pixel as drawn; default: the image drawn 480 px wide
    """
    axis = "" if xref == 1 else str(xref)
    _, h, w = layout.shape
    scale = float(px_per_cell) if px_per_cell else 480.0 / max(h, w)
    regions = [r for r in layout.regions if int(r.get("channel", 0)) == channel and r.get("level", 0) == 0]
    # nested blocks (GO treemap, level > 0) are outlined and named in the hover, not labelled
    spans = [_region_cells(layout, r) for r in regions]
    # smallest region first: it has the fewest places for its label; a large one finds room around it
    order = sorted(range(len(regions)), key=lambda i: sum(c1 - c0 + 1 for _, c0, c1 in spans[i]))
    sizes = sorted({font_size, max(MIN_LABEL_FONT, font_size - 2), MIN_LABEL_FONT}, reverse=True)
    placed: list[tuple[float, float, float, float]] = []  # (x0, x1, y0, y1) in data units, 1 px apart
    out = []
    for i in order:
        name = str(regions[i]["name"])
        cells = spans[i]
        top, bottom = cells[0][0] - 0.5, cells[-1][0] + 0.5
        left, right = min(c0 for _, c0, _ in cells) - 0.5, max(c1 for _, _, c1 in cells) + 0.5
        rectangle = "first" not in regions[i]
        found = None
        # a block (GO treemap) first tries to keep its label inside itself; a band (chromosome) may overhang
        attempts = [(text, size, inside) for text in _shorter(name, short)
                    for inside in ((True, False) if rectangle else (False,)) for size in sizes]
        for text, size, inside in attempts:
            box_w = (CHAR_WIDTH_EM * size * len(text) + LABEL_PAD_PX) / scale
            box_h = (LINE_HEIGHT_EM * size + LABEL_PAD_PX) / scale
            if box_w > w or box_h > h or (inside and (box_w > right - left or box_h > bottom - top)):
                continue
            gap = 1.0 / scale
            for x, y in _label_candidates(cells, box_w, box_h):
                # inside the image (and, for ``inside``, the block)
                lo_x, hi_x = (left, right) if inside else (-0.5, w - 0.5)
                lo_y, hi_y = (top, bottom) if inside else (-0.5, h - 0.5)
                x = min(max(x, lo_x + box_w / 2), hi_x - box_w / 2)
                y = min(max(y, lo_y + box_h / 2), hi_y - box_h / 2)
                if not rectangle and not _on_region(cells, x, y):  # a band's label stays on its band, never
                    # pushed by the image's edge over another chromosome's genes
                    continue
                box = (x - box_w / 2, x + box_w / 2, y - box_h / 2, y + box_h / 2)
                if all(box[1] + gap <= p[0] or p[1] + gap <= box[0] or box[3] + gap <= p[2] or p[3] + gap <= box[2]
                       for p in placed):
                    found = (text, size, x, y, box)
                    break
            if found:
                break
        if found is None:
            continue
        text, size, x, y, box = found
        placed.append(box)
        out.append(dict(x=x, y=y, xref="x" + axis, yref="y" + axis, text=text, showarrow=False,
                        font=dict(color=LABEL_TEXT, size=size), bgcolor=LABEL_BOX, borderpad=1,
                        bordercolor=OUTLINE, borderwidth=0.5, name="region"))
    return out


def region_overlay(layout: Layout, channel: int = 0, *, xref: int = 1, labels: bool = True, short: bool = False,
                   font_size: int = 11, px_per_cell: float | None = None) -> tuple[list[go.Scatter], list[dict]]:
    """(outline traces, label annotation dicts) of the layout's regions on subplot ``xref``: what
    :func:`add_regions` draws, for figures that add many at once (see :func:`set_annotations`)."""
    traces = region_outline_traces(layout, channel, xref=xref)
    notes = region_label_annotations(layout, channel, xref=xref, short=short, font_size=font_size,
                                     px_per_cell=px_per_cell) if labels else []
    return traces, notes


def set_annotations(fig: go.Figure, annotations: Sequence[dict]) -> go.Figure:
    """Append ``annotations`` (dicts) to the figure's in one assignment.

    Plotly re-validates the whole annotation list on every ``fig.add_annotation``, so adding labels one
    by one is quadratic (a Gallery grid with region labels took 39 s that way); one assignment validates
    each annotation once.
    """
    if annotations:
        fig.update_layout(annotations=list(fig.layout.annotations) + list(annotations))
    return fig


def add_regions(fig: go.Figure, layout: Layout, channel: int = 0, *, xref: int = 1, labels: bool = True,
                short: bool = False, font_size: int = 11, px_per_cell: float | None = None) -> go.Figure:
    """Draw the layout's region outlines (and, with ``labels``, their names, placed for an image drawn at
    ``px_per_cell`` screen px per pixel: see :func:`region_label_annotations`) on subplot ``xref``."""
    traces, notes = region_overlay(layout, channel, xref=xref, labels=labels, short=short, font_size=font_size,
                                   px_per_cell=px_per_cell)
    fig.add_traces(traces)
    return set_annotations(fig, notes)


def drawn_px_per_cell(shape: tuple[int, int], height_px: float, width_px: float) -> float:
    """Screen px per image pixel of an (H, W) image drawn with square pixels in a plot area of that size."""
    h, w = shape
    return max(0.1, min(height_px / h, width_px / w))


def pixel_click_trace(image: np.ndarray, labels: np.ndarray, *, attribution: np.ndarray | None = None,
                      value_name: str = "value") -> go.Scatter:
    """One invisible marker per pixel, carrying hover text and (row, col) for clicks.

    Plotly heatmaps hand no points to Streamlit's ``on_select``; scatter points
    do, so this layer makes pixels clickable. It also carries the hover text
    (the heatmap's own hover is switched off), so a tooltip and a click always
    name the same pixel.
    """
    h, w = np.asarray(image).shape
    _, rows, cols = pixel_coordinates((1, h, w), np.arange(h * w))
    values = np.asarray(image, dtype=np.float64).ravel()
    custom = [rows, cols, np.asarray(labels, dtype=object).ravel(),
              np.where(np.isnan(values), None, values.round(6) + 0.0).astype(object)]
    template = "row %{customdata[0]}, col %{customdata[1]}<br><b>%{customdata[2]}</b><br>" \
               + value_name + ": %{customdata[3]:.4g}"
    if attribution is not None:
        custom.append((np.asarray(attribution, dtype=np.float64).ravel().round(6) + 0.0).astype(object))
        template += "<br>attribution: %{customdata[4]:.4g}"
    # maxdisplayed=1: plotly draws one marker (not one SVG element per pixel: 9,604 of them cost the browser
    # seconds at every draw) while hover and click still find every point (they read the data, not the marks)
    return go.Scatter(x=cols, y=rows, mode="markers", customdata=np.stack(custom, axis=-1),
                      marker=dict(size=3, opacity=0, color="black", maxdisplayed=1),
                      hovertemplate=template + "<extra></extra>",
                      showlegend=False, name="pixels", unselected=dict(marker=dict(opacity=0)),
                      selected=dict(marker=dict(opacity=0)))


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
                 zrange: tuple[float, float] | None = None, colorscale: str = SEQUENTIAL, title: str = "",
                 value_name: str = "value", overlay: list[go.Scatter] | None = None,
                 highlight: go.Scatter | None = None, height: int = 480,
                 regions: tuple[Layout, int] | None = None, region_labels: bool = True,
                 clickable: bool = False, width: int | None = None) -> go.Figure:
    """A single-channel image with gene hover, row/column ticks, region outlines and labels, highlighted pixels.

    Parameters
    ----------
    regions : (layout, channel) whose regions are outlined and, with ``region_labels``, named
    clickable : add :func:`pixel_click_trace`, so ``st.plotly_chart(on_select=...)`` returns the clicked pixel
    width : how wide (px) the chart will be drawn, for placing region labels so they do not collide;
        default: as wide as it is tall, at most :data:`ASSUMED_CHART_WIDTH_PX`
    """
    heatmap = image_heatmap(image, labels, attribution=attribution, empty=empty, zrange=zrange,
                            colorscale=colorscale, title=title, value_name=value_name)
    if clickable:
        # Scatter hover ties within 3 screen px of a point: give the image the width the colour bar took,
        # so each pixel spans more screen px and the nearest marker is the pixel under the mouse.
        # The bar sits in the bottom margin, below the column numbers and the axis title, never over them.
        heatmap.update(hoverinfo="skip", hovertemplate=None,
                       colorbar=dict(orientation="h", yref="container", y=0.0, yanchor="bottom", thickness=10,
                                     len=0.9, ypad=6))
    margin = dict(l=40, r=10, t=40 if title else 10, b=COLORBAR_MARGIN_PX if clickable else 30)
    fig = go.Figure(heatmap)
    for trace in overlay or []:
        fig.add_trace(trace)
    if regions is not None:
        h, w = np.asarray(image).shape
        colorbar_px = 0 if clickable else 90
        plot_w = (width if width else min(height, ASSUMED_CHART_WIDTH_PX)) - margin["l"] - margin["r"] - colorbar_px
        plot_h = height - margin["t"] - margin["b"]
        add_regions(fig, regions[0], regions[1], labels=region_labels,
                    px_per_cell=drawn_px_per_cell((h, w), plot_h, plot_w))
    if highlight is not None:
        fig.add_trace(highlight)
    if clickable:
        fig.add_trace(pixel_click_trace(image, labels, attribution=attribution, value_name=value_name))
    _square_axes(fig, 1, ticks=True)
    fig.update_layout(title=dict(text=title, font=dict(size=14)), height=height,
                      margin=margin, plot_bgcolor=EMPTY_PIXEL,
                      hovermode="closest", clickmode="event+select" if clickable else None)
    return fig


def gene_flow_figure(image: np.ndarray, labels: np.ndarray, genes: Sequence[tuple[str, float, int, int]], *,
                     empty: np.ndarray | None = None, zrange: tuple[float, float] | None = None,
                     colorscale: str = DIVERGING, value_name: str = "value", title: str = "",
                     regions: tuple[Layout, int] | None = None, height: int = 520) -> go.Figure:
    """How an image is made: a few named genes, with their values, each with an arrow to its pixel.

    Parameters
    ----------
    image : (H, W) one sample's image
    genes : (symbol, value, row, col) of the genes to show, listed top to bottom on the left
    """
    h, w = np.asarray(image).shape
    fig = image_figure(image, labels, empty=empty, zrange=zrange, colorscale=colorscale, value_name=value_name,
                       title=title, regions=regions, region_labels=False, height=height)
    # the gene list sits left of the image, in the same data coordinates, so arrows are plain annotations;
    # close to it, on white, so the picture is the genes and their pixels with no empty band
    left = -0.4 * w
    start = left - 0.22 * w
    fig.add_shape(type="rect", x0=-0.5, x1=w - 0.5, y0=-0.5, y1=h - 0.5, xref="x", yref="y", layer="below",
                  line=dict(width=0), fillcolor=EMPTY_PIXEL)  # pixels without genes stay grey
    fig.update_layout(plot_bgcolor="white")
    steps = np.linspace(0.08 * h, 0.92 * h, num=max(1, len(genes)))
    arrows, marks = [], []
    for (symbol, value, row, col), y in zip(genes, steps):
        arrows.append(dict(x=col, y=row, ax=left, ay=float(y), xref="x", yref="y", axref="x", ayref="y",
                           text=f"<b>{symbol}</b>  {value:+.2f}", showarrow=True, arrowhead=2, arrowwidth=1.5,
                           arrowcolor=LABEL_TEXT, font=dict(color=LABEL_TEXT, size=13), bgcolor=LABEL_BOX,
                           bordercolor=OUTLINE, borderwidth=0.5, xanchor="center"))
        marks.append(go.Scatter(x=[col], y=[row], mode="markers", hoverinfo="skip", showlegend=False,
                                marker=dict(symbol="square-open", size=12, color=LABEL_TEXT, line=dict(width=2))))
    set_annotations(fig, arrows)
    fig.add_traces(marks)
    fig.update_xaxes(range=[start, w - 0.5], showticklabels=False, ticks="", title=None)
    # the image's own rows, no padding band above or below it (markers would add one)
    fig.update_yaxes(range=[h - 0.5, -0.5], autorange=False, showticklabels=False, ticks="", title=None)
    fig.update_layout(margin=dict(l=0, r=10, t=40 if title else 10, b=10))
    return fig


def image_grid_figure(images: Sequence[np.ndarray], titles: Sequence[str], labels: np.ndarray, *,
                      empty: np.ndarray | None = None,
                      zrange: tuple[float, float], colorscale: str = SEQUENTIAL, n_cols: int = 4,
                      highlight_pixels: Sequence[tuple[int, int, int]] = (), channel: int = 0,
                      value_name: str = "value", cell_px: int = 220,
                      attributions: Sequence[np.ndarray] | None = None,
                      regions: Layout | None = None, region_labels: bool = True) -> go.Figure:
    """Several (H, W) images in a grid with one shared colour scale and gene hover on every pixel.

    ``regions``: the layout whose regions (on ``channel``) are outlined, and with ``region_labels`` named
    (short names, e.g. ``19`` for chr19), in every image.
    """
    n = len(images)
    n_cols = max(1, min(n_cols, n))
    n_rows = max(1, int(np.ceil(n / n_cols)))
    # a row is no taller than an image as wide as its column, plus its title: no gap under the titles
    cell_w = (ASSUMED_CHART_WIDTH_PX - 20 - GRID_COLORBAR_PX) * (1 - 0.02 * (n_cols - 1)) / n_cols
    height = max(260, int(min(cell_px, cell_w + 52) * n_rows + 60))
    # titles may take two lines ("class<br>sample"): keep about 48 px between rows for them
    spacing = min(0.3, 48 / height) if n_rows > 1 else 0.02
    # Built as plain dicts and validated once by one go.Figure(...): adding 18 heatmaps, 36 axes and hundreds
    # of region labels one call at a time re-validates and copies the figure at every step (seconds per grid).
    layout = make_subplots(rows=n_rows, cols=n_cols, subplot_titles=[str(t) for t in titles],
                           horizontal_spacing=0.02, vertical_spacing=spacing).layout.to_plotly_json()
    for title in layout.get("annotations", []):
        title["font"] = dict(size=13)  # subplot titles; region labels keep their own size
    x_axis, y_axis = _square_axis_props(ticks=False)
    for i in range(1, n_rows * n_cols + 1):
        suffix = "" if i == 1 else str(i)
        layout["xaxis" + suffix].update(x_axis)
        layout["yaxis" + suffix].update(y_axis, scaleanchor="x" + suffix)
    data = []
    search_marks = highlight_trace(highlight_pixels, channel, name="search").to_plotly_json() if highlight_pixels else {}
    for i, image in enumerate(images):
        axes = dict(xaxis="x" + ("" if i == 0 else str(i + 1)), yaxis="y" + ("" if i == 0 else str(i + 1)))
        attribution = None if attributions is None else attributions[i]
        data.append(dict(type="heatmap", **_heatmap_props(image, labels, empty=empty, attribution=attribution,
                                                          value_name=value_name, coloraxis="coloraxis",
                                                          title=str(titles[i])), **axes))
        if highlight_pixels:
            data.append(search_marks | axes)
    annotations = list(layout.get("annotations", []))
    if regions is not None:
        # the size each image is drawn at (square pixels in its cell), so region labels are placed not to collide;
        # every image shares one placement (same layout, same size): placed once, copied to each subplot
        h, w = np.asarray(images[0]).shape
        cell_h = (height - 60) * (1 - spacing * (n_rows - 1)) / n_rows
        scale = drawn_px_per_cell((h, w), cell_h, cell_w)
        outlines, notes = region_overlay(regions, channel, labels=region_labels, short=True,
                                         font_size=12 if cell_px >= 260 else 11, px_per_cell=scale)
        outlines = [trace.to_plotly_json() for trace in outlines]
        for i in range(n):
            axis = "" if i == 0 else str(i + 1)
            data += [trace | dict(xaxis="x" + axis, yaxis="y" + axis) for trace in outlines]
            annotations += [note | dict(xref="x" + axis, yref="y" + axis) for note in notes]
    layout.update(annotations=annotations, height=height, margin=dict(l=10, r=10, t=50, b=10),
                  coloraxis=dict(colorscale=colorscale, cmin=zrange[0], cmax=zrange[1],
                                 colorbar=dict(title=value_name, thickness=12)),
                  plot_bgcolor=EMPTY_PIXEL, hovermode="closest")
    return go.Figure(data=data, layout=layout)


# ---------------------------------------------------------------- tables and charts

PLAIN_NAMES = {
    "n_genes_in": "genes in the data", "n_genes_placed": "genes placed", "fraction_placed": "share of genes placed",
    "n_pixels": "pixels", "n_pixels_used": "pixels holding a gene", "fraction_pixels_used": "share of pixels used",
    "max_genes_per_pixel": "most genes on one pixel", "mean_genes_per_pixel": "genes per used pixel (mean)",
    "seconds": "fit time (s)", "neighbourhood_preservation": "neighbourhood preservation",
    "adjacent_pair_correlation": "correlation of neighbouring pixels",
    "random_pair_correlation": "correlation of random pixel pairs",
    "adjacent_correlation_gain": "neighbour correlation above random",
    "quality_pairs": "pixel pairs measured", "quality_samples": "samples the figures use",
    "quality_seconds": "time to measure (s)", "n_dropped_no_position": "genes without a chromosome position",
    "n_dropped_no_chromosome": "genes without a chromosome in the annotation",
    "n_dropped_low_variance": "genes below the variance threshold", "variance_filter": "variance filter",
    "n_dropped_over_capacity": "genes over the image's capacity (least variable)",
    "dropped_examples": "examples of genes left out", "order": "order", "engine": "engine", "map": "map size",
    "sigma_start": "neighbourhood width at start", "quantization_error": "quantisation error",
    "variant": "variant", "nodes_without_genes": "map nodes without genes",
}


def fixed(value: float | None, digits: int = 3) -> str:
    """``value`` with ``digits`` decimals, never "-0.000" (a value that rounds to 0 reads "0.000"); "–" for None."""
    if value is None:
        return "–"
    text = f"{float(value):.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def plain_name(key: str) -> str:
    """A readable name for a quality or notes key (``n_genes_placed`` → ``genes placed``)."""
    return PLAIN_NAMES.get(key, key.replace("_", " ").replace("n ", "number of ", 1) if key.startswith("n_")
                           else key.replace("_", " "))


def _plain_value(value, percent: bool = False) -> str:
    if isinstance(value, float):
        return f"{100 * value:.1f} %" if percent else f"{value:.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, (list, tuple)):
        return ", ".join(_plain_value(v) if not isinstance(v, str) else v for v in value)
    if isinstance(value, dict):
        return "; ".join(f"{plain_name(str(k))}: {_plain_value(v)}" for k, v in value.items())
    return str(value)


def _plain_rows(items: dict, skip_nested: bool) -> list[tuple[str, str]]:
    return [(plain_name(str(k)), _plain_value(v, percent=str(k).startswith("fraction_"))) for k, v in items.items()
            if not (skip_nested and isinstance(v, (dict, list)))]


def quality_table(layout: Layout) -> pd.DataFrame:
    """The layout's quality figures with plain names and formatted values (shares as %)."""
    return pd.DataFrame(_plain_rows(layout.quality, True), columns=["figure", "value"])


def notes_table(notes: dict) -> pd.DataFrame:
    """A layout's notes (what the fit decided or left out) as a readable two-column table."""
    return pd.DataFrame(_plain_rows(notes, False), columns=["note", "value"])




def _percent(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f} %"


def _interval(ci) -> str:
    return "no interval" if not ci else f"95 % CI {100 * ci[0]:.0f}–{100 * ci[1]:.0f} %"


def headline_scores(summary: dict) -> dict:
    """The Train page's headline: balanced accuracy of CNN, baseline (and control) with intervals.

    Parameters
    ----------
    summary : :meth:`TrainResult.summary` (it always holds ``n_test_per_class`` and
        ``small_test_classes``; the ``*_ci`` intervals are read when present)

    Returns
    -------
    dict: ``tiles`` (label, value, caption, help per model), ``per_class`` (text
    "A: 5 · B: 3"), ``small`` (text naming classes with fewer than 5 test samples, or "")
    """
    tiles = []
    for label, prefix, what in (("CNN", "", "the small CNN"),
                                ("Baseline", "baseline_", "logistic regression on the same pixels and samples"),
                                ("Control", "control_", "the same CNN on randomly permuted pixels")):
        balanced = summary.get(f"{prefix}balanced_accuracy")
        if balanced is None:
            continue
        accuracy = summary.get(f"{prefix}accuracy")
        tiles.append({
            "label": f"{label} balanced accuracy",
            "value": _percent(balanced),
            "caption": f"{_interval(summary.get(f'{prefix}balanced_accuracy_ci'))} · accuracy "
                       f"{_percent(accuracy)} ({_interval(summary.get(f'{prefix}accuracy_ci'))})",
            "help": f"{what.capitalize()}: mean of the per-class recalls on {summary.get('n_test', '?')} "
                    "test samples.",
        })
    counts, small = summary["n_test_per_class"], summary["small_test_classes"]
    return {"tiles": tiles,
            "per_class": " · ".join(f"{c}: {n}" for c, n in counts.items()) or "not known",
            "small": ", ".join(f"{c} ({counts.get(c, '?')})" for c in small)}


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

def figure_html(fig: go.Figure) -> bytes:
    """An HTML file of a figure (interactive, hover included; loads plotly.js from its CDN to stay small)."""
    return fig.to_html(include_plotlyjs="cdn", full_html=True).encode()
