"""Figures for a classroom or a paper: titles, colour bars and captions, as PNG and SVG (matplotlib).

The classroom page (``pages/7_Classroom.py``) shows these pictures and offers the same files for download,
so what the projector showed is what the slides get. Drawing only: the numbers come from
:func:`rnaimg_core.walkthrough.gene_steps`, the images from the layout. Large type (``projector``) and
high contrast (black text, white label boxes, the house colour maps of :mod:`dashboard.figures`).
No streamlit import here.
"""

from __future__ import annotations

import io
import textwrap

import matplotlib

matplotlib.use("Agg")  # no display on a server; set before pyplot is imported anywhere
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from dashboard import figures  # noqa: E402
from rnaimg_core.layout import Layout  # noqa: E402

CMAPS = {"RdBu_r": "RdBu_r", "Viridis": "viridis", "Cividis": "cividis", "Magma": "magma", "Inferno": "inferno",
         "Greys": "Greys", "Turbo": "turbo"}
WIDTH_IN, HEIGHT_IN, DPI = 12.0, 6.75, 100  # 16:9, 1200 x 675 px: a projector's slide


def font_size(projector: bool) -> float:
    """The base font size: large for a projector, ordinary for a paper."""
    return 20.0 if projector else 12.0


def _new(projector: bool, ncols: int = 1, *, width_ratios=None) -> tuple[Figure, list]:
    plt.rcParams.update({"font.size": font_size(projector), "axes.titlesize": font_size(projector) * 1.1,
                         "svg.fonttype": "none"})  # SVG text stays text: editable on a slide
    fig = Figure(figsize=(WIDTH_IN, HEIGHT_IN), dpi=DPI, facecolor="white")
    axes = fig.subplots(1, ncols, gridspec_kw={"width_ratios": width_ratios} if width_ratios else None)
    return fig, list(np.atleast_1d(axes))


def _finish(fig: Figure, title: str, caption: str, projector: bool) -> Figure:
    size = font_size(projector)
    fig.suptitle(title, fontsize=size * 1.2, fontweight="bold", x=0.01, ha="left")
    width = 95 if not projector else 80
    fig.text(0.01, 0.01, "\n".join(textwrap.wrap(caption, width)), fontsize=size * 0.8, va="bottom", ha="left")
    n_lines = max(1, len(textwrap.wrap(caption, width)))
    fig.tight_layout(rect=(0, 0.03 + 0.045 * n_lines * (size / 20), 1, 0.93))
    _name_regions(fig)
    return fig


def to_png(fig: Figure) -> bytes:
    """The figure as PNG bytes."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, facecolor="white")
    return buffer.getvalue()


def to_svg(fig: Figure) -> bytes:
    """The figure as SVG bytes (text kept as text)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg", facecolor="white")
    return buffer.getvalue()


def _fmt(value: float) -> str:
    return figures.fixed(value, 2)


# ---------------------------------------------------------------- the steps

def table_figure(steps: pd.DataFrame, sample: str, label: str, *, projector: bool = True) -> Figure:
    """Step 1: the sample's row of the expression table, for the chosen genes."""
    fig, (ax,) = _new(projector)
    ax.axis("off")
    cells = [[g, c or "–", _fmt(v)] for g, c, v in zip(steps["symbol"], steps["chromosome"], steps["measured"])]
    table = ax.table(cellText=cells, colLabels=["gene", "chromosome", f"measured in {sample}"], loc="center",
                     cellLoc="center", colLoc="center")
    table.auto_set_font_size(False)
    table.set_fontsize(font_size(projector))
    table.scale(1, 2.2 if projector else 1.6)
    for (r, _), cell in table.get_celld().items():
        cell.set_edgecolor("#333333")
        if r == 0:
            cell.set_text_props(fontweight="bold")
            cell.set_facecolor("#e8e8e8")
    return _finish(fig, f"1 · The table: sample {sample} ({label})",
                   "Each sample is one row of the expression table: one measured value per gene. Here are the "
                   "chosen genes of this sample, as they were measured.", projector)


def normalisation_figure(steps: pd.DataFrame, value_name: str, colorscale: str, zrange: tuple[float, float], *,
                         log_applied: bool, projector: bool = True) -> Figure:
    """Step 2: measured → per sample (CPM, log2) → scaled per gene; bars of the last step in the pixel's colour."""
    fig, axes = _new(projector, 3)
    genes = list(steps["symbol"])
    y = np.arange(len(genes))[::-1]
    cmap = plt.get_cmap(CMAPS.get(colorscale, "viridis"))
    lo, hi = zrange
    colours = [cmap(np.clip((v - lo) / max(1e-12, hi - lo), 0, 1)) for v in steps["normalised"]]
    panels = (("measured", "measured", ["#7f7f7f"] * len(genes)),
              ("per_sample", "log2(x+1)" if log_applied else "per sample", ["#7f7f7f"] * len(genes)),
              ("normalised", value_name, colours))
    for ax, (column, title, colour) in zip(axes, panels):
        values = steps[column].to_numpy(dtype=float)
        ax.barh(y, values, color=colour, edgecolor="black", linewidth=1)
        ax.set_yticks(y, genes if ax is axes[0] else [""] * len(genes))
        ax.set_title(title)
        ax.axvline(0, color="black", linewidth=1)
        for yy, v in zip(y, values):
            ax.text(v, yy, f" {_fmt(v)} ", va="center", ha="left" if v >= 0 else "right",
                    fontsize=font_size(projector) * 0.8)
        span = max(1e-9, np.abs(values).max())
        ax.set_xlim(min(0, values.min()) - 0.45 * span, max(0, values.max()) + 0.45 * span)
        ax.spines[["top", "right"]].set_visible(False)
    return _finish(fig, "2 · Normalisation: the same scale for every gene",
                   ("The measured values are put on one scale: " + ("log2(x+1) first (raw counts span orders of "
                    "magnitude), then " if log_applied else "") + f"each gene relative to its own values in the "
                    f"training samples ({value_name}). The last bars carry the colour each gene's pixel gets."),
                   projector)


def _label_regions(ax, layout: Layout, channel: int, px_per_cell: float, projector: bool) -> None:
    for note in figures.region_label_annotations(layout, channel, short=True,
                                                 font_size=int(font_size(projector) * 0.7),
                                                 px_per_cell=px_per_cell):
        ax.text(note["x"], note["y"], note["text"], ha="center", va="center", fontsize=note["font"]["size"],
                color=figures.LABEL_TEXT, bbox=dict(boxstyle="round,pad=0.15", fc="white", ec="#333333",
                                                    lw=0.6, alpha=0.9))


def _draw_image(ax, image: np.ndarray, empty: np.ndarray | None, colorscale: str, zrange, *, layout=None,
                channel: int = 0, projector: bool = True, regions: bool = True):
    cmap = plt.get_cmap(CMAPS.get(colorscale, "viridis")).with_extremes(bad=figures.EMPTY_PIXEL)
    shown = np.ma.masked_array(image, mask=empty if empty is not None else np.zeros(image.shape, bool))
    artist = ax.imshow(shown, cmap=cmap, vmin=zrange[0], vmax=zrange[1], interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if layout is not None and regions and layout.regions:
        # named once the figure is laid out, at the size the image is drawn (see _finish)
        ax.figure.__dict__.setdefault("_rnaimg_regions", []).append((ax, layout, channel, image.shape, projector))
    return artist


def _name_regions(fig: Figure) -> None:
    """Region names on every image of ``fig``, placed for the size each is drawn (no two overlap)."""
    for ax, layout, channel, (h, w), projector in fig.__dict__.pop("_rnaimg_regions", []):
        box = ax.get_window_extent()
        _label_regions(ax, layout, channel, max(0.1, min(box.width / w, box.height / h)), projector)


def pixel_figure(image: np.ndarray, empty: np.ndarray | None, steps: pd.DataFrame, layout: Layout, *,
                 colorscale: str, zrange, value_name: str, projector: bool = True) -> Figure:
    """Step 3: each chosen gene lands on its pixel (boxed and named on the image)."""
    fig, (ax,) = _new(projector)
    artist = _draw_image(ax, image, empty, colorscale, zrange, layout=layout, projector=projector, regions=False)
    h, w = image.shape
    # names listed down the left, in the order of their rows, evenly spaced: arrows never cross a name
    ordered = steps.sort_values("row")
    slots = np.linspace(0.06 * h, 0.94 * h, num=max(1, len(ordered)))
    for (_, gene), y in zip(ordered.iterrows(), slots):
        ax.add_patch(matplotlib.patches.Rectangle((gene["col"] - 1.5, gene["row"] - 1.5), 3, 3, fill=False,
                                                  edgecolor="black", linewidth=2.5))
        where = f" (chr{gene['chromosome']})" if gene["chromosome"] else ""
        ax.annotate(f"{gene['symbol']}{where} {_fmt(gene['pixel_value'])}", (gene["col"], gene["row"]),
                    xytext=(-4, y), textcoords="data", ha="right", va="center",
                    fontsize=font_size(projector) * 0.8, fontweight="bold",
                    arrowprops=dict(arrowstyle="->", color="black", lw=1.5, shrinkB=6),
                    bbox=dict(boxstyle="round,pad=0.2", fc="white", ec="#333333"), annotation_clip=False)
    fig.colorbar(artist, ax=ax, label=value_name, shrink=0.8)
    shared = [g for g, n in zip(steps["symbol"], steps["genes_on_pixel"]) if n > 1]
    return _finish(fig, f"3 · Each gene gets a pixel ({layout.generator} layout)",
                   f"The {layout.generator} layout gives every gene a fixed pixel (row, column): the same pixel in "
                   "every sample. The pixel's colour is the gene's normalised value." +
                   (f" {', '.join(shared)} share(s) a pixel with other genes: the pixel shows their combined value."
                    if shared else ""), projector)


def image_export_figure(image: np.ndarray, empty: np.ndarray | None, layout: Layout, *, channel: int = 0,
                        title: str, caption: str, colorscale: str, zrange, value_name: str,
                        projector: bool = True) -> Figure:
    """Step 4 (and any image view): the whole image, region names on it, a titled colour bar, a caption."""
    fig, (ax,) = _new(projector)
    artist = _draw_image(ax, image, empty, colorscale, zrange, layout=layout, channel=channel, projector=projector)
    fig.colorbar(artist, ax=ax, label=value_name, shrink=0.8)
    return _finish(fig, title, caption, projector)


def class_mean_figure(image: np.ndarray, mean: np.ndarray, empty: np.ndarray | None, layout: Layout, *,
                      sample: str, label: str, n_class: int, colorscale: str, zrange, value_name: str,
                      projector: bool = True) -> Figure:
    """Step 5: the sample's image beside the mean image of its class, one colour scale."""
    fig, axes = _new(projector, 3, width_ratios=[1, 1, 0.05])
    for ax, shown, name in ((axes[0], image, f"sample {sample}"), (axes[1], mean, f"class mean ({n_class} samples)")):
        artist = _draw_image(ax, shown, empty, colorscale, zrange, layout=layout, projector=projector)
        ax.set_title(name)
    fig.colorbar(artist, cax=axes[2], label=value_name)
    return _finish(fig, f"5 · One sample and its class ({label})",
                   "Averaging the images of a class keeps what its samples share (blocks of higher or lower "
                   "values) and evens out what is one sample's own. A CNN learns such patterns from many images.",
                   projector)


def grid_figure(images, titles, empty: np.ndarray | None, *, colorscale: str, zrange, value_name: str,
                title: str, caption: str, n_cols: int = 4, projector: bool = False) -> Figure:
    """Several images with their titles, one shared colour scale with its bar, a title and a caption (the
    Gallery's downloads)."""
    n = max(1, len(images))
    n_cols = max(1, min(n_cols, n))
    n_rows = int(np.ceil(n / n_cols))
    size = font_size(projector)
    plt.rcParams.update({"font.size": size, "svg.fonttype": "none"})
    fig = Figure(figsize=(2.6 * n_cols + 1.4, 2.9 * n_rows + 1.6), dpi=DPI, facecolor="white")
    grid = fig.add_gridspec(n_rows, n_cols + 1, width_ratios=[1] * n_cols + [0.06])
    artist = None
    for i, image in enumerate(images):
        ax = fig.add_subplot(grid[i // n_cols, i % n_cols])
        artist = _draw_image(ax, np.asarray(image), empty, colorscale, zrange, projector=projector, regions=False)
        ax.set_title(str(titles[i]).replace("<br>", "\n"), fontsize=size * 0.8)
    if artist is not None:
        fig.colorbar(artist, cax=fig.add_subplot(grid[:, n_cols]), label=value_name)
    fig.suptitle(title, fontsize=size * 1.2, fontweight="bold", x=0.01, ha="left")
    lines = textwrap.wrap(caption, int(12 * (2.6 * n_cols + 1.4)))
    fig.text(0.01, 0.005, "\n".join(lines), fontsize=size * 0.8, va="bottom", ha="left")
    fig.subplots_adjust(left=0.02, right=0.92, top=1 - 0.9 / fig.get_figheight(),
                        bottom=(0.25 + 0.2 * len(lines)) / fig.get_figheight(), wspace=0.08, hspace=0.45)
    _name_regions(fig)
    return fig


def grid_png(*args, **kwargs) -> bytes:
    """:func:`grid_figure` as PNG bytes (for a download button: built when clicked)."""
    return to_png(grid_figure(*args, **kwargs))


def grid_svg(*args, **kwargs) -> bytes:
    """:func:`grid_figure` as SVG bytes."""
    return to_svg(grid_figure(*args, **kwargs))
