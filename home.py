"""rnaimg dashboard, landing page (the "Home" item of ``app.py``'s navigation).

What the tool does, how one sample becomes an image, and the demo data already
drawn as images. The other pages live in ``pages/``; what they share is in the
``dashboard`` package beside this file.
"""

from functools import partial

import streamlit as st

from dashboard import figures, glue
from dashboard.widgets import default
from rnaimg_core.demo import DEMO_DESCRIPTION
from rnaimg_core.images import shared_range

glue.page_setup("rnaimg")
st.title("rnaimg: expression profiles as images")
st.markdown(
    "rnaimg turns an RNA-seq expression matrix (samples × genes, a tumour or cell type per sample) into "
    "images a convolutional network can learn from. A **layout** decides which gene lands on which pixel: "
    "by chromosome position, by Gene Ontology group, by similarity (SOM, DeepInsight) or directly. "
    "Hover any pixel to see its genes."
)

state = glue.get_state()
glue.data_caption(state)
if state.data_key == "demo":
    with st.expander("About the demo data"):
        st.write(DEMO_DESCRIPTION)

name = state.generator
key, layout = glue.fit_or_stop(state, name)
images = glue.layout_images(key, layout, state.expression)
labels, empty = glue.hover_text(key, layout)
symmetric = figures.layout_values_signed(layout, images)  # the layout's own normalisation decides

st.subheader("How an image is made")
expr = state.expression
sample = 0
genes = glue.named_genes(layout, images[sample])
st.markdown(
    f"Each sample is one image. Take sample **{expr.sample_ids[sample]}**"
    + ("" if expr.labels is None else f" ({expr.labels[sample]})")
    + f": the **{layout.generator}** layout gives every gene a pixel, and the gene's normalised value "
    + ("(here a z-score: red above the gene's average, blue below) " if symmetric
       else f"(here the {state.value_name}) ")
    + "becomes that pixel's colour. "
    f"{len(genes)} named genes are followed below; the other {layout.quality.get('n_genes_placed', 0) - len(genes):,} "
    "placed genes fill the rest of the picture the same way. A CNN then learns from the pictures.")
flow = glue.figure_for(state, ("home_flow", key, sample, state.value_name), partial(
    figures.gene_flow_figure, images[sample, 0], labels[0], genes, empty=empty[0],
    zrange=shared_range([images[sample, 0]], symmetric=symmetric), colorscale=figures.colorscale_for(symmetric),
    value_name=state.value_name, regions=(layout, 0), height=520))
st.plotly_chart(flow, key="home_flow")

st.subheader(f"Class means under the {layout.generator} layout")
show_labels = st.checkbox("Region labels", key=default("w_region_labels", True), disabled=not layout.regions,
                          help="Names of chromosomes, arms or GO blocks on the images (all pages).")
with st.spinner("Drawing the class means…"):
    if expr.labels is not None:
        means = glue.class_images(key, images, tuple(expr.labels.tolist()))
        shown = [m[0] for m in means["means"]]
        fig = glue.figure_for(state, ("home_means", key, show_labels, state.value_name), partial(
            figures.image_grid_figure, shown, means["classes"], labels[0], empty=empty[0],
            zrange=shared_range(shown, symmetric=symmetric), n_cols=3, cell_px=330,
            colorscale=figures.colorscale_for(symmetric), value_name=f"mean {state.value_name}",
            regions=layout, region_labels=show_labels))
    else:
        shown = [images[i, 0] for i in range(min(6, images.shape[0]))]
        fig = figures.image_grid_figure(shown, expr.sample_ids[:len(shown)], labels[0], empty=empty[0],
                                        zrange=shared_range(shown, symmetric=symmetric), n_cols=3, cell_px=330,
                                        colorscale=figures.colorscale_for(symmetric), value_name=state.value_name,
                                        regions=layout, region_labels=show_labels)
st.plotly_chart(fig, key="home_means")

st.markdown("**Where next**")
cols = st.columns(3)
cols[0].page_link("pages/1_Data.py", label="Data: upload a matrix or pick the demo")
cols[0].page_link("pages/2_Layout.py", label="Layout: choose and tune a generator")
cols[1].page_link("pages/3_Gallery.py", label="Gallery: classes (tumour or cell types) side by side")
cols[1].page_link("pages/4_Train.py", label="Train: a quick CNN against a baseline")
cols[2].page_link("pages/5_Explain.py", label="Explain: which genes mattered")
cols[2].page_link("pages/6_Compare.py", label="Compare layouts: does the arrangement help?")
st.page_link("pages/7_Classroom.py", label="Classroom: how an image is made, step by step, in large type for a "
                                          "projector (your sample, your genes; PNG and SVG of every step)")
