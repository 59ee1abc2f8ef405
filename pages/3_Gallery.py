"""Gallery page: images side by side by class: samples, class means, class-minus-rest differences."""

from functools import partial

import numpy as np
import streamlit as st

from dashboard import export, figures, glue
from dashboard.genes import search_gene
from dashboard.widgets import channel_picker, default
from rnaimg_core.images import samples_per_class, shared_range

# The colour maps in words: what a biologist reads off each one.
COLORMAP_NAMES = {"RdBu_r": "red-blue, diverging (white = 0)", "Viridis": "viridis, sequential",
                  "Cividis": "cividis, sequential", "Magma": "magma, sequential", "Inferno": "inferno, sequential",
                  "Greys": "greys, sequential", "Turbo": "turbo, rainbow"}

state = glue.start_page("Gallery")
expr = state.expression
key, layout, images = glue.current_images(state)
labels, empty = glue.hover_text(key, layout)
st.caption(f"Layout: **{layout.generator}** ({'×'.join(map(str, layout.shape))}); change it on the Layout page.")

classes_all = expr.classes
# the layout's own normalisation decides (z-scores: diverging, symmetric about 0), not the Data page's setting
symmetric = figures.layout_values_signed(layout, images)
value_name = state.value_name
default("w_gallery_classes", classes_all)
# a row of its own: long class names stay readable when many are chosen
chosen_classes = [c for c in st.multiselect("Classes", classes_all, key="w_gallery_classes")
                  if c in classes_all] or classes_all
cols = st.columns([2, 2, 1, 1])
per_class = cols[0].slider("Samples per class", 1, 8, key=default("w_gallery_per_class", 3))
colorscale = cols[1].selectbox("Colour map", figures.COLORMAPS,
                               format_func=lambda name: COLORMAP_NAMES.get(name, name),
                               key=default("w_gallery_cmap", figures.colorscale_for(symmetric)),
                               help="Diverging maps show values below and above 0 (blue low, white 0, red high); "
                                    "sequential maps run from low to high. The default is the one every page "
                                    "uses: red-blue for z-scores, viridis otherwise. Cividis suits colour-blind "
                                    "readers.")
with cols[2]:
    channel = channel_picker(layout, "w_gallery_channel")
show_labels = cols[3].checkbox("Region labels", key=default("w_region_labels", True), disabled=not layout.regions,
                               help="Names of chromosomes, arms or GO blocks on the images (all pages).")

cols = st.columns([2, 2])
# a text box, not a list of every gene: a select box of 9,450 symbols cost the browser 5-9 s at every rerun
gene = cols[0].text_input("Find a gene (highlighted in every image)", key="w_gallery_gene",
                          placeholder="a symbol, alias or id, e.g. EGFR or HER2",
                          help="A symbol or id of these data, or any other name: an old symbol, an alias, an "
                               "Entrez or Ensembl id is looked up in the shipped gene annotation; a misspelt "
                               "name gets the names of these data spelt alike. Press Enter to search.")
known_ids = set(expr.sample_ids.tolist())
if any(s not in known_ids for s in st.session_state.get("w_gallery_samples", [])):
    st.session_state["w_gallery_samples"] = []
picked = cols[1].multiselect("Or pick samples", expr.sample_ids.tolist(), key="w_gallery_samples",
                             max_selections=48)
highlight = []
if gene.strip():
    found = search_gene(layout, gene)
    highlight = found.pixels
    (st.info if found.pixels else st.warning)(found.message)

if picked:
    index = [int(np.flatnonzero(expr.sample_ids == s)[0]) for s in picked]
else:
    index = samples_per_class(expr.labels, per_class, chosen_classes if expr.labels is not None else None)


def titled(i: int) -> str:
    return expr.sample_ids[i] if expr.labels is None else f"{expr.labels[i]}<br>{expr.sample_ids[i]}"


def download_pictures(shown: list, titles: list, picture: dict, what: str) -> None:
    """PNG and SVG of a grid with its titles, colour bar and caption (built when clicked)."""
    cols = st.columns(2)
    for col, kind, build, mime in ((cols[0], "png", export.grid_png, "image/png"),
                                   (cols[1], "svg", export.grid_svg, "image/svg+xml")):
        col.download_button(f"{kind.upper()} of these images (titles, colour bar, caption)",
                            data=partial(build, shown, titles, empty[channel], **picture),
                            file_name=f"{layout.generator}_{what}.{kind}", mime=mime, key=f"w_btn_{kind}_{what}",
                            on_click="ignore")


def samples_tab() -> None:
    shown = [images[i, channel] for i in index]
    zrange = shared_range(shown, symmetric=symmetric)
    n_cols = per_class if not picked else min(6, len(index))
    with st.spinner(f"Drawing {len(shown)} images…"):
        fig = glue.figure_for(state, ("gallery_samples", key, tuple(index), channel, colorscale, n_cols,
                                      tuple(highlight), show_labels, value_name), partial(
            figures.image_grid_figure, shown, [titled(i) for i in index], labels[channel], empty=empty[channel],
            zrange=zrange, colorscale=colorscale, n_cols=n_cols, highlight_pixels=highlight, channel=channel,
            cell_px=330, value_name=value_name, regions=layout, region_labels=show_labels))
    st.plotly_chart(fig, key="gallery_samples")
    st.caption("One colour scale for all images shown; grey pixels hold no gene."
               + ("" if picked else " Each row is one class."))
    picture = dict(colorscale=colorscale, zrange=zrange, value_name=value_name, n_cols=n_cols,
                   title=f"Samples by class · {layout.generator} layout",
                   caption=f"{expr.source}. One colour scale for all images; grey pixels hold no gene.")
    download_pictures([images[i, channel] for i in index], [titled(i) for i in index], picture, "samples")


def class_tab(what: str) -> None:
    if expr.labels is None:
        st.info("Class images need labels; add a label column on the Data page.")
        return
    per = glue.class_images(key, images, tuple(expr.labels.tolist()))
    pick = [per["classes"].index(c) for c in chosen_classes]
    names = [per["classes"][i] for i in pick]
    stack, label, cmap, sym = ((per["means"], f"mean {value_name}", colorscale, symmetric) if what == "means" else
                               (per["diffs"], f"class − rest ({value_name})", figures.DIVERGING, True))
    shown = [stack[i, channel] for i in pick]
    zrange = shared_range(shown, symmetric=sym)
    with st.spinner(f"Drawing {len(shown)} class images…"):
        fig = glue.figure_for(state, ("gallery_" + what, key, tuple(names), channel, cmap, tuple(highlight),
                                      show_labels, value_name), partial(
            figures.image_grid_figure, shown, names, labels[channel], empty=empty[channel], zrange=zrange,
            colorscale=cmap, n_cols=min(3, len(shown)), highlight_pixels=highlight, channel=channel,
            value_name=label, cell_px=330, regions=layout, region_labels=show_labels))
    st.plotly_chart(fig, key=f"gallery_{what}")
    if what == "diffs":
        st.caption("Each class's mean image minus the mean of all other samples, on one symmetric scale: "
                   "red pixels are higher in the class, blue lower." + (
                       " In the demo, chromosome-arm blocks (1p, 19q, and each tumour's own gains and "
                       "losses) stand out under the chromosome layout." if state.data_key == "demo" else ""))
    picture = dict(colorscale=cmap, zrange=zrange, value_name=label, n_cols=min(3, len(shown)),
                   title=f"{'Class means' if what == 'means' else 'Class minus rest'} · {layout.generator} layout",
                   caption=f"{expr.source}. " + ("Each class's mean image." if what == "means" else
                                                 "Each class's mean image minus the mean of all other samples: "
                                                 "red higher in the class, blue lower."))
    download_pictures(shown, names, picture, f"class_{what}")


# Only the open tab is drawn (a grid takes a while on a busy server); the open tab is kept across reruns
# (a gene search, another class) and page switches.
TABS = {"Samples by class": samples_tab, "Class means": partial(class_tab, "means"),
        "Class minus rest": partial(class_tab, "diffs")}
for tab, draw_tab in zip(st.tabs(list(TABS), key=default("w_gallery_tab", "Samples by class"), on_change="rerun"),
                         TABS.values()):
    if tab.open:
        with tab:
            draw_tab()

st.divider()
st.download_button(f"Download the images file of all samples (.npz, as `rnaimg train` reads it; about "
                   f"{images.nbytes / 2**20:,.1f} MB)",
                   data=partial(glue.images_file_bytes, images, layout, expr.sample_ids.tolist(),
                                None if expr.labels is None else expr.labels.tolist()),
                   file_name=f"{layout.generator}_images.npz", mime="application/octet-stream",
                   key="w_btn_npz", on_click="ignore")
