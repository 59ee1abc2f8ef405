"""Train page: the quick CNN on the current layout's images, live curves, stop button, CNN vs baseline."""

import time
from functools import partial

import numpy as np
import streamlit as st

from dashboard import figures, glue
from dashboard.training import TrainingJob, duration, expected_training, perfect_score_notes
from dashboard.widgets import setting_widget
from rnaimg_core.device import choose_device, cpu_threads, describe_device
from rnaimg_core.errors import InputError
from rnaimg_core.images import ImageSet
from rnaimg_core.model import TrainSettings
from rnaimg_core.splits import HOLDOUT, HOLDOUT_FRACTION

state = glue.start_page("Train")
expr = state.expression
key, layout, images = glue.current_images(state)
DEFAULTS = TrainSettings()
# the live curves are redrawn at most this often: each redraw is a new Plotly chart for the browser to lay out and
# paint (a quarter of a second of a core there; at every epoch that kept a core of the reader's machine busy)
LIVE_CHART_SECONDS = 2.0
dev = choose_device(DEFAULTS.device)
threads = cpu_threads(DEFAULTS.n_threads)  # what training will use, not torch's setting outside a run
device = f"cpu ({threads} thread{'s' if threads != 1 else ''})" if dev.type == "cpu" and threads \
    else describe_device(dev)
st.caption(f"Layout: **{layout.generator}** ({'×'.join(map(str, layout.shape))}) · device: **{device}**")
if expr.labels is None:
    st.warning("Training needs labels: add a label column or a sample sheet on the Data page.")
    st.stop()

job: TrainingJob | None = state.training
running = job is not None and job.running

with st.form("train_settings"):
    chosen = {name: setting_widget(name, label, col) for col, (name, label) in zip(st.columns(5), (
        ("epochs", "epochs (maximum)"), ("batch_size", "batch size"), ("learning_rate", "learning rate"),
        ("patience", "patience (epochs)"), ("seed", "seed")))}
    cols = st.columns(3)
    n_held = int((state.split == HOLDOUT).sum())
    cols[0].caption(f"Test samples: the {n_held} held out when the data were loaded (a stratified "
                    f"{HOLDOUT_FRACTION:.0%}), never used to fit the layout or the network." if n_held else
                    f"No held-out samples (classes too small): a stratified {100 * DEFAULTS.test_fraction:.0f} % "
                    "is held out here.")
    chosen["baseline"] = setting_widget("baseline", "logistic-regression baseline", cols[1])
    chosen["random_control"] = setting_widget("random_control", "random-pixel control", cols[2])
    start = st.form_submit_button("Train", type="primary", disabled=running)

if start and not running:
    image_set = ImageSet(images, expr.sample_ids, expr.labels, state.split, layout)
    # kept under the session's token: a reload attaches to it (dashboard.jobs)
    job = state.training = glue.start_job_or_stop(state, "train", TrainingJob(image_set, key,
                                                                              DEFAULTS.replace(**chosen)))
    running = True

if job is not None and running:
    if st.button("Stop", key="w_btn_stop", help="End after the current batch and keep the best epoch so far."):
        job.stop_event.set()
    st.caption("The run goes on if you reload this page or visit others; it stops if no tab of this session "
               "shows it for a minute.")
    chart, drawn = st.empty(), {"n": 0, "at": -LIVE_CHART_SECONDS}

    def draw_curves() -> None:
        n = len(job.history)
        if n != drawn["n"] and time.monotonic() - drawn["at"] >= LIVE_CHART_SECONDS:
            drawn.update(n=n, at=time.monotonic())
            chart.plotly_chart(figures.training_curves_figure(job.history), key=f"live_curves_{n}")

    glue.follow_job(job, st.progress(0.0, text="Training…"), draw_curves)

if job is None:
    n_train = int((state.split != HOLDOUT).sum())
    typical, longest, basis = expected_training(n_train, layout.shape, DEFAULTS)
    st.info(f"Press **Train** to train the small CNN on these images: about **{duration(typical)}** on this "
            f"server (up to {duration(longest)} if every network trains to the epoch cap), from {basis}.")
    st.stop()
if job.stopped_because:
    st.warning(f"The server stopped this run: {job.stopped_because}. The best epoch so far is kept below.")
if job.error is not None:
    if isinstance(job.error, InputError):
        st.error(str(job.error))
        st.stop()
    raise job.error

result = job.result
if job.layout_key != key:
    st.info("This model was trained on another layout; train again to use the current one.")
summary = result.summary()
headline = figures.headline_scores(summary)
st.markdown("**Balanced accuracy on the test samples** (the mean of the per-class recalls, so a large class "
            "cannot hide a missed small one), with 95 % intervals:")
perfect = perfect_score_notes(result)  # beside the score it qualifies: 100 % on a test set is "no error seen"
cols = st.columns(4)
for col, tile in zip(cols, headline["tiles"]):
    col.metric(tile["label"], tile["value"], help=tile["help"])
    col.caption(tile["caption"])
    note = perfect.get(tile["label"].removesuffix(" balanced accuracy"))
    if note:
        col.warning(note, icon="⚠️")
cols[len(headline["tiles"])].metric("Epochs", f"{summary['epochs']} (best {summary['best_epoch']})",
                                    help=f"ended: {summary['stopped']}")
st.caption(f"Test samples per class: {headline['per_class']}.")
if headline["small"]:
    st.warning(f"Fewer than 5 test samples in {headline['small']}: scores on so few samples are very uncertain "
               "(one sample more or less right moves them by 20 points or more).")
for note in result.notes:
    st.caption(f"Note: {note}")

left, right = st.columns(2)
with left:
    st.plotly_chart(figures.training_curves_figure(result.history), key="final_curves")
    st.dataframe(result.per_class_table(), hide_index=True, width="stretch")
with right:
    st.plotly_chart(figures.confusion_figure(result.confusion, result.class_names, "CNN confusion matrix (test)"),
                    key="confusion")
    if result.baseline is not None and "confusion" in result.baseline:
        with st.expander("Baseline confusion matrix"):
            st.plotly_chart(figures.confusion_figure(np.asarray(result.baseline["confusion"]), result.class_names,
                                                     "Baseline confusion matrix (test)"), key="confusion_base")

cols = st.columns(2)
cols[0].download_button("Download the trained model (.zip: safetensors weights, model.json, layout)",
                        data=job.model_zip, file_name=f"rnaimg_model_{layout.generator}.zip",
                        mime="application/zip", key="w_btn_dl_model", on_click="ignore")
cols[1].download_button("Download the training history (CSV)", data=partial(glue.csv_text, result.history_table()),
                        file_name="history.csv", mime="text/csv", key="w_btn_dl_history", on_click="ignore")
st.page_link("pages/5_Explain.py", label="Explain the model: which genes mattered")
