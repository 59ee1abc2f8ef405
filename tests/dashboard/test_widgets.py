"""Widget specs built from the library's parameter specs: generator parameters and training settings."""

from __future__ import annotations

import pytest

pytest.importorskip("streamlit")

from dashboard.widgets import setting_spec, widget_spec  # noqa: E402
from rnaimg_core.generators import REGISTRY, get_generator  # noqa: E402
from rnaimg_core.model import TrainSettings  # noqa: E402


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


@pytest.mark.parametrize("name", ["epochs", "batch_size", "learning_rate", "patience", "seed", "baseline",
                                  "random_control"])
def test_training_widgets_take_default_bounds_and_help_from_train_settings(name):
    spec = setting_spec(name, name)
    default = getattr(TrainSettings(), name)
    assert f"Default: {default}" in spec.help and TrainSettings.help(name) in spec.help
    if isinstance(default, bool):
        assert spec.kind == "checkbox"
    else:
        low, high = TrainSettings.bounds(name)
        assert spec.min_value == low and spec.max_value == high
        assert spec.min_value <= default <= spec.max_value


def test_a_float_setting_steps_below_its_default():
    spec = setting_spec("learning_rate", "learning rate")
    assert spec.kind == "float" and 0 < spec.step < TrainSettings().learning_rate
