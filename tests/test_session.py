"""The dashboard's session state and page decisions, without streamlit."""

from __future__ import annotations

import numpy as np

from rnaimg_core.generators import REGISTRY, get_generator
from rnaimg_core.session import (AppState, generator_names, layout_key, samples_per_class, upload_key,
                                 widget_spec)


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
    state.remember_layout("chromosome:1", object())
    state.set_data(expression=None, data_key="upload:xyz")
    assert not state.layouts and state.training is None


def test_layout_memory_is_bounded():
    state = AppState()
    for i in range(30):
        state.remember_layout(f"k{i}", i)
    assert len(state.layouts) <= 12 and "k29" in state.layouts and "k0" not in state.layouts


def test_every_registered_parameter_gets_a_widget_with_default_and_range():
    for name in REGISTRY:
        for param in get_generator(name).parameter_spec().values():
            spec = widget_spec(param)
            assert spec.kind in ("select", "checkbox", "int", "float", "text")
            assert f"Default: {param.default}" in spec.help
            if param.choices is not None:
                assert param.default in spec.options
            if spec.kind == "int" and param.low is not None:
                assert spec.min_value == int(param.low)


def test_samples_per_class_is_seeded_and_grouped():
    labels = np.array(["b", "a", "b", "a", "a", "b", "c"])
    picked = samples_per_class(labels, 2)
    assert picked == samples_per_class(labels, 2)
    assert [labels[i] for i in picked] == ["a", "a", "b", "b", "c"]


def test_upload_key_depends_on_content_and_options():
    a = upload_key(b"x", "m.csv", None, None, None, "auto")
    assert a != upload_key(b"y", "m.csv", None, None, None, "auto")
    assert a != upload_key(b"x", "m.csv", None, None, "cell_type", "auto")
    assert generator_names()[0] == "chromosome"


def test_demo_session_holds_out_a_stratified_fifth_for_honest_scores():
    from rnaimg_core.expression import load_demo

    state = AppState()
    expr = load_demo()
    state.set_data(expr, "demo")
    held = state.split == "holdout"
    assert held.sum() == 37  # ceil(0.2 * 184)
    assert set(expr.labels[held]) == set(expr.labels)  # every class is represented
    layout = get_generator("chromosome")().fit(expr, train_index=state.fit_index)
    assert not set(layout.fit_sample_ids) & set(expr.sample_ids[held])
