"""Layout page: choose a generator, tune it, see the fitted layout, compare layouts side by side."""

import streamlit as st

from dashboard import figures, glue, memory
from dashboard.state import DATA_LEVEL_PARAMS, generator_names
from dashboard.widgets import (
    SESSION_LAYOUT_PARAMS, channel_picker, default, default_choice, draw, param_key, session_layout_choice,
    widget_spec,
)
from rnaimg_core.generators import REGISTRY, get_generator
from rnaimg_core.images import shared_range

state = glue.start_page("Layout")
expr = state.expression

names = generator_names()
if state.generator not in names:
    state.generator = names[0]
default("w_generator", state.generator)
name = st.selectbox("Generator", names, key="w_generator",
                    format_func=lambda n: f"{REGISTRY[n].title}  ·  {n}")
state.generator = name
cls = get_generator(name)
st.markdown(cls.description)
with st.expander(f"Guide: how “{cls.title}” works, what to tune"):
    st.markdown(cls.guide)
    st.caption(f"Reference: {cls.reference}")

left, right = st.columns([1, 2.3])

with left:
    spec = cls.parameter_spec()
    current = state.generator_params(name)
    with st.form(f"params_{name}"):
        st.markdown("**Parameters**")
        channels = int(current.get("channels") or 1)
        chosen = {pname: draw(memory.bounded_spec(widget_spec(param), pname, state.expression.n_samples, channels),
                              default(param_key(name, pname), current[pname]))
                  for pname, param in spec.items()
                  if pname not in DATA_LEVEL_PARAMS and pname not in SESSION_LAYOUT_PARAMS}
        chosen.update({pname: session_layout_choice(state.layouts, pname.capitalize(), f"layout_{name}_{pname}")
                       for pname in spec if pname in SESSION_LAYOUT_PARAMS})
        submitted = st.form_submit_button("Fit layout", type="primary")
    st.caption(f"Normalisation (Data page): log {state.log}, scaling {state.scale}, depth {state.depth}.")
    if submitted:
        state.params[name] = chosen
    if st.button("Reset to defaults", key="w_btn_reset"):
        state.params.pop(name, None)
        for pname, param in spec.items():
            st.session_state.pop(param_key(name, pname), None)
        st.rerun()

def value_figure(image, labels, empty, layout, layout_images, **kwargs):
    """One sample's image on its own colour range, with the colour map its layout's normalisation calls for
    (diverging about 0 for z-scores, sequential for values scaled to 0-1)."""
    signed = figures.layout_values_signed(layout, layout_images)
    return figures.image_figure(image, labels, empty=empty, zrange=shared_range([image], symmetric=signed),
                                colorscale=figures.colorscale_for(signed), **kwargs)


progress_slot = right.empty()
key, layout = glue.fit_or_stop(state, name, container=progress_slot)
images = glue.layout_images(key, layout, expr)
labels, empty = glue.hover_text(key, layout)


def image_tab() -> None:
    image = images[index, channel]
    fig = value_figure(image, labels[channel], empty[channel], layout, images,
                       title=f"{sample} · {layout.generator}",
                       regions=(layout, channel), region_labels=show_labels, height=600,
                       width=int(figures.ASSUMED_CHART_WIDTH_PX * 0.7))  # the right column's width
    st.plotly_chart(fig, key="layout_image")
    st.caption("Hover a pixel for its row, column, genes and value; grey pixels hold no gene.")


def map_tab() -> None:
    counts = layout.genes_per_pixel[channel].astype(float)
    fig = figures.image_figure(counts, labels[channel], empty=empty[channel],
                               colorscale=figures.SEQUENTIAL, value_name="genes on pixel", height=560,
                               regions=(layout, channel), region_labels=show_labels)
    st.plotly_chart(fig, key="layout_counts")


def quality_tab() -> None:
    for key, text in layout.notes.items():
        if key.startswith("warning"):
            st.warning(text)
    st.dataframe(figures.quality_table(layout), hide_index=True, width="stretch")
    if layout.notes:
        st.markdown("**Notes**")
        st.dataframe(figures.notes_table(layout.notes), hide_index=True, width="stretch")
    if layout.regions:
        st.caption(f"{len(layout.regions)} labelled regions.")


def compare_tab() -> None:
    others = [n for n in names if n != name]
    default("w_compare", others[:1])
    compare = st.multiselect("Compare with", others, key="w_compare",
                             format_func=lambda n: REGISTRY[n].title)
    st.caption(f"Same sample ({sample}); each generator with the parameters last used for it.")
    shown = [(name, key, layout)]
    for other in compare:
        if glue.confirm_fit(state, other):  # a slow one waits for its own "Fit now"
            other_key, other_layout = glue.fit_or_stop(state, other, container=st.empty())
            shown.append((other, other_key, other_layout))
    cols = st.columns(len(shown))
    for col, (gen_name, gen_key, gen_layout) in zip(cols, shown):
        gen_images = glue.layout_images(gen_key, gen_layout, expr)
        g_labels, g_empty = glue.hover_text(gen_key, gen_layout)
        g_image = gen_images[index, 0]
        with col:
            fig = value_figure(g_image, g_labels[0], g_empty[0], gen_layout, gen_images,
                               title=REGISTRY[gen_name].title, height=380,
                               width=int(figures.ASSUMED_CHART_WIDTH_PX * 0.7 / len(shown)),
                               regions=(gen_layout, 0), region_labels=show_labels)
            st.plotly_chart(fig, key=f"compare_{gen_name}")
            gq = gen_layout.quality
            st.caption(f"{'×'.join(map(str, gen_layout.shape))} · {gq.get('n_genes_placed', 0):,} genes placed · "
                       f"{100 * gq.get('fraction_pixels_used', 0):.0f} % pixels used · "
                       f"fit {gq.get('seconds', 0):.2f} s")


with right:
    c, h, w = layout.shape
    q = layout.quality
    cols = st.columns(4)
    # short values: a tile cuts off what does not fit, so the "of N" goes to the label
    cols[0].metric("Image (c×h×w)", f"{c}×{h}×{w}")
    cols[1].metric(f"Genes placed (of {q.get('n_genes_in', 0):,})", f"{q.get('n_genes_placed', 0):,}")
    cols[2].metric("Pixels used", f"{100 * q.get('fraction_pixels_used', 0):.1f} %")
    cols[3].metric("Most genes on a pixel", q.get("max_genes_per_pixel", "–"))
    norm = layout.normalization
    st.caption(f"Values: {'counts per million, then ' if norm.depth_applied_ else ''}"
               f"{'log2(x+1), then ' if norm.log_applied_ else ''}per-gene {norm.scale}, fitted on "
               f"{len(layout.fit_sample_ids or [])} samples.")
    preservation = q.get("neighbourhood_preservation")
    st.caption(f"Neighbourhood preservation {figures.fixed(preservation, 3)} "
               f"(measured on {glue.quality_samples_text(q)}).",
               help="Whether genes with similar expression get nearby pixels: the rank correlation, over random "
                    "gene pairs, of expression correlation with pixel nearness (0 = chance, as a random layout; "
                    "1 = perfect), measured on the held-out samples when there are any, else on the fitted ones.")

    sample_ids = expr.sample_ids.tolist()
    position = {s: i for i, s in enumerate(sample_ids)}
    default_choice("w_layout_sample", sample_ids)
    # the sample, channel and labels every tab shows
    cols = st.columns([2, 1, 1])
    sample = cols[0].selectbox("Sample", sample_ids, key="w_layout_sample",
                               format_func=lambda s: s if expr.labels is None
                               else f"{s} ({expr.labels[position[s]]})")
    with cols[1]:
        channel = channel_picker(layout, "w_layout_channel")
    show_labels = cols[2].checkbox("Region labels", key=default("w_region_labels", True),
                                   disabled=not layout.regions,
                                   help="Names of chromosomes, arms or GO blocks on the images (all pages).")
    index = position[sample]
    # only the open tab is drawn (Compare fits other generators); the open tab is kept across reruns
    TABS = {"Sample image": image_tab, "Genes per pixel": map_tab, "Quality and notes": quality_tab,
            "Compare layouts": compare_tab}
    for tab, draw_tab in zip(st.tabs(list(TABS), key=default("w_layout_tab", "Sample image"), on_change="rerun"),
                             TABS.values()):
        if tab.open:
            with tab:
                draw_tab()
    st.download_button("Download layout file (.json, as `rnaimg convert --layout` reads it)",
                       data=layout.to_json, file_name=f"{layout.generator}.layout.json",
                       mime="application/json", key="w_btn_dl_layout", on_click="ignore")
