"""rnaimg dashboard, landing page: ``streamlit run app.py``.

What the tool does, with the demo data already drawn as images. The other
pages live in ``pages/`` (Data, Layout, Gallery, Train, Explain); what they
share is in the ``dashboard`` package beside this file.
"""

import streamlit as st

from dashboard import figures, glue
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
st.subheader(f"Class means under the {layout.generator} layout")
if state.expression.labels is not None:
    means = glue.class_images(key, images, tuple(state.expression.labels.tolist()))
    shown = [m[0] for m in means["means"]]
    fig = figures.image_grid_figure(shown, means["classes"], labels[0], empty=empty[0],
                                    zrange=shared_range(shown, symmetric=True), n_cols=3, cell_px=300,
                                    colorscale=figures.DIVERGING,
                                    value_name="mean z-score")
else:
    shown = [images[i, 0] for i in range(min(6, images.shape[0]))]
    fig = figures.image_grid_figure(shown, state.expression.sample_ids[:len(shown)], labels[0], empty=empty[0],
                                    zrange=shared_range(shown), n_cols=3, cell_px=300)
st.plotly_chart(fig, key="home_means")

st.markdown("**Where next**")
cols = st.columns(3)
cols[0].page_link("pages/1_Data.py", label="Data: upload a matrix or pick the demo")
cols[0].page_link("pages/2_Layout.py", label="Layout: choose and tune a generator")
cols[1].page_link("pages/3_Gallery.py", label="Gallery: compare tumour types side by side")
cols[1].page_link("pages/4_Train.py", label="Train: a quick CNN against a baseline")
cols[2].page_link("pages/5_Explain.py", label="Explain: which genes mattered")
