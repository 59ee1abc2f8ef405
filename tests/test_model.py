"""The small CNN, its training loop, evaluation honesty, stopping and safe saving."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import torch

from rnaimg_core.cli import build_parser
from rnaimg_core.cli.model import TRAIN_OPTIONS
from rnaimg_core.device import choose_device
from rnaimg_core.errors import InputError
from rnaimg_core.images import ImageSet
from rnaimg_core.model import (
    DEFAULT_ARCHITECTURE,
    SmallCNN,
    TrainSettings,
    cross_validate,
    load_model,
    save_model,
    train_model,
)
from rnaimg_core.splits import train_val_test

FAST = {"epochs": 12, "patience": 12, "n_threads": 2, "n_models": 1}


@pytest.fixture(scope="module")
def result(planted_images):
    return train_model(planted_images, seed=0, **FAST)


def test_device_choice(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert choose_device("auto").type in ("cpu", "mps")
    assert choose_device("cpu").type == "cpu"
    with pytest.raises(InputError, match="no CUDA GPU"):
        choose_device("cuda")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert choose_device("auto").type == "cuda"


@pytest.mark.parametrize("side", [3, 9, 40])
def test_network_accepts_small_and_large_images(side):
    net = SmallCNN(2, side, side + 1, 4).eval()
    assert net(torch.zeros(3, 2, side, side + 1)).shape == (3, 4)


def test_planted_classes_are_learned_and_reported_beside_the_baseline(planted_images, result):
    summary = result.summary()
    assert summary["balanced_accuracy"] >= 0.9
    assert summary["baseline_balanced_accuracy"] >= 0.9
    assert summary["device"].startswith(choose_device("auto").type)  # the CUDA machine reports "cuda (...)"
    assert set(result.history[0]) >= {"epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy"}
    assert result.confusion.shape == (3, 3) and result.confusion.sum() == summary["n_test"]
    table = result.per_class_table()
    assert list(table["class"]) == ["alpha", "beta", "gamma"] and table["support"].sum() == summary["n_test"]
    json.dumps(summary)


def test_holdout_samples_are_the_test_set_and_never_trained_on(planted_images, result):
    holdout = set(planted_images.sample_ids[planted_images.split == "holdout"])
    assert set(result.split["test"]) == holdout
    assert not holdout & (set(result.split["train"]) | set(result.split["val"]))
    assert not set(result.split["train"]) & set(result.split["val"])
    assert result.split["test_source"].startswith("holdout")


def test_without_holdout_a_stratified_test_split_is_made():
    labels = np.repeat(["a", "b", "c"], 20)
    split = train_val_test(labels, np.full(60, "fit"), test_fraction=0.25, val_fraction=0.2, seed=0)
    assert split["test"].size == 15 and "stratified" in split["test_source"]
    assert sorted(np.unique(labels[split["test"]], return_counts=True)[1]) == [5, 5, 5]
    assert np.intersect1d(split["train"], split["test"]).size == 0


def test_same_seed_same_run(planted_images):
    first = train_model(planted_images, seed=3, epochs=2, baseline=False, n_threads=2, n_models=1)
    second = train_model(planted_images, seed=3, epochs=2, baseline=False, n_threads=2, n_models=1)
    assert first.history[-1]["train_loss"] == second.history[-1]["train_loss"]
    assert first.metrics == second.metrics


def test_stop_event_keeps_the_best_model(planted_images):
    stop = threading.Event()
    seen = []

    def progress(record):
        seen.append(record["epoch"])
        stop.set()

    result = train_model(planted_images, epochs=20, baseline=False, progress=progress, should_stop=stop,
                         n_threads=2, n_models=1)
    assert result.stopped == "stop requested" and result.epochs_run <= 2 and seen == [1]
    assert result.metrics["n_test"] > 0


def test_ctrl_c_ends_training_cleanly(planted_images):
    def progress(record):
        if record["epoch"] == 2:
            raise KeyboardInterrupt

    result = train_model(planted_images, epochs=20, baseline=False, progress=progress, n_threads=2, n_models=1)
    assert result.stopped == "interrupted" and result.best_epoch >= 1
    assert np.isfinite(result.metrics["accuracy"])


def test_save_and_load_round_trip(tmp_path, planted_images, result):
    folder = save_model(result, tmp_path / "model")
    assert {p.name for p in folder.iterdir()} >= {"model.safetensors", "model.json", "layout.json.gz",
                                                   "history.csv", "per_class.csv", "confusion.csv"}
    loaded = load_model(folder)
    assert loaded.class_names == result.class_names
    assert loaded.info["metrics"]["balanced_accuracy"] == result.metrics["balanced_accuracy"]
    np.testing.assert_array_equal(loaded.layout.placement_pixel, planted_images.layout.placement_pixel)
    images = planted_images.images
    np.testing.assert_allclose(loaded.predict_proba(images), result.model.predict_proba(images), atol=1e-6)


def test_loading_never_unpickles(tmp_path, result):
    folder = save_model(result.model, tmp_path / "model")
    torch.save({"payload": object()}, folder / "model.safetensors")  # a pickle posing as weights
    with pytest.raises(InputError, match="could not be loaded"):
        load_model(folder)
    with pytest.raises(InputError, match="not an rnaimg model folder"):
        load_model(tmp_path / "missing")


def test_unlabelled_images_are_refused(planted_images):
    images = planted_images
    unlabelled = ImageSet(images.images, images.sample_ids, None, images.split, images.layout)
    with pytest.raises(InputError, match="no labels"):
        train_model(unlabelled)


def test_settings_are_the_one_home_of_the_defaults():
    defaults = TrainSettings()
    assert (defaults.epochs, defaults.batch_size, defaults.learning_rate, defaults.patience) == (120, 32, 2e-3, 15)
    cli = build_parser().parse_args(["train", "--images", "x.npz", "--out", "m"])
    for name in TRAIN_OPTIONS:
        assert getattr(cli, name) == getattr(defaults, name), name
    assert defaults.record()["architecture"] == DEFAULT_ARCHITECTURE
    assert hash(defaults.replace(architecture={"base_channels": 4})) == hash(
        TrainSettings(architecture=(("base_channels", 4),)))


@pytest.mark.parametrize("changes, message", [
    ({"epochs": 0}, "epochs must be a whole number from 1"),
    ({"epochs": 2.5}, "whole number"),
    ({"learning_rate": 5.0}, "learning_rate must be a number from"),
    ({"val_fraction": 1.0}, "val_fraction"),
    ({"device": "tpu"}, "device must be one of"),
    ({"architecture": {"width": 3}}, "Unknown architecture setting"),
])
def test_settings_replace_checks_bounds(changes, message):
    low, high = TrainSettings.bounds("epochs")
    assert low == 1 and high >= 1000 and "epochs" in TrainSettings.help("epochs")
    with pytest.raises(InputError, match=message):
        TrainSettings().replace(**changes)
    with pytest.raises(TypeError, match="Unknown training setting"):
        TrainSettings().replace(epoch=3)


def test_keyword_overrides_equal_settings(planted_images):
    settings = TrainSettings(epochs=2, seed=3, baseline=False, n_threads=2, n_models=1)
    by_keywords = train_model(planted_images, epochs=2, seed=3, baseline=False, n_threads=2, n_models=1)
    by_settings = train_model(planted_images, settings)
    assert by_keywords.settings == by_settings.settings == settings.record()
    assert by_keywords.metrics == by_settings.metrics


def test_cross_validation_tests_every_sample_once(planted_images):
    out = cross_validate(planted_images, TrainSettings(epochs=1, baseline=False, n_threads=2, n_models=1), n_folds=2)
    assert out["n_folds"] == 2 and [f["fold"] for f in out["folds"]] == [0, 1]
    assert sum(f["n_test"] for f in out["folds"]) == planted_images.n_samples
    assert out["baseline_accuracy_mean"] is None and 0 <= out["accuracy_mean"] <= 1


def test_tiny_validation_sets_give_way_to_a_fixed_budget(planted_images):
    """Early stopping on a handful of validation samples picks an epoch by chance: train on all instead."""
    settings = TrainSettings(epochs=3, baseline=False, n_threads=2, n_models=1, min_val_samples=10_000,
                             schedule="onecycle", label_smoothing=0.1)
    result = train_model(planted_images, settings)
    fit = planted_images.sample_ids[planted_images.split != "holdout"]
    assert result.split["val"] == [] and sorted(result.split["train"]) == sorted(fit.tolist())
    assert result.epochs_run == 3 and result.best_epoch == 3  # the last epoch is the model
    assert any("fixed budget" in note or "full budget" in note for note in result.notes)
    assert result.settings["schedule"] == "onecycle" and result.settings["label_smoothing"] == 0.1
    with pytest.raises(InputError, match="schedule must be one of"):
        TrainSettings(schedule="warm restarts")


def test_linear_path_network_saves_and_loads(planted_images, tmp_path):
    settings = TrainSettings(epochs=1, baseline=False, n_threads=2, n_models=1, architecture={"linear_path": True})
    result = train_model(planted_images, settings)
    assert result.model.network.linear is not None
    loaded = load_model(save_model(result, tmp_path / "model"))
    np.testing.assert_allclose(loaded.predict_proba(planted_images.images[:4]),
                               result.model.predict_proba(planted_images.images[:4]), atol=1e-6)


def test_an_ensemble_averages_its_members_and_round_trips(planted_images, tmp_path):
    # shared validation: every member trains on the same samples as a one-network run
    settings = TrainSettings(epochs=2, baseline=False, n_threads=2, n_models=2, ensemble_validation="shared")
    result = train_model(planted_images, settings)
    network = result.model.network
    assert network.hyperparameters["members"] == 2 and len(network.members) == 2
    single = train_model(planted_images, settings.replace(n_models=1)).model.network
    x = torch.as_tensor(planted_images.images[:3])
    with torch.no_grad():  # the first member is the single network of the same seed
        np.testing.assert_allclose(network.members[0](x).numpy(), single(x).numpy(), atol=1e-5)
        expected = (network.members[0](x) + network.members[1](x)) / 2
        np.testing.assert_allclose(network(x).numpy(), expected.numpy(), atol=1e-6)
    loaded = load_model(save_model(result, tmp_path / "ensemble"))
    np.testing.assert_allclose(loaded.predict_proba(planted_images.images[:3]),
                               result.model.predict_proba(planted_images.images[:3]), atol=1e-6)


def test_ensembles_of_different_seeds_share_no_network():
    from rnaimg_core.model.train import member_seed

    seeds = {seed: [member_seed(seed, member) for member in range(5)] for seed in range(4)}
    assert all(members[0] == seed for seed, members in seeds.items())  # one network: the run's own seed
    every = [s for members in seeds.values() for s in members]
    assert len(set(every)) == len(every) and all(0 <= s < 2**31 for s in every)
    assert member_seed(3, 2) == member_seed(3, 2)


def test_the_linear_path_starts_at_zero_for_every_seed():
    nets = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        nets.append(SmallCNN(1, 12, 12, 3, linear_path=True, linear_zero_init=True))
    assert all(float(net.linear[1].weight.detach().abs().sum()) == 0.0 for net in nets)
    # the convolutions still start at random, as without the option
    torch.manual_seed(0)
    random_start = SmallCNN(1, 12, 12, 3, linear_path=True)
    assert float(random_start.linear[1].weight.detach().abs().sum()) > 0
    torch.testing.assert_close(random_start.last_conv.weight, nets[0].last_conv.weight)
    assert DEFAULT_ARCHITECTURE["linear_zero_init"] is True


def test_fold_validation_gives_each_network_its_own_fold(planted_images):
    from rnaimg_core.model.train import _member_parts, _memory_datasets

    labels = np.asarray(planted_images.labels).astype(str)
    y = np.searchsorted(sorted(set(labels)), labels)
    split = train_val_test(labels, planted_images.split, seed=0)
    split.pop("notes")
    data = _memory_datasets(planted_images.images, y, split, torch.device("cpu"))
    settings = TrainSettings(n_models=4, ensemble_validation="folds")
    parts, extra = _member_parts(data, y, split, settings)
    fit_samples = np.sort(np.concatenate([split["train"], split["val"]]))
    assert len(parts) == 4
    vals = [member_split["val"] for _, member_split in parts]
    np.testing.assert_array_equal(np.sort(np.concatenate(vals)), fit_samples)  # every sample validates once
    for member_data, member_split in parts:
        np.testing.assert_array_equal(np.sort(np.concatenate([member_split["train"], member_split["val"]])),
                                      fit_samples)
        assert not set(member_split["test"]) & set(fit_samples)
        np.testing.assert_array_equal(member_data["val"].indices.numpy(), member_split["val"])
        # stratified: every class in every fold, in about its share
        assert set(y[member_split["val"]]) == set(y)
    np.testing.assert_array_equal(extra["split"]["train"], fit_samples)
    assert extra["split"]["val"].size == 0 and "own fold" in extra["notes"][0]
    assert _member_parts(data, y, split, settings.replace(ensemble_validation="shared")) == (None, {})
    result = train_model(planted_images, settings.replace(epochs=2, baseline=False, n_threads=2, n_models=2))
    assert len(result.split["train"]) == fit_samples.size and result.split["val"] == []
    assert any("own fold" in note for note in result.notes)
    assert result.model.network.hyperparameters["members"] == 2


@pytest.mark.parametrize("n_classes", [2, 3])
def test_the_linear_warm_start_is_the_baselines_logistic_regression(planted_images, n_classes):
    """Warm-started, a network is the converged L2 logistic regression (C=1, balanced) of its training samples."""
    from sklearn.linear_model import LogisticRegression

    from rnaimg_core.model.data import ArrayDataset
    from rnaimg_core.model.train import _class_weights, linear_warm_start

    labels = np.asarray(planted_images.labels).astype(str)
    classes = sorted(set(labels))[:n_classes]
    keep = np.flatnonzero(np.isin(labels, classes))
    y = np.searchsorted(classes, labels[keep])
    x = np.ascontiguousarray(planted_images.images[keep], dtype=np.float32)
    train = np.arange(keep.size)[::2]
    train = train[np.argsort(y[train], kind="stable")][: train.size - 7]  # unbalanced: the last class is short
    torch.manual_seed(0)
    network = SmallCNN(*x.shape[1:], n_classes, linear_path=True, linear_zero_init=True)
    criterion = torch.nn.CrossEntropyLoss(weight=torch.as_tensor(_class_weights(y[train], n_classes)))
    record = linear_warm_start(network, ArrayDataset.from_numpy(x, y, train), criterion, torch.device("cpu"))
    assert record["samples"] == train.size and record["iterations"] > 0
    flat = (4.0 * np.tanh(x / 4.0)).reshape(len(x), -1)  # what the linear path sees (input_clip 4)
    reference = LogisticRegression(C=1.0, class_weight="balanced", tol=1e-10, max_iter=10_000)
    reference.fit(flat[train].astype(np.float64), y[train])
    network.eval()
    with torch.no_grad():
        proba = torch.softmax(network(torch.as_tensor(x)), 1).numpy()
    # the same model on training and unseen samples alike (binary: one weight vector, penalised the same)
    np.testing.assert_allclose(proba, reference.predict_proba(flat), atol=2e-3)
    assert float(network.classifier[-1].weight.detach().abs().sum()) == 0.0  # the conv head starts at zero


def test_warm_started_training_keeps_epoch_0_when_training_only_makes_it_worse(planted_images):
    settings = TrainSettings(epochs=3, patience=3, baseline=False, n_threads=2, n_models=1, learning_rate=1.0,
                             linear_warm_start=True)
    result = train_model(planted_images, settings)
    assert result.best_epoch == 0 and result.epochs_run == 3
    assert any("linear path fitted alone" in note and "1 of 1 kept" in note for note in result.notes)
    assert result.settings["linear_warm_start"] is True
    # without the linear path there is nothing to warm-start: the setting is ignored
    plain = train_model(planted_images, settings.replace(architecture={"linear_path": False}))
    assert plain.best_epoch >= 1 and not any("fitted alone" in note for note in plain.notes)


def test_cpu_threads_default_and_its_overrides(monkeypatch, planted_images):
    from rnaimg_core.device import THREADS_ENV, auto_threads, cpu_threads, torch_threads

    assert [auto_threads(c) for c in (1, 2, 4, 6, 8, 16, 64)] == [1, 1, 1, 3, 4, 8, 8]
    monkeypatch.delenv(THREADS_ENV, raising=False)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    assert cpu_threads() == auto_threads() and cpu_threads(3) == 3  # a run's own setting wins
    monkeypatch.setenv(THREADS_ENV, "2")
    assert cpu_threads() == 2 and cpu_threads(5) == 5
    monkeypatch.setenv(THREADS_ENV, "two")
    with pytest.raises(InputError, match="RNAIMG_THREADS must be a whole number"):
        cpu_threads()
    monkeypatch.delenv(THREADS_ENV)
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert cpu_threads() is None  # torch already follows OMP_NUM_THREADS
    monkeypatch.delenv("OMP_NUM_THREADS")
    before = torch.get_num_threads()
    wanted = 1 if before != 1 else 2
    with torch_threads(wanted):
        assert torch.get_num_threads() == wanted
    assert torch.get_num_threads() == before
    # the result names the threads training ran with, not the caller's setting restored afterwards
    ran = train_model(planted_images, epochs=1, n_models=1, baseline=False, n_threads=wanted, device="cpu")
    assert ran.device == f"cpu ({wanted} thread{'s' if wanted > 1 else ''})" and torch.get_num_threads() == before
    args = build_parser().parse_args(["train", "--images", "x.npz", "--out", "m", "--threads", "3"])
    assert args.n_threads == 3
    assert build_parser().parse_args(["compare", "--threads", "2"]).n_threads == 2


def test_the_linear_path_can_learn_slower_than_the_convolutions(planted_images):
    settings = TrainSettings(epochs=1, val_fraction=0.0, baseline=False, n_threads=2, n_models=1,
                             linear_warm_start=True, linear_lr_scale=0.0)
    linear = {}
    for scale, epochs in ((0.0, 1), (0.0, 3), (0.1, 3), (1.0, 3)):
        network = train_model(planted_images, settings.replace(linear_lr_scale=scale, epochs=epochs)).model.network
        linear[scale, epochs] = network.linear[1].weight.detach().clone()
    torch.testing.assert_close(linear[0.0, 1], linear[0.0, 3], rtol=0, atol=0)  # frozen at its warm start
    moved = {scale: float((linear[scale, 3] - linear[0.0, 1]).abs().max()) for scale in (0.1, 1.0)}
    assert 0 < moved[0.1] < moved[1.0] / 3  # Adam moves each weight by about its learning rate per step
    with pytest.raises(InputError, match="linear_lr_scale"):
        settings.replace(linear_lr_scale=1.5)


def test_the_one_standard_error_rule_keeps_the_linear_model_unless_clearly_beaten():
    from rnaimg_core.model.train import _one_se_gain

    weights = np.ones(20)
    linear = (np.full(20, 0.5), weights)
    # a later epoch lower by 0.2 on every sample: a sure gain
    assert _one_se_gain((np.full(20, 0.3), weights), linear) == pytest.approx(0.2)
    # lower on average by chance (half the samples better, half worse): not beyond one standard error
    noisy = np.where(np.arange(20) % 2 == 0, 0.1, 0.85)
    assert _one_se_gain((noisy, weights), linear) < 0
    assert _one_se_gain((np.array([0.1]), np.ones(1)), (np.array([0.5]), np.ones(1))) is None
