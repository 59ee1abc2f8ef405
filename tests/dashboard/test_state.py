"""What a dashboard session holds and the keys of its caches, without a streamlit server."""

from __future__ import annotations

from dashboard.state import AppState, Recent, generator_names, layout_key, upload_key
from rnaimg_core.generators import get_generator


def test_layout_key_changes_with_data_generator_and_parameters():
    base = layout_key("demo", "chromosome", {"height": 0, "seed": 0})
    assert base == layout_key("demo", "chromosome", {"seed": 0, "height": 0})  # order does not matter
    assert base != layout_key("upload:abc", "chromosome", {"height": 0, "seed": 0})
    assert base != layout_key("demo", "chromosome", {"height": 10, "seed": 0})
    assert base.startswith("chromosome:")


def test_generator_params_take_normalisation_from_the_data_page():
    state = AppState(log="yes", scale="minmax")
    params = state.generator_params("chromosome")
    spec = get_generator("chromosome").parameter_spec()
    assert set(params) == set(spec)
    assert params["log"] == "yes" and params["scale"] == "minmax"
    state.params["chromosome"] = {"channels": 2, "not_a_parameter": 1}
    assert state.generator_params("chromosome")["channels"] == 2
    assert "not_a_parameter" not in state.generator_params("chromosome")


def test_new_data_drop_the_old_layouts_and_model():
    state = AppState()
    state.data_key = "demo"
    state.layouts.remember("chromosome:1", object())
    state.set_data(expression=None, data_key="upload:xyz")
    assert not state.layouts and state.training is None


def test_layout_memory_is_bounded_and_keeps_the_recently_used():
    state = AppState()
    for i in range(30):
        state.layouts.remember(f"k{i}", i)
        state.layouts.recall("k3")  # k3 stays in use
    assert len(state.layouts) == 12 and "k29" in state.layouts and "k3" in state.layouts
    assert "k0" not in state.layouts and state.layouts.recall("k0") is None


def test_recent_survives_a_copy():
    import copy

    memory = Recent(2)
    memory.remember("a", 1)
    clone = copy.deepcopy(memory)
    assert clone == {"a": 1} and clone.max_entries == 2


def test_upload_key_depends_on_content_and_options():
    a = upload_key(b"x", "m.csv", None, None, None, "auto")
    assert a != upload_key(b"y", "m.csv", None, None, None, "auto")
    assert a != upload_key(b"x", "m.csv", None, None, "cell_type", "auto")
    assert generator_names()[0] == "chromosome"


def test_demo_session_holds_out_a_stratified_fifth_for_honest_scores(demo_expression):
    state = AppState()
    expr = demo_expression
    state.set_data(expr, "demo")
    held = state.split == "holdout"
    assert held.sum() == 37  # ceil(0.2 * 184)
    assert set(expr.labels[held]) == set(expr.labels)  # every class is represented
    layout = get_generator("chromosome")().fit(expr, train_index=state.fit_index)
    assert not set(layout.fit_sample_ids) & set(expr.sample_ids[held])


def test_dashboard_and_cli_hold_out_the_same_demo_samples(demo_expression):
    """The Train page and ``rnaimg layout`` (``--holdout`` default or 0.2) + ``rnaimg train`` score on the same
    samples, whatever the generator's seed (tests/test_splits.py runs the CLI)."""
    from rnaimg_core.splits import HOLDOUT, holdout_rule

    state = AppState()
    state.set_data(demo_expression, "demo")
    for fraction in (None, 0.2):
        cli = holdout_rule(demo_expression.labels, demo_expression.n_samples, fraction)
        assert (state.split == cli).all() and (cli == HOLDOUT).sum() == 37
    # the Train page's widgets take these settings' defaults: tests/dashboard/test_widgets.py


def test_a_failed_fit_goes_back_to_the_last_parameters_that_fitted():
    from dashboard.state import restored_text

    state = AppState()
    state.params["deepmapper"] = {"height": 1024, "width": 1024}
    changes = state.restore_good("deepmapper")  # nothing fitted yet: back to the defaults
    assert "deepmapper" not in state.params
    assert changes == {"height": (1024, 0), "width": (1024, 0)}
    assert restored_text(changes) == "height 0 (not 1024), width 0 (not 1024)"

    state.params["deepmapper"] = {"height": 40, "width": 30, "order": "variance"}
    state.remember_good("deepmapper")
    state.params["deepmapper"] = {"height": 1024, "width": 30, "order": "variance", "channels": 16}
    changes = state.restore_good("deepmapper")
    assert state.params["deepmapper"] == {"height": 40, "width": 30, "order": "variance"}
    assert changes == {"height": (1024, 40), "channels": (16, 1)}
    assert state.restore_good("deepmapper") == {}  # the good parameters themselves failed: nothing to go back to
    assert state.params["deepmapper"]["height"] == 40 and state.good_params["deepmapper"]["height"] == 40


def test_last_good_parameters_survive_a_reload():
    state = AppState()
    state.params["deepmapper"] = {"height": 40, "like": object()}
    state.remember_good("deepmapper")
    again = AppState()
    again.restore_choices(state.choices())
    assert again.good_params == {"deepmapper": {"height": 40}}  # a layout object is not kept, plain values are


def test_every_scaling_names_what_a_pixel_value_is():
    from rnaimg_core.normalize import SCALES

    names = {scale: AppState(scale=scale).value_name for scale in SCALES}
    assert names["zscore"] == "z-score"
    assert all(name and name != "value" for scale, name in names.items() if scale != "none"), names
    assert len(set(names.values())) == len(SCALES)  # colour bars tell the scalings apart
