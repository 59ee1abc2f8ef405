"""Every dashboard page, driven headless with streamlit's AppTest.

The demo data (184 cells x 9,450 genes) are used where the page's first
screen is the point; tests that fit every generator or train use a small
seeded synthetic set put into the session directly, so the whole file runs
in well under two minutes.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("streamlit")
from streamlit.testing.v1 import AppTest  # noqa: E402

from dashboard.glue import STATE_KEY  # noqa: E402
from dashboard.state import AppState  # noqa: E402
from rnaimg_core import load_synthetic  # noqa: E402
from rnaimg_core.generators import REGISTRY  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
APP = str(ROOT / "app.py")
TIMEOUT = 180


def problems(at: AppTest) -> list[str]:
    return [str(e.value) for e in at.exception] + [str(e.value) for e in at.error]


def open_page(page: str | None = None, state: AppState | None = None) -> AppTest:
    """The app opened at ``page`` (default: Home), as a visitor who typed that page's address: one run."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    if state is not None:
        at.session_state[STATE_KEY] = state
    if page is not None:
        at.switch_page(page)  # straight there: a run of Home first cost each test about half a second
    at.run()
    return at


@pytest.fixture(scope="module")
def small_state_factory():
    expr = load_synthetic(n_samples=60, n_genes=600, n_classes=3, seed=0, n_modules=5, module_size=20,
                          n_driver_genes=10)

    def make() -> AppState:
        state = AppState()
        state.set_data(expr, "synthetic:test-small")
        return state

    return make


def test_home_shows_demo_images():
    at = open_page()
    assert not problems(at)
    assert at.session_state[STATE_KEY].data_key == "demo"
    charts = at.get("plotly_chart")
    assert charts, "the first screen shows the demo's class-mean images"


def test_data_page_summarises_the_demo():
    at = open_page("pages/1_Data.py")
    assert not problems(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Samples"] == "184"
    assert metrics["Genes"] == "9,450"
    assert metrics["Classes"] == "6"
    assert "log2(x+1) is advised" in " ".join(m.value for m in at.markdown)


def _upload(at: AppTest, name: str, data: bytes) -> AppTest:
    at.radio(key="w_data_source").set_value("Upload a file").run()
    at.file_uploader(key="upload_matrix").set_value((name, data, "text/csv")).run()
    at.button(key="w_btn_read").click().run()
    return at


@pytest.mark.parametrize("name, data, message", [
    ("matrix.csv.gz", b"not gzip at all", "could not be read"),
    ("matrix.csv", b"", "is empty"),
    ("matrix.csv", b"sample,TP53,EGFR\ns1,1.0,abc\ns2,2.0,3.0\n", "non-numeric value"),
    # ids that match no gene are accepted now (annotation-free layouts); a repeated id header is not
    ("matrix.csv", b"sample,sample,EGFR\npatientA,1,2\npatientB,3,4\n", "appears again in the header"),
    ("matrix.zip", b"PK\x03\x04" + b"\x00" * 40, "unsupported file type '.zip'"),  # issue 20.5: no traceback
])
def test_bad_upload_shows_the_library_message_and_the_app_keeps_working(name, data, message):
    at = open_page("pages/1_Data.py")
    _upload(at, name, data)
    assert not at.exception
    errors = [e.value for e in at.error]
    assert errors and message in errors[0], errors
    assert at.session_state[STATE_KEY].data_key == "demo"  # the previous data stay in use
    at.switch_page("pages/2_Layout.py").run()
    assert not problems(at)


def test_data_page_says_what_is_kept_and_deletes_it():
    """Issue 20.4: the storage statement is true, and the session's data go at once from the page."""
    at = open_page("pages/1_Data.py")
    text = " ".join(e.value for e in at.markdown) + " ".join(e.value for e in at.caption)
    assert "removed at once" not in text and "2 hours after your last use" in text
    state = at.session_state[STATE_KEY]
    old_folder = state.workspace.folder
    assert old_folder.exists()
    at.button(key="w_btn_delete_session").click().run()
    assert not problems(at)
    assert not old_folder.exists() and at.session_state[STATE_KEY].workspace.folder != old_folder
    assert at.session_state[STATE_KEY].data_key == "demo"


def test_good_upload_replaces_the_data():
    rng = np.random.default_rng(0)
    genes = ["TP53", "EGFR", "MYC", "KRAS", "PTEN", "CDK4", "MDM2", "BRCA1"]
    frame = pd.DataFrame(rng.gamma(2, 50, size=(12, len(genes))), columns=genes,
                         index=pd.Index([f"s{i}" for i in range(12)], name="sample"))
    frame.insert(0, "tumor_type", ["A"] * 6 + ["B"] * 6)
    buffer = io.StringIO()
    frame.to_csv(buffer)
    at = open_page("pages/1_Data.py")
    _upload(at, "mine.csv", buffer.getvalue().encode())
    assert not problems(at)
    state = at.session_state[STATE_KEY]
    assert state.data_key.startswith("upload:")
    assert state.expression.n_samples == 12 and state.expression.classes == ["A", "B"]
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Samples"] == "12"


def test_the_data_page_names_old_symbols_of_several_genes_with_their_candidates():
    rng = np.random.default_rng(0)
    genes = ["TP53", "EGFR", "MYC", "QARS", "STRA13", "NOT_A_GENE_1"]
    frame = pd.DataFrame(rng.gamma(2, 50, size=(12, len(genes))), columns=genes,
                         index=pd.Index([f"s{i}" for i in range(12)], name="sample"))
    frame.insert(0, "tumor_type", ["A"] * 6 + ["B"] * 6)
    at = open_page("pages/1_Data.py")
    _upload(at, "old_symbols.csv", frame.to_csv().encode())
    assert not problems(at)
    text = " ".join(m.value for m in at.markdown)
    assert "3 gene id(s) matched no gene" in text
    assert "2 of them are **old official symbols that HGNC later gave to more than one gene**" in text
    ambiguous = next(t.value for t in at.dataframe if "symbol in your data" in t.value.columns)
    candidates = dict(zip(ambiguous["symbol in your data"], ambiguous.iloc[:, 1]))
    assert candidates == {"QARS": "EPRS1 or QARS1", "STRA13": "BHLHE40 or CENPX"}
    assert any("NOT_A_GENE_1" in c.value and "QARS" not in c.value for c in at.caption)  # the other unmatched id
    routes = next(t.value for t in at.dataframe if "matched by" in t.value.columns)
    assert "current HGNC symbol" in set(routes["matched by"]) and "not matched" in set(routes["matched by"])
    at.run()  # the upload box no longer says what is in use; the page does
    assert any("In use now: **old_symbols.csv**" in i.value for i in at.info)


def test_every_page_opens_on_the_demo_without_a_traceback():
    at = open_page()
    for page in ("pages/1_Data.py", "pages/2_Layout.py", "pages/3_Gallery.py", "pages/4_Train.py",
                 "pages/5_Explain.py", "pages/6_Compare.py", "app.py"):  # app.py: the landing page
        at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])
        assert not at.error, (page, [e.value for e in at.error])


def test_layout_page_fits_the_default_on_the_demo_and_offers_the_file():
    at = open_page("pages/2_Layout.py")
    assert not problems(at)
    state = at.session_state[STATE_KEY]
    assert any(key.startswith("chromosome:") for key in state.layouts)
    assert at.get("plotly_chart")
    labels = [b.label for b in at.get("download_button")]
    assert any("layout file" in label for label in labels)


def test_every_generator_can_be_chosen_and_fitted(small_state_factory):
    at = open_page("pages/2_Layout.py", small_state_factory())
    assert not problems(at)
    options = at.selectbox(key="w_generator").options
    assert len(options) == len(REGISTRY)
    for name in REGISTRY:
        at.selectbox(key="w_generator").set_value(name).run()
        assert not problems(at), (name, problems(at))
        state = at.session_state[STATE_KEY]
        assert state.generator == name
        assert any(key.startswith(name + ":") for key in state.layouts), name


def _heatmap_colours(at: AppTest) -> list[str]:
    """The lowest colour of each chart's first heatmap, in page order."""
    import json

    colours = []
    for chart in at.get("plotly_chart"):
        heatmaps = [t for t in json.loads(chart.proto.spec)["data"] if t.get("type") == "heatmap"]
        colours.append(heatmaps[0]["colorscale"][0][1] if heatmaps else "")
    return colours


def test_layout_images_take_the_colour_map_of_their_own_normalisation(small_state_factory):
    """Lyu & Haque's images (0-1 per sample) on the sequential map, z-scored layouts beside them on the diverging one."""
    at = open_page("pages/2_Layout.py", small_state_factory())
    viridis_low, rdbu_low = "#440154", "rgb(5,48,97)"
    [image] = _heatmap_colours(at)  # only the open tab (the sample image) is drawn
    assert image == rdbu_low  # z-scores: diverging about 0
    at.session_state["w_layout_tab"] = "Compare layouts"
    at.run()
    assert set(_heatmap_colours(at)) == {rdbu_low}  # the compare tab's images
    at.selectbox(key="w_param_chromosome_preset").set_value("lyu_haque_paper")
    at.button(key="FormSubmitter:params_chromosome-Fit layout").click().run()
    assert not problems(at)
    this_one, other = _heatmap_colours(at)
    assert this_one == viridis_low  # the preset's sample_max scaling, whatever the Data page says
    assert other == rdbu_low  # the compared deepmapper layout keeps its z-scores
    at.session_state["w_layout_tab"] = "Sample image"
    at.run()
    assert _heatmap_colours(at) == [viridis_low]


def test_changing_a_parameter_refits_and_keeps_the_old_fit(small_state_factory):
    at = open_page("pages/2_Layout.py", small_state_factory())
    at.selectbox(key="w_generator").set_value("deepmapper").run()
    at.selectbox(key="w_param_deepmapper_order").set_value("variance")  # inside the form: applied on submit
    at.button(key="FormSubmitter:params_deepmapper-Fit layout").click().run()
    assert not problems(at)
    state = at.session_state[STATE_KEY]
    fitted = [layout for key, layout in state.layouts.items() if key.startswith("deepmapper:")]
    assert {layout.params["order"] for layout in fitted} == {"input", "variance"}
    # going back to the defaults reuses the session's earlier fit
    before = dict(state.layouts)
    at.button(key="w_btn_reset").click().run()
    assert not problems(at)
    assert set(at.session_state[STATE_KEY].layouts) == set(before)


def _fit_with(at: AppTest, generator: str, **values) -> AppTest:
    for name, value in values.items():
        at.number_input(key=f"w_param_{generator}_{name}").set_value(value)
    return at.button(key=f"FormSubmitter:params_{generator}-Fit layout").click().run()


def test_an_oversize_layout_request_goes_back_to_the_last_good_parameters(small_state_factory):
    at = open_page("pages/2_Layout.py", small_state_factory())
    at.selectbox(key="w_generator").set_value("deepmapper").run()
    _fit_with(at, "deepmapper", height=40, width=30)  # a good, non-default size
    assert not problems(at)
    state = at.session_state[STATE_KEY]
    good = [layout for layout in state.layouts.values() if layout.shape == (1, 40, 30)]
    assert good and state.good_params["deepmapper"]["height"] == 40

    # 60 samples x 16 x 1024 x 1024 float32 = 4 GB: over max_image_bytes, refused before fitting
    _fit_with(at, "deepmapper", height=1024, width=1024, channels=16)
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1, errors
    assert "max_image_bytes" in errors[0] and "RNAIMG_MAX_IMAGE_BYTES" in errors[0]
    assert "Back to the last parameters that fitted: height 40 (not 1024), width 30 (not 1024), " \
           "channels 1 (not 16)." in errors[0]
    state = at.session_state[STATE_KEY]
    assert {k: state.params["deepmapper"][k] for k in ("height", "width", "channels")} == \
           {"height": 40, "width": 30, "channels": 1}
    assert [at.number_input(key=f"w_param_deepmapper_{k}").value for k in ("height", "width", "channels")] == \
           [40, 30, 1]  # the form shows the restored values
    assert at.metric[0].value == "1×40×30"  # the previous layout is still shown
    assert not any(layout.shape[0] == 16 for layout in state.layouts.values())

    at.run()  # the message is shown once, not on every later run
    assert not problems(at)
    for page in ("pages/3_Gallery.py", "pages/4_Train.py", "pages/5_Explain.py", "app.py", "pages/2_Layout.py"):
        at.switch_page(page).run()
        assert not problems(at), (page, problems(at))
    assert at.metric[0].value == "1×40×30"


def test_an_oversize_request_that_never_fitted_goes_back_to_the_defaults(small_state_factory):
    state = small_state_factory()
    state.params["chromosome"] = {"height": 1024, "width": 1024, "channels": 16}  # e.g. choices of a reload
    at = open_page(None, state)  # the landing page draws the chosen generator's layout first
    assert not at.exception
    errors = [e.value for e in at.error]
    assert len(errors) == 1 and "max_image_bytes" in errors[0], errors
    assert "Back to the default parameters: height 0 (not 1024), width 0 (not 1024), channels 1 (not 16)." \
        in errors[0]
    state = at.session_state[STATE_KEY]
    assert "chromosome" not in state.params and state.good_params["chromosome"] == {}
    assert at.get("plotly_chart")  # the default layout's images are shown
    at.switch_page("pages/2_Layout.py").run()
    assert not problems(at) and at.metric[0].value.startswith("1×")


def _heatmaps(chart) -> int:
    return sum(t.get("type") == "heatmap" for t in json.loads(chart.proto.spec)["data"])


def test_gallery_keeps_its_tab_while_searching_a_gene():
    at = open_page("pages/3_Gallery.py")
    assert not problems(at)
    [samples] = at.get("plotly_chart")  # only the open tab is drawn: 3 samples of each of the 6 classes
    assert _heatmaps(samples) == 18
    at.session_state["w_gallery_tab"] = "Class means"
    at.run()
    at.text_input(key="w_gallery_gene").set_value("p53").run()  # an alias: the data's TP53
    assert not problems(at)
    assert at.session_state["w_gallery_tab"] == "Class means"
    [means] = at.get("plotly_chart")
    assert _heatmaps(means) == 6  # still the class means, the gene's pixel marked on each
    assert any("TP53" in m.value and "row" in m.value for m in at.info), [m.value for m in at.info]
    marks = [t for t in json.loads(means.proto.spec)["data"] if t.get("name") == "search"]
    assert len(marks) == 6, [t.get("name") for t in json.loads(means.proto.spec)["data"]]
    at.text_input(key="w_gallery_gene").set_value("EGRF").run()  # a typo: names spelt alike, nothing marked
    assert any("EGFR" in w.value for w in at.warning), [w.value for w in at.warning]
    assert not [t for t in json.loads(at.get("plotly_chart")[0].proto.spec)["data"] if t.get("name") == "search"]


def test_train_runs_one_epoch_and_compares_with_the_baseline(small_state_factory):
    at = open_page("pages/4_Train.py", small_state_factory())
    assert not problems(at)
    at.number_input(key="w_train_epochs").set_value(1)
    at.button(key="FormSubmitter:train_settings-Train").click().run()
    assert not problems(at)
    metrics = {m.label: m.value for m in at.metric}
    assert "CNN balanced accuracy" in metrics and "Baseline balanced accuracy" in metrics
    assert metrics["Epochs"].startswith("1")
    job = at.session_state[STATE_KEY].training
    assert job.result is not None and len(job.result.history) == 1
    assert any("trained model" in b.label for b in at.get("download_button"))


def _column_with_metric(at: AppTest, label: str):
    """The column (of the page's columns) that holds the metric tile named ``label``."""
    return next(column for column in at.columns if any(m.label == label for m in column.metric))


def test_a_perfect_test_score_is_qualified_beside_the_headline(small_state_factory):
    from dataclasses import replace

    from dashboard.training import TrainingJob

    at = open_page("pages/4_Train.py", small_state_factory())
    at.number_input(key="w_train_epochs").set_value(1)
    at.button(key="FormSubmitter:train_settings-Train").click().run()
    assert not problems(at)
    state = at.session_state[STATE_KEY]
    job = state.training
    support = job.result.confusion.sum(axis=1)
    n_test = int(support.sum())

    # every test sample right for the CNN, one error for the baseline: the note stands beside the CNN's score only
    wrong = np.diag(support).astype(int)
    wrong[0, 0] -= 1
    wrong[0, 1] += 1
    result = replace(job.result, confusion=np.diag(support).astype(int),
                     baseline={**job.result.baseline, "confusion": wrong.tolist()})
    state.training = TrainingJob.finished(result, job.layout_key, job.settings)
    at.run()
    assert not problems(at)
    cnn_notes = [w.value for w in _column_with_metric(at, "CNN balanced accuracy").warning]
    assert len(cnn_notes) == 1, cnn_notes
    assert f"All {n_test} test samples were classified correctly by the CNN" in cnn_notes[0]
    assert "could be as low as" in cnn_notes[0]
    assert not _column_with_metric(at, "Baseline balanced accuracy").warning

    # no perfect score: no such note anywhere
    state.training = TrainingJob.finished(replace(result, confusion=wrong), job.layout_key, job.settings)
    at.run()
    assert not problems(at)
    assert not any("classified correctly" in w.value for w in at.warning)


def test_explain_needs_a_model_then_shows_maps_and_a_top_genes_table(small_state_factory):
    at = open_page("pages/5_Explain.py", small_state_factory())
    assert not problems(at)
    assert any("Train a model first" in m.value for m in at.info)
    at.switch_page("pages/4_Train.py").run()
    at.number_input(key="w_train_epochs").set_value(2)
    at.button(key="FormSubmitter:train_settings-Train").click().run()
    assert not problems(at)
    at.switch_page("pages/5_Explain.py").run()
    assert not problems(at)
    assert len(at.get("plotly_chart")) == 2
    tables = at.dataframe
    assert len(tables) >= 2  # genes of the chosen pixel, top genes of the class
    top = tables[-1].value
    assert {"rank", "symbol", "score"} <= set(top.columns) and len(top) > 10
    assert top["score"].is_monotonic_decreasing
    # one sample, another method
    at.radio(key="w_explain_mode").set_value("a sample").run()
    at.selectbox(key="w_explain_method").set_value("integrated_gradients").run()
    assert not problems(at)
    assert any("Gene attribution table" in b.label for b in at.get("download_button"))
    # choosing a pixel lists its genes
    at.number_input(key="w_explain_row").set_value(1).run()
    assert not problems(at)
    assert len(at.dataframe[0].value) >= 1


def test_an_all_zero_attribution_is_called_out_not_listed_as_top_genes(small_state_factory):
    import torch

    at = open_page("pages/4_Train.py", small_state_factory())
    at.number_input(key="w_train_epochs").set_value(1)
    at.button(key="FormSubmitter:train_settings-Train").click().run()
    job = at.session_state[STATE_KEY].training
    with torch.no_grad():  # a network that ignores its input: every gradient, so every saliency, is 0
        for parameter in job.result.model.network.parameters():
            parameter.zero_()
    at.switch_page("pages/5_Explain.py").run()
    assert not problems(at)
    warnings = [w.value for w in at.warning]
    assert any("all-zero map" in w and "Try another method" in w for w in warnings), warnings
    assert any("No top genes" in i.value for i in at.info)
    assert len(at.dataframe) == 1  # the chosen pixel's genes only, no table of zero scores


def test_a_slow_fit_says_how_long_it_will_take_and_waits_for_the_go():
    from dashboard.glue import CONFIRM_SECONDS, DEMO_CELLS, EXPECTED_DEMO_SECONDS

    # on the demo every generator is expected under the threshold, so a switch fits at once
    assert max(EXPECTED_DEMO_SECONDS.values()) < CONFIRM_SECONDS
    # 3.9x the demo's cells: DeepInsight's t-SNE is expected to take about 20 s, so the page waits for a go
    expr = load_synthetic(n_samples=400, n_genes=16_000, n_classes=3, seed=0)
    assert expr.n_samples * expr.n_genes * EXPECTED_DEMO_SECONDS["deepinsight"] / DEMO_CELLS > 2 * CONFIRM_SECONDS
    state = AppState()
    state.set_data(expr, "synthetic:test-slow-fit")
    at = open_page("pages/2_Layout.py", state)
    at.selectbox(key="w_generator").set_value("deepinsight").run()
    assert not problems(at)
    notes = [i.value for i in at.info if "expected to take" in i.value]
    assert notes and "400 samples × 16,000 genes" in notes[0], [i.value for i in at.info]
    assert not any(key.startswith("deepinsight:") for key in at.session_state[STATE_KEY].layouts)  # not started
    assert any(b.label.startswith("Fit ") and b.label.endswith(" now") for b in at.button)


def test_compare_page_shows_a_finished_check_and_offers_its_files(small_state_factory):
    from dashboard.compare import CheckPlan, LayoutCheckJob
    from rnaimg_core.compare import LayoutCheck, check_settings

    state = small_state_factory()
    folds = [{"repeat": 0, "fold": fold, "generator": generator, "arm": arm, "model": model, "accuracy": score,
              "balanced_accuracy": score, "seconds": 1.0, "n_train": 40, "n_test": 20}
             for fold in range(2)
             for generator, arm, model, score in (("chromosome", "probe", "layout", 0.9 + fold / 100),
                                                  ("chromosome", "probe", "permutation", 0.6),
                                                  ("chromosome", "hybrid", "layout", 0.85),
                                                  ("", "flat", "baseline", 0.8))]
    job = LayoutCheckJob(state.expression, state.data_key, CheckPlan((), 2, 1, None, check_settings(quick=True)))
    job.result = LayoutCheck(generators=["chromosome"], folds=folds, n_folds=2, n_repeats=1, arms=("probe",),
                             folds_run=2)
    state.layout_check = job  # finished without running: the thread was never started
    at = open_page("pages/6_Compare.py", state)
    assert not problems(at)
    assert any("Chromosome" in s.value or "chromosome" in s.value for s in at.success), [s.value for s in at.success]
    labels = [b.label for b in at.get("download_button")]
    assert "Download the table (CSV)" in labels and "Download everything (JSON)" in labels


def _reload(token: str, page: str) -> AppTest:
    """A new browser session on the same address (a reload, or the address pasted into another tab)."""
    from dashboard.workspace import TOKEN_PARAM

    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    at.query_params[TOKEN_PARAM] = token
    at.switch_page(page).run()
    return at


def test_a_reload_during_training_attaches_to_the_run_and_shows_its_result():
    import threading

    from dashboard import glue
    from dashboard.state import synthetic_key
    from dashboard.training import TrainingJob
    from rnaimg_core.images import ImageSet
    from rnaimg_core.model import TrainSettings

    args = [60, 2100, 3, 0]
    state = AppState()
    state.set_data(glue.synthetic_expression(*args), synthetic_key(*args), {"kind": "synthetic", "args": args})
    at = open_page("pages/4_Train.py", state)
    assert not problems(at)
    key, layout = next(iter(state.layouts.items()))
    expr = state.expression
    images = glue.layout_images(key, layout, expr)
    job = glue.start_job(state, "train", TrainingJob(ImageSet(images, expr.sample_ids, expr.labels, state.split,
                                                                 layout), key,
                                                        TrainSettings(epochs=400, patience=400, n_models=1)))
    threading.Timer(4.0, job.stop_event.set).start()  # the user presses Stop in the reloaded tab, 4 s on
    assert job.running
    # the reload: a new session on the same address runs the Train page while the run goes on
    reloaded = _reload(state.workspace.token, "pages/4_Train.py")
    assert not problems(reloaded)
    assert reloaded.session_state[STATE_KEY].training is job  # attached: its progress, then its result
    assert not job.running and job.result is not None
    assert "CNN balanced accuracy" in {m.label for m in reloaded.metric}


def test_two_tabs_on_one_address_never_mix_their_data():
    from dashboard.state import synthetic_key
    from dashboard.workspace import TOKEN_PARAM, Workspace

    tab_a = open_page("pages/2_Layout.py")  # the demo, its chromosome layout saved in the workspace
    state_a = tab_a.session_state[STATE_KEY]
    token = state_a.workspace.token
    demo_layouts = dict(state_a.layouts)
    # tab B, on the same address, makes synthetic data (what the Data page's use_data writes) ...
    args = [60, 2100, 3, 0]
    tab_b = Workspace.open(token)
    tab_b.save_origin({"kind": "synthetic", "args": args, "data_key": synthetic_key(*args)})
    tab_b.save_layouts(demo_layouts)  # ... while a stale write of tab A's layouts lands after it
    # tab A's next rerun notices and moves to an address of its own
    tab_a.run()
    assert any("Another tab with this session's address loaded other data" in w.value for w in tab_a.warning)
    assert tab_a.query_params[TOKEN_PARAM] != token and state_a.workspace.token != token
    assert state_a.data_key == "demo" and demo_layouts.keys() <= state_a.layouts.keys()  # A keeps its work
    # the warning stays on tab A's next runs (a click must not make it vanish unread) until dismissed
    tab_a.run()
    assert sum("Another tab with this session's address" in w.value for w in tab_a.warning) == 1
    tab_a.button(key="w_dismiss_fork_notice").click().run()
    assert not any("Another tab with this session's address" in w.value for w in tab_a.warning)
    # a reload of the old address restores tab B's data, and not the demo layouts saved there
    reloaded = _reload(token, "pages/2_Layout.py")
    state_b = reloaded.session_state[STATE_KEY]
    assert state_b.data_key == synthetic_key(*args)
    assert not demo_layouts.keys() & state_b.layouts.keys()
    assert any("made from other data" in w.value for w in reloaded.warning), [w.value for w in reloaded.warning]
    # and a reload of tab A's new address restores the demo with its layouts
    again = _reload(state_a.workspace.token, "pages/2_Layout.py")
    assert again.session_state[STATE_KEY].data_key == "demo"
    assert demo_layouts.keys() <= again.session_state[STATE_KEY].layouts.keys()


def test_the_classroom_steps_through_one_sample_with_pictures_to_download():
    at = open_page("pages/7_Classroom.py")
    assert not problems(at)
    assert at.text_input(key="w_teach_genes").value, "well-known genes are suggested"
    at.text_input(key="w_teach_genes").set_value("p53, EGFR; NOT_A_GENE_1").run()  # any name of a gene
    assert [c.value for c in at.caption if "alias of **TP53**" in c.value]
    assert [w.value for w in at.warning if "NOT\\_A\\_GENE\\_1" in w.value], [w.value for w in at.warning]
    table = at.get("image")
    assert len(table) == 1
    for step in range(5):
        assert not problems(at), step
        assert len(at.get("image")) == 1, step  # one picture per step
        labels = [b.label for b in at.get("download_button")]
        assert "PNG of this step" in labels and "SVG of this step (text editable)" in labels
        if step < 4:
            at.button(key="w_btn_teach_next").click().run()
    assert at.radio(key="w_teach_step").value.startswith("5")


def test_a_probe_matrix_with_its_gene_map_reaches_genes_on_the_data_page():
    """A microarray upload (probes DERIVED from real genes) with a GEO-style platform table, and the depth choice."""
    rng = np.random.default_rng(0)
    genes = [("TP53", "7157"), ("EGFR", "1956"), ("MYC", "4609"), ("KRAS", "3845"), ("PTEN", "5728")]
    probes, rows, table = [], [], ["ID\tGene Symbol\tENTREZ_GENE_ID"]
    for k, (symbol, entrez) in enumerate(genes):
        for j in range(2):
            probes.append(f"{1000 + 2 * k + j}_at")
            rows.append(rng.normal(8 - 3 * j, 1, 12))
            table.append(f"{probes[-1]}\t{symbol}\t{entrez}")
    probes.append("2000_at")
    rows.append(rng.normal(8, 1, 12))
    table.append("2000_at\tHLA-DRB1 /// HLA-DRB4\t3123 /// 3126")
    matrix = pd.DataFrame(np.array(rows), index=pd.Index(probes, name="ID_REF"), columns=[f"GSM{i}" for i in range(12)])
    at = open_page("pages/1_Data.py")
    at.radio(key="w_data_source").set_value("Upload a file").run()
    series = matrix.to_csv(sep="\t").encode()
    at.file_uploader(key="upload_matrix").set_value(("series.tsv", series, "text/plain")).run()
    at.file_uploader(key="upload_gene_map").set_value(("GPL96.txt", ("\n".join(table) + "\n").encode(),
                                                        "text/plain")).run()
    at.button(key="w_btn_read").click().run()
    assert not problems(at)
    state = at.session_state[STATE_KEY]
    assert sorted(state.expression.gene_ids) == sorted(symbol for symbol, _ in genes)
    text = " ".join(m.value for m in at.markdown)
    assert "Features to genes" in text and "1 names several genes (e.g. 2000_at)" in text
    at.selectbox(key="w_norm_depth").set_value("cpm").run()
    assert state.generator_params("chromosome")["depth"] == "cpm"
    assert any("Sequencing depth is set to **cpm**" in c.value for c in at.caption)
