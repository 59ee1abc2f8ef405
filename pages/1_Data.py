"""Data page: pick the demo, synthetic data or an upload; choose normalisation; see a summary."""

import pandas as pd
import streamlit as st

from dashboard import glue, memory
from dashboard.figures import report_tables
from dashboard.state import synthetic_key, upload_key
from dashboard.widgets import default
from rnaimg_core import readers
from rnaimg_core.annotation import ROUTE_TITLES
from rnaimg_core.errors import InputError
from rnaimg_core.gene_map import COLLAPSE_RULES, feature_mapping_lines, read_gene_map_bytes
from rnaimg_core.normalize import DEPTH_CHOICES, LOG_CHOICES, SCALES

DEPTH_WORDS = {"auto": "auto (when values look like counts)", "cpm": "counts per million", "none": "none"}
COLLAPSE_CHOICES = {"auto": "auto", "max_mean": "keep the feature with the highest mean",
                    "mean": "average them", "sum": "add them (counts, TPM)"}
SCALE_WORDS = {"zscore": "mean 0, sd 1 per gene", "minmax": "0 to 1 per gene", "none": "values as they are",
               "sample_max": "share of each sample's largest value"}


def plain_number(value: float) -> str:
    """34,220 rather than 3.422e+04; small or huge values keep 4 significant digits."""
    return f"{value:,.0f}" if 100 <= abs(value) < 1e9 else f"{value:.4g}"


state = glue.start_page("Data", caption=False)
max_mb = int(st.get_option("server.maxUploadSize"))

SOURCES = ("Demo: oligodendroglioma single cells", "Synthetic (labelled, seeded)", "Upload a file")
default("w_data_source", SOURCES[0])
source = st.radio("Data source", SOURCES, key="w_data_source", horizontal=True)

if source == SOURCES[0]:
    if state.data_key == "demo":
        st.caption("The demo data are in use (summary below).")
    elif st.button("Use the demo data", type="primary", key="w_btn_demo"):
        glue.use_data(state, glue.demo_expression(), "demo", {"kind": "demo"})
elif source == SOURCES[1]:
    st.caption("Seeded synthetic expression with TCGA-like class structure; every class name starts with SYN.")
    cols = st.columns(4)
    n_samples = cols[0].number_input("samples", 20, 5000, step=10, key=default("w_syn_samples", 300))
    n_genes = cols[1].number_input("genes", 3000, 20531, step=100, key=default("w_syn_genes", 3000))
    n_classes = cols[2].number_input("classes", 2, 33, step=1, key=default("w_syn_classes", 6))
    seed = cols[3].number_input("seed", 0, 10_000, step=1, key=default("w_syn_seed", 0))
    if st.button("Make synthetic data", type="primary", key="w_btn_synthetic"):
        try:
            with st.spinner("Generating…"):
                expr = memory.make_synthetic(glue.synthetic_expression, int(n_samples), int(n_genes),
                                             int(n_classes), int(seed))
            args = [int(n_samples), int(n_genes), int(n_classes), int(seed)]
            glue.use_data(state, expr, synthetic_key(*args), {"kind": "synthetic", "args": args})
        except InputError as exc:
            st.error(str(exc))
else:
    in_use = st.empty()  # filled below: which upload is in use (the upload boxes are empty after a reload)
    st.caption(f"Matrix: {readers.SUPPORTED_TYPES}, samples × genes or genes × samples, up to {max_mb} MB "
               "(the server refuses larger files; subset genes or samples, or use the command line "
               "`rnaimg convert`, which has no such limit). " + glue.STORAGE_STATEMENT)
    # no type filter: Streamlit would raise on another file type; the reader names what it reads instead
    matrix_file = st.file_uploader("Expression matrix", key="upload_matrix")
    sheet_file = st.file_uploader("Sample sheet (optional): a sample id column and a label column",
                                  key="upload_sheet")
    map_file = st.file_uploader("Gene map (optional, for probe ids): feature id and gene (Entrez, symbol or Ensembl), "
                                "or a GEO platform (GPL) table", key="upload_gene_map")
    collapse = st.selectbox("Several features of one gene (probes, transcripts)", COLLAPSE_RULES,
                            key="w_collapse", format_func=lambda rule: COLLAPSE_CHOICES.get(rule, rule),
                            help="auto: the probe with the highest mean for a gene map; the sum of a gene's "
                                 "transcripts (ENST, NM_ ids) on a raw scale. Features naming several genes are "
                                 "dropped.")
    cols = st.columns(2)
    label_column = cols[0].text_input("Label column (empty = guess: cell_type, tumor_type, label …)",
                                      key="w_label_column").strip() or None
    orientation = cols[1].selectbox("Orientation", readers.ORIENTATIONS, key="w_orientation",
                                    help="auto: the side whose ids match gene names better holds the genes.")
    just_read = False
    if st.button("Read the file", type="primary", key="w_btn_read", disabled=matrix_file is None):
        data = matrix_file.getvalue()
        sheet = None if sheet_file is None else sheet_file.getvalue()
        gene_map_bytes = None if map_file is None else map_file.getvalue()
        if len(data) > max_mb * 2**20:
            st.error(f"{matrix_file.name} is {len(data) / 2**20:.1f} MB, over the dashboard's upload limit of "
                     f"{max_mb} MB. Raise it with maxUploadSize under [server] in .streamlit/config.toml, or read "
                     "the file with the command line (`rnaimg convert --input`).")
        else:
            try:
                with st.spinner(f"Reading {matrix_file.name}…"):
                    gene_map = None if map_file is None else memory.read_upload(gene_map_bytes, map_file.name,
                                                                                 reader=read_gene_map_bytes)
                    expr = memory.read_upload(  # within the server's memory budget
                        data, matrix_file.name, labels=sheet,
                        labels_filename=None if sheet_file is None else sheet_file.name,
                        label_column=label_column, orientation=orientation, gene_map=gene_map, collapse=collapse)
                if expr.labels is None:
                    st.warning("No label column found: images can be drawn, but class comparisons and training "
                               "need labels. Name the label column or add a sample sheet.")
                map_name = None if map_file is None else map_file.name
                key = upload_key(data, matrix_file.name, sheet, None if sheet_file is None else sheet_file.name,
                                 label_column, orientation, gene_map_bytes, map_name, collapse)
                glue.use_data(state, expr, key, {"kind": "upload", "filename": matrix_file.name,
                                                 "labels_filename": None if sheet_file is None else sheet_file.name,
                                                 "label_column": label_column, "orientation": orientation,
                                                 "gene_map_filename": map_name, "collapse": collapse},
                              files={"matrix": data, "sheet": sheet, "gene_map": gene_map_bytes})
                st.success(f"Read {matrix_file.name}: {expr.n_samples:,} samples × {expr.n_genes:,} genes.")
                just_read = True
            except InputError as exc:
                st.error(str(exc))
    if state.origin.get("kind") == "upload" and not just_read:
        in_use.info(f"In use now: **{state.origin.get('filename', 'your upload')}**"
                    + (f" with the sample sheet **{state.origin['labels_filename']}**"
                       if state.origin.get("labels_filename") else "")
                    + (f" and the gene map **{state.origin['gene_map_filename']}**"
                       if state.origin.get("gene_map_filename") else "")
                    + f" ({state.expression.n_samples:,} samples × {state.expression.n_genes:,} genes). "
                    "Upload another file to replace it.")

with st.expander("What this server keeps of your session"):
    st.markdown(glue.STORAGE_STATEMENT)
    kept = state.workspace.size_bytes() if state.workspace is not None else 0
    st.caption(f"This session keeps {kept / 2**20:,.1f} MB on the server now.")
    if st.button("Delete this session's data now", key="w_btn_delete_session"):
        glue.delete_session_data(state)
        st.success("Deleted: your upload, choices, layouts and model are gone from the server; the demo data are "
                   "in use under a new session address.")

st.divider()
st.subheader("Normalisation")
st.caption("Fitted per gene on the layout's training samples and stored in the layout file, so new samples get "
           "exactly the same transform. Used by every generator.")
cols = st.columns(3)
default("w_norm_log", state.log)
default("w_norm_scale", state.scale)
default("w_norm_depth", state.depth)
state.log = cols[0].selectbox("log2(x+1)", LOG_CHOICES, key="w_norm_log",
                              format_func=lambda choice: {"auto": "auto (when values look raw)"}.get(choice, choice),
                              help="auto applies it when values look raw (counts or TPM).")
state.scale = cols[1].selectbox("Per-gene scaling", SCALES, key="w_norm_scale",
                                format_func=lambda scale: f"{scale}: {SCALE_WORDS[scale]}" if scale in SCALE_WORDS
                                else scale,
                                help="zscore: mean 0, sd 1 per gene; minmax: 0 to 1; none: as is; sample_max: each "
                                     "sample divided by its largest placed gene (Lyu & Haque), 0 to 1.")
state.depth = cols[2].selectbox("Sequencing depth", DEPTH_CHOICES, key="w_norm_depth",
                                format_func=lambda choice: DEPTH_WORDS.get(choice, choice),
                                help="Counts per million of each sample's sum before the log, so library size does "
                                     "not set image brightness. auto applies it to counts, whole (read counts, RSEM "
                                     "expected counts) or estimated (Salmon, kallisto: sums in the millions); "
                                     "not to TPM, FPKM or logged values.")

st.divider()
expr = state.expression
report = glue.data_report(state.data_key, expr)
st.subheader("Summary")
st.caption(f"Source: {report['source']}")
mapping = report.get("gene_mapping", {})
cols = st.columns(4)
cols[0].metric("Samples", f"{report['n_samples']:,}")
cols[1].metric("Genes", f"{report['n_genes']:,}")
cols[2].metric("Classes", len(report["classes"]))
cols[3].metric("Genes mapped to annotation", f"{mapping.get('n_mapped', 0):,}",
               help=f"{mapping.get('n_with_position', 0):,} of them have a chromosome position (GRCh38).")
classes, routes, join = report_tables(report)
left, right = st.columns(2)
with left:
    st.markdown("**Classes**")
    if classes.empty:
        st.info("No labels.")
    else:
        st.dataframe(classes, hide_index=True, width="stretch")
with right:
    st.markdown("**Gene ids matched by**")
    routes["matched by"] = routes["matched by"].map(lambda route: ROUTE_TITLES.get(route, route))
    st.dataframe(routes, hide_index=True, width="stretch")
n_unmapped = int(mapping.get("by_route", {}).get("unmapped", 0))
if n_unmapped:
    st.markdown(f"**{n_unmapped:,} gene id(s) matched no gene** in the shipped annotation (HGNC symbols, NCBI "
                "Entrez ids, GRCh38 positions). They stay in the data; layouts that place genes by chromosome or "
                "Gene Ontology leave them out, the others use them like any gene.")
    ambiguous = mapping.get("ambiguous_previous_examples", {})
    others = [gene for gene in mapping.get("unmapped_examples", []) if gene not in ambiguous]
    if others:
        st.caption("Not matched, for example: " + ", ".join(others))
    if ambiguous:
        n_ambiguous = int(mapping.get("n_ambiguous_previous", len(ambiguous)))
        st.markdown(f"{n_ambiguous:,} of them are **old official symbols that HGNC later gave to more than one "
                    "gene**, so rnaimg does not guess which one your data mean. If you know, rename the gene in "
                    "your file to its current symbol and read it again.")
        st.dataframe(pd.DataFrame({"symbol in your data": list(ambiguous),
                                   "was an official symbol of (today's symbols)": [
                                       " or ".join(genes) for genes in ambiguous.values()]}),
                     hide_index=True, width="stretch")
        if n_ambiguous > len(ambiguous):
            st.caption(f"The first {len(ambiguous)} of {n_ambiguous:,} are shown.")

st.markdown(f"**Values** from {plain_number(report['value_min'])} to {plain_number(report['value_max'])}. "
            f"{report['value_scale_message']}")
if state.depth != "auto":
    st.caption(f"Sequencing depth is set to **{state.depth}** above: "
               + ("every layout scales each sample to counts per million." if state.depth == "cpm"
                  else "no layout scales samples by their library size."))
if report.get("geo_samples"):
    geo = report["geo_samples"]
    st.caption("GEO sample annotation: " + ", ".join(f"*{k}* (e.g. {v})" for k, v in geo["columns"].items())
               + (f". Labels from **{geo['label_column']}**." if geo.get("label_column")
                  else ". Name one as the label column to use it."))
if report.get("feature_mapping"):
    st.markdown("**Features to genes.** " + " ".join(feature_mapping_lines(report["feature_mapping"])))
if "orientation" in report:
    reason = report.get("orientation_reason")
    st.caption(f"Orientation: {report['orientation']}" + (f", because {reason}." if reason else ".")
               + (f" Header: {report['header']}." if report.get("header") else ""))
if report.get("gene_ids_note"):
    st.info(report["gene_ids_note"])
if join and (join.get("n_samples_without_label") or join.get("n_labels_without_sample")):
    st.warning(f"{join['n_samples_without_label']} sample(s) had no label and were left out "
               f"(e.g. {', '.join(join['samples_without_label'][:5])}); "
               f"{join['n_labels_without_sample']} sample sheet row(s) matched no sample.")
with st.expander("Full report (JSON)"):
    st.json(report, expanded=False)
