"""Classroom page: how one sample becomes an image, step by step, in large type for a projector.

Choose a sample and a few genes; step through table → normalisation → pixel → image → class mean. Each
step is one picture with its title, colour bar and caption (the same picture as the PNG and SVG offered
beside it). The numbers are :func:`rnaimg_core.walkthrough.gene_steps` of the current layout.
"""

from functools import partial

import streamlit as st

from dashboard import export, figures, glue
from dashboard.genes import genes_to_follow
from dashboard.state import VALUE_NAMES
from dashboard.widgets import default, default_choice
from rnaimg_core.images import shared_range
from rnaimg_core.walkthrough import gene_steps

STEPS = ["1 · Table", "2 · Normalisation", "3 · Pixel", "4 · Image", "5 · Class mean"]
# Large type and high contrast for a projector: bigger text everywhere on the page, black on white.
PROJECTOR_CSS = """<style>
[data-testid="stMain"] p, [data-testid="stMain"] li, [data-testid="stMain"] label,
[data-testid="stMain"] [data-baseweb="select"], [data-testid="stMain"] input { font-size: 1.35rem !important; color: #000; }
[data-testid="stMain"] h1 { font-size: 2.4rem; }
</style>"""

state = glue.start_page("Classroom", caption=False)
st.set_page_config(initial_sidebar_state="collapsed")  # the whole width for the picture on a small projector
expr = state.expression
key, layout, images = glue.current_images(state)
labels, empty = glue.hover_text(key, layout)

sample_ids = expr.sample_ids.tolist()
position = {s: i for i, s in enumerate(sample_ids)}
suggested = [g[0] for g in glue.named_genes(layout, images[0], n=5)]
cols = st.columns([2, 3, 1.2])
projector = cols[2].toggle("Large type", key=default("w_teach_projector", True),
                           help="Large type and high contrast for a projector (the pictures too).")
if projector:
    st.html(PROJECTOR_CSS)
sample = cols[0].selectbox("Sample", sample_ids, key=default_choice("w_teach_sample", sample_ids),
                           format_func=lambda s: s if expr.labels is None else f"{s} ({expr.labels[position[s]]})")
if st.session_state.get("teach_genes_data") != state.data_key:  # other data: their own well-known genes
    st.session_state["w_teach_genes"] = ", ".join(suggested)
    st.session_state["teach_genes_data"] = state.data_key
# a text box, not a list of every gene: the Gallery's select box of 9,450 symbols cost the browser 5-9 s at
# every rerun (benchmarks/bench_browser_work.py); this multiselect offered the same list
typed = cols[1].text_input("Genes to follow (up to 8, separated by commas)", key="w_teach_genes",
                           help="Symbols or ids of these data, or other names of their genes (aliases, old "
                                "symbols, Entrez or Ensembl ids), looked up in the shipped gene annotation.")
followed = genes_to_follow(layout, typed)
genes = followed.names
for message in followed.renamed:
    st.caption(message)
for message in followed.missing:
    st.warning(message)
index = position[sample]
label = "" if expr.labels is None else str(expr.labels[index])



def go(offset: int) -> None:
    """Back or Next: move the step (a callback, so it runs before the step widget is drawn)."""
    now = STEPS.index(st.session_state["w_teach_step"])
    st.session_state["w_teach_step"] = STEPS[min(len(STEPS) - 1, max(0, now + offset))]


back, middle, forward = st.columns([1, 8, 1], vertical_alignment="center")
with middle:
    step = st.radio("Step", STEPS, key=default("w_teach_step", STEPS[0]), horizontal=True,
                    label_visibility="collapsed")
number = STEPS.index(step)
back.button("◀", key="w_btn_teach_back", disabled=number == 0, width="stretch", on_click=go, args=(-1,),
            help="Back one step")
forward.button("▶", key="w_btn_teach_next", disabled=number == len(STEPS) - 1, width="stretch",
               type="primary", on_click=go, args=(1,), help="Next step")

steps = gene_steps(layout, expr, index, genes)
signed = figures.layout_values_signed(layout, images)
colorscale = figures.colorscale_for(signed)
image = images[index, 0]
value_name = VALUE_NAMES.get(layout.normalization.scale, "value")  # the layout's own scaling names the values
zrange = shared_range([image], symmetric=signed)
if number < 4 and steps.empty:
    st.info("Choose one or more genes above to follow them through the steps.")
    st.stop()

if number == 0:
    fig = export.table_figure(steps, sample, label, projector=projector)
elif number == 1:
    fig = export.normalisation_figure(steps, value_name, colorscale, zrange,
                                      log_applied=bool(layout.normalization.log_applied_), projector=projector)
elif number == 2:
    fig = export.pixel_figure(image, empty[0], steps, layout, colorscale=colorscale, zrange=zrange,
                              value_name=value_name, projector=projector)
elif number == 3:
    placed = layout.quality.get("n_genes_placed", 0)
    fig = export.image_export_figure(
        image, empty[0], layout, title=f"4 · The image of sample {sample} ({layout.generator} layout)",
        caption=f"All {placed:,} placed genes, each on its pixel, make the picture: "
                + ("chromosomes (numbered) run in bands from top to bottom. " if layout.generator == "chromosome"
                   else "") + "Grey pixels hold no gene. This picture is what the CNN sees of this sample.",
        colorscale=colorscale, zrange=zrange, value_name=value_name, projector=projector)
else:
    if expr.labels is None:
        st.info("Class means need labels: add a label column on the Data page.")
        st.stop()
    per = glue.class_images(key, images, tuple(expr.labels.tolist()))
    mean = per["means"][per["classes"].index(label), 0]
    n_class = int((expr.labels == label).sum())
    fig = export.class_mean_figure(image, mean, empty[0], layout, sample=sample, label=label, n_class=n_class,
                                   colorscale=colorscale, zrange=shared_range([image, mean], symmetric=signed),
                                   value_name=value_name, projector=projector)

png = export.to_png(fig)
st.image(png, width=1100)  # the whole slide in view on a 1080-line projector; narrower screens: their width
stem = f"rnaimg_step{number + 1}_{sample}".replace("/", "_")
cols = st.columns(3)
cols[0].download_button("PNG of this step", data=png, file_name=f"{stem}.png", mime="image/png",
                        key="w_btn_teach_png", on_click="ignore")
cols[1].download_button("SVG of this step (text editable)", data=partial(export.to_svg, fig), file_name=f"{stem}.svg",
                        mime="image/svg+xml", key="w_btn_teach_svg", on_click="ignore")
if number in (1, 2) and not steps.empty:
    with st.expander("The numbers behind this step"):
        st.dataframe(steps.rename(columns={"per_sample": "log2(x+1)" if layout.normalization.log_applied_
                                           else "per sample", "pixel_value": "pixel value"}),
                     hide_index=True, width="stretch")
