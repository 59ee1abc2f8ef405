"""Explain page: image and attribution map side by side, gene hover with scores, top genes per class."""

from functools import partial

import numpy as np
import streamlit as st

from dashboard import figures, glue
from dashboard.state import VALUE_NAMES
from dashboard.widgets import channel_picker, default, default_choice
from rnaimg_core import attribution
from rnaimg_core.annotation import ROUTE_TITLES
from rnaimg_core.errors import InputError
from rnaimg_core.images import ImageSet, pixel_genes_table, shared_range

state = glue.start_page("Explain")
expr = state.expression
job = state.training
if job is None or job.running or job.result is None:
    st.info("Train a model first: the Train page trains the small CNN in about a minute at demo size.")
    st.page_link("pages/4_Train.py", label="Go to Train")
    st.stop()

result = job.result
model = result.model
layout = model.layout
key = job.layout_key
images = glue.layout_images(key, layout, expr)
labels, empty = glue.hover_text(key, layout)
st.caption(f"Model trained on the **{layout.generator}** layout: balanced accuracy "
           f"{100 * result.metrics['balanced_accuracy']:.1f} % on the test samples (as on the Train page). "
           "Attributions say how much each pixel, and so each gene, pushed a sample toward its class.")
image_set = ImageSet(images, expr.sample_ids, expr.labels, state.split, layout)

methods = attribution.list_methods()
titles = {m["name"]: m["title"] for m in methods}
cols = st.columns([1.3, 1, 1.6, 1])
method = cols[0].selectbox("Method", list(titles), key=default("w_explain_method", "saliency"),
                           format_func=titles.get,
                           help="\n\n".join(f"**{m['title']}**: {m['help']}" for m in methods))
mode = cols[1].radio("Explain", ("a class", "a sample"), key=default("w_explain_mode", "a class"))
if mode == "a class":
    target = cols[2].selectbox("Class", result.class_names, key=default_choice("w_explain_class", result.class_names))
else:
    index_of = {s: i for i, s in enumerate(expr.sample_ids.tolist())}
    test_ids = [s for s in result.split["test"] if s in index_of] or expr.sample_ids.tolist()
    target = cols[2].selectbox("Sample (test samples)", test_ids, key=default_choice("w_explain_sample", test_ids),
                               format_func=lambda s: f"{s} ({expr.labels[index_of[s]]})")
with cols[3]:
    channel = channel_picker(layout, "w_explain_channel")
    show_labels = st.checkbox("Region labels", key=default("w_region_labels", True), disabled=not layout.regions)
title = titles[method]

request = (method, mode, target)
explanation = job.explanations.recall(request)
if explanation is None:
    bar = st.progress(0.0, text=f"{title}…")

    def progress(done: int, total: int) -> None:
        bar.progress(done / max(1, total), text=f"{title}: {done} of {total} samples")

    try:
        explanation = attribution.explain(model, image_set, method=method, progress=progress,
                                          **({"classes": [target]} if mode == "a class" else {"samples": [target]}))
    except InputError as exc:
        bar.empty()
        st.error(str(exc))
        st.stop()
    bar.empty()
    job.explanations.remember(request, explanation)

if mode == "a class":
    pixel_map = explanation.class_pixel_maps[target]
    means = glue.class_images(key, images, tuple(expr.labels.tolist()))
    image = means["means"][means["classes"].index(target)]
    table = explanation.class_gene_table(target, top=100)
    basis = explanation.class_samples[target]
    st.caption(f"Mean image of class {target} and its mean attribution over {basis['n_samples']} samples "
               f"({basis['basis']}).")
else:
    pixel_map = explanation.sample_map(target)
    image = images[index_of[target]]
    label, predicted = explanation.targets[0], explanation.predicted[0]
    table = explanation.sample_gene_table(target, top=100)
    st.caption(f"Sample {target}: class {label}, predicted {predicted}; attribution toward {label}.")

for note in explanation.notes:  # the library's warnings (few samples, chance level, all-zero maps) stand out
    if note.startswith("Warning: "):
        warning = note.removeprefix("Warning: ")
        st.warning(warning[:1].upper() + warning[1:])
    else:
        st.caption(f"Note: {note}")
silent = not np.any(pixel_map)

signed = bool((pixel_map[channel] < 0).any())  # saliency is >= 0: a sequential scale uses all of it
scale = layout.normalization.scale  # the model's layout's scaling, not necessarily the one chosen now
symmetric = figures.layout_values_signed(layout, images)  # the colour map every page uses for such values
left, right = st.columns(2)
image_fig = figures.image_figure(image[channel], labels[channel], attribution=pixel_map[channel],
                                 empty=empty[channel], zrange=shared_range([image[channel]], symmetric=symmetric),
                                 colorscale=figures.colorscale_for(symmetric),
                                 value_name=VALUE_NAMES.get(scale, "value"), height=520,
                                 title=f"Image of {target}" if mode == "a sample" else f"Mean image of {target}",
                                 regions=(layout, channel), region_labels=show_labels, clickable=True)
attr_fig = figures.image_figure(pixel_map[channel], labels[channel],
                                empty=empty[channel], value_name="attribution",
                                zrange=shared_range([pixel_map[channel]], symmetric=signed),
                                colorscale=figures.colorscale_for(signed), title=f"Attribution ({title})",
                                height=520, regions=(layout, channel), region_labels=show_labels, clickable=True)
with left:
    event_image = st.plotly_chart(image_fig, key="explain_image", on_select="rerun", selection_mode="points")
with right:
    event_attr = st.plotly_chart(attr_fig, key="explain_attr", on_select="rerun", selection_mode="points")
st.caption("Hover any pixel: row, column, its genes, the value and the attribution score. Click a pixel "
           "(or type its row and column below) to list all its genes.")

_, h, w = layout.shape
# A chart keeps its selection across reruns: only a new click (per chart) moves the pixel, so typed values stick.
last_clicks = st.session_state.setdefault("explain_clicks", {})
for chart, event in (("image", event_image), ("attr", event_attr)):
    clicked = glue.clicked_pixel(event)
    if clicked is not None and clicked != last_clicks.get(chart):
        last_clicks[chart] = clicked
        st.session_state["w_explain_row"], st.session_state["w_explain_col"] = min(clicked[0], h - 1), \
            min(clicked[1], w - 1)
cols = st.columns([1, 1, 4])
row = int(cols[0].number_input("row", 0, h - 1, step=1, key=default("w_explain_row", 0)))
col = int(cols[1].number_input("column", 0, w - 1, step=1, key=default("w_explain_col", 0)))
genes_here = pixel_genes_table(layout, channel, row, col, expr.genes)
if "route" in genes_here.columns:  # how the gene id was matched, in words
    genes_here = genes_here.assign(route=genes_here["route"].map(lambda route: ROUTE_TITLES.get(route, route)))
with cols[2]:
    symbols = genes_here["symbol"].astype(str).tolist() if "symbol" in genes_here else []
    listed = ", ".join(symbols[:12]) + (f" and {len(symbols) - 12} more" if len(symbols) > 12 else "")
    st.markdown(f"**Pixel (row {row}, col {col})**: {len(genes_here)} gene(s){': ' + listed if listed else ''}; "
                f"attribution {float(pixel_map[channel, row, col]):.4g}")
    first = [c for c in ("symbol", "chromosome", "cytoband", "start", "end", "gene_id") if c in genes_here.columns]
    st.dataframe(genes_here[first + [c for c in genes_here.columns if c not in first]], hide_index=True,
                 width="stretch", column_config={"route": "matched by", "gene_id": "id in your data",
                                                 "entrez_id": st.column_config.NumberColumn("Entrez id", format="%d")})

st.subheader(f"Top genes: {target}")
shown = [c for c in ("rank", "symbol", "score", "chromosome", "cytoband", "go_terms", "n_genes_on_pixel",
                     "shares_pixel_with", "row", "col", "entrez_id") if c in table.columns]
if silent:
    st.info("No top genes: every attribution score is 0 with this method.")
else:
    st.dataframe(table[shown], hide_index=True, width="stretch", height=420, column_config={
        "score": st.column_config.NumberColumn("attribution score", format="%.4g",
                                               help=f"The {title} score of the gene's pixel (genes sharing a pixel "
                                                    "get its full score)"),
        "go_terms": "GO terms", "n_genes_on_pixel": "genes on its pixel", "shares_pixel_with": "shares its pixel with",
        "col": "column", "entrez_id": st.column_config.NumberColumn("Entrez id", format="%d")})
safe = "".join(ch if ch.isalnum() else "_" for ch in str(target))
cols = st.columns(3)
cols[0].download_button("Gene attribution table (CSV)", data=partial(glue.csv_text, table),
                        file_name=f"gene_attribution_{safe}_{method}.csv", mime="text/csv",
                        key="w_btn_dl_attr", on_click="ignore")
cols[1].download_button("Attribution map figure (HTML, interactive)", data=partial(figures.figure_html, attr_fig),
                        file_name=f"attribution_{safe}_{method}.html", mime="text/html",
                        key="w_btn_dl_attr_fig", on_click="ignore")
cols[2].download_button("Attribution map (.npy, C×H×W)", data=partial(glue.npy_bytes, pixel_map),
                        file_name=f"attribution_{safe}_{method}.npy", mime="application/octet-stream",
                        key="w_btn_dl_attr_npy", on_click="ignore")
