"""Compare page: does a layout help? Each layout against its own permutation, by models that must use the image."""

import streamlit as st

from dashboard import glue
from dashboard.compare import CheckPlan, LayoutCheckJob, check_figure
from dashboard.widgets import default, draw, setting_spec
from rnaimg_core.compare import ARM_TITLES, ARMS, HELPS, HURTS, QUICK, applicable_generators, check_settings
from rnaimg_core.errors import InputError
from rnaimg_core.generators import get_generator
from rnaimg_core.model import TrainSettings

DEFAULT_BUDGET = 300  # seconds; the check starts no fold that would not fit (at least 2 folds run)

state = glue.start_page("Compare layouts")
expr = state.expression
if expr.labels is None:
    st.warning("The layout check needs labels: add a label column or a sample sheet on the Data page.")
    st.stop()
st.markdown("Does the arrangement of genes give a model something the same genes **in random places** do not? "
            "A flat model cannot tell, so the question is answered by models that **must use the image**: the "
            "*pooled probe* (a linear model on local window means of the image; seconds) and the *image-only CNN* "
            "(the CNN without its linear path). Each scores the layout and its own permutation on the **same** "
            "stratified folds; the layout is refitted on each fold's training samples only. The *hybrid CNN* "
            "(the default recipe) is compared with a logistic-regression baseline for the best predictor. Every "
            "'no evidence' says what the check could have found, from signals planted in your own data.")

job: LayoutCheckJob | None = state.layout_check
running = job is not None and job.running
applicable, left_out = applicable_generators(expr)

with st.form("compare_settings"):
    names = st.multiselect("Generators", applicable, key=default("w_compare_generators", applicable),
                           help="Default: every generator that applies to these data (the random control is "
                                "built for each one). Each takes its parameters from the Layout page.")
    arms = st.multiselect("Models for the arrangement question", list(ARMS), key=default("w_compare_arms", list(ARMS)),
                          format_func=ARM_TITLES.get,
                          help="Pooled probe: seconds per fold. Image-only CNN: two CNNs per generator and fold.")
    cols = st.columns(5)
    quick = cols[0].checkbox("Quick check", key=default("w_compare_quick", True),
                             help=f"{QUICK['n_folds']} folds, {QUICK['n_repeats']} repeat, {QUICK['epochs']} epochs: "
                                  "a first look. Untick to use the numbers beside.")
    n_folds = int(cols[1].number_input("folds", 2, 20, step=1, key=default("w_compare_folds", 5),
                                       help="Stratified folds per repeat (fewer when the smallest class is small)."))
    n_repeats = int(cols[2].number_input("repeats", 1, 20, step=1, key=default("w_compare_repeats", 3)))
    budget = int(cols[3].number_input("time budget (s)", 0, 7200, step=30, key=default("w_compare_budget",
                                                                                      DEFAULT_BUDGET),
                                      help="No fold starts that would not fit; at least 2 folds run. 0: no limit."))
    epochs = draw(setting_spec("epochs", "epochs per CNN"), default("w_compare_epochs", TrainSettings().epochs),
                  cols[4])
    start = st.form_submit_button("Start the check", type="primary", disabled=running)
for note in left_out:
    st.caption(note)

if start and not running:
    if not names:
        st.error("Choose at least one generator.")
        st.stop()
    if quick:
        n_folds, n_repeats = QUICK["n_folds"], QUICK["n_repeats"]
    try:
        generators = tuple(get_generator(name)(**state.generator_params(name)) for name in names)
        settings = check_settings(quick=True) if quick else check_settings().replace(epochs=epochs)
        if not arms:
            raise InputError("Choose at least one model for the arrangement question.")
        plan = CheckPlan(generators, n_folds, n_repeats, float(budget) or None, settings, arms=tuple(arms))
    except InputError as exc:
        st.error(str(exc))
        st.stop()
    # kept under the session's token: a reload attaches to it (dashboard.jobs)
    job = state.layout_check = glue.start_job_or_stop(state, "compare", LayoutCheckJob(expr, state.data_key, plan))
    running = True

if job is not None and running:
    if st.button("Stop", key="w_btn_compare_stop", help="End now; the folds already finished are kept."):
        job.stop_event.set()
    glue.follow_job(job, st.progress(0.0, text="Starting…"))

if job is None:
    st.info("Choose generators and press **Start the check**. With the pooled probe alone a quick check of two "
            "generators on the demo takes under a minute on a CPU; the image-only CNN adds a few minutes.")
    st.stop()
if isinstance(job.error, InputError):  # the library's message for bad input; anything else is a bug: raise it
    st.error(str(job.error))
    st.stop()
elif job.error is not None:
    raise job.error

if job.stopped_because:
    st.warning(f"The server stopped this check: {job.stopped_because}. The folds finished before are kept.")
check = job.result
if job.data_key != state.data_key:
    st.info("This check ran on other data; start it again for the current data.")
st.subheader("Result")
st.markdown(f"**{check.folds_line()}**")
st.markdown(check.explanation())
with st.expander("How the numbers were made"):
    st.markdown(f"Intervals: {check.interval_method()}. The p-value is the larger of the "
                "corrected repeated-CV t-test's and the paired per-sample test's, Bonferroni-adjusted over the "
                "models, so it agrees with the interval.")
for note in check.notes:
    st.caption(f"Note: {note}")
for name, line in zip(check.generators, check.verdict_lines()):
    verdict = check.generator_summary(name)["verdict"]
    {HELPS: st.success, HURTS: st.error}.get(verdict, st.info)(line)
if check.folds_run:
    st.plotly_chart(check_figure(check), key="check_chart")
    table = check.table()
    number = {"format": "%.3f"}
    st.dataframe(table, hide_index=True, width="stretch", column_config={  # headers in words, 3 decimals
        "balanced_accuracy": st.column_config.NumberColumn("balanced accuracy", **number),
        "balanced_accuracy_low": st.column_config.NumberColumn("95 % low", **number),
        "balanced_accuracy_high": st.column_config.NumberColumn("95 % high", **number),
        "accuracy": st.column_config.NumberColumn("accuracy", **number),
        "accuracy_low": st.column_config.NumberColumn("accuracy 95 % low", **number),
        "accuracy_high": st.column_config.NumberColumn("accuracy 95 % high", **number),
        "difference": st.column_config.NumberColumn("layout − this", **number,
                                                    help="Paired difference in balanced accuracy (the hybrid row: "
                                                         "hybrid − flat baseline)"),
        "difference_level": st.column_config.NumberColumn("level", format="%.3f",
                                                          help="Coverage of the difference interval"),
        "conv_changed": st.column_config.NumberColumn("changed by convolutions", format="%d",
                                                      help="Test predictions the hybrid's convolutions changed from "
                                                           "its linear path alone"),
        "difference_low": st.column_config.NumberColumn("difference 95 % low", **number),
        "difference_high": st.column_config.NumberColumn("difference 95 % high", **number),
        "p_value": st.column_config.NumberColumn("p", **number),
        "seconds": st.column_config.NumberColumn("seconds", format="%.0f"),
    })
    st.caption("Empty cells (None) are not applicable: a permutation row is what its layout row is compared with.")
    cols = st.columns(2)
    cols[0].download_button("Download the table (CSV)", data=check.to_csv, file_name="layout_check.csv",
                            mime="text/csv", key="w_btn_dl_check_csv", on_click="ignore")
    cols[1].download_button("Download everything (JSON)", data=check.to_json,
                            file_name="layout_check.json", mime="application/json", key="w_btn_dl_check_json",
                            on_click="ignore")
else:
    st.warning("No fold finished before the check was stopped: nothing to show.")
