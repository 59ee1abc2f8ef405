"""The small CNN, its training loop, evaluation honesty, stopping and safe saving."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import torch

from rnaimg_core.errors import InputError
from rnaimg_core.images import ImageSet
from rnaimg_core.model import (SmallCNN, choose_device, load_model, make_split, save_model,
                               train_model)
from tests._planted import planted_images

FAST = {"epochs": 12, "patience": 12, "n_threads": 2}


@pytest.fixture(scope="module")
def images() -> ImageSet:
    return planted_images()


@pytest.fixture(scope="module")
def result(images):
    return train_model(images, seed=0, **FAST)


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


def test_planted_classes_are_learned_and_reported_beside_the_baseline(images, result):
    summary = result.summary()
    assert summary["balanced_accuracy"] >= 0.9
    assert summary["baseline_balanced_accuracy"] >= 0.9
    assert summary["device"].startswith("cpu")
    assert set(result.history[0]) >= {"epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy"}
    assert result.confusion.shape == (3, 3) and result.confusion.sum() == summary["n_test"]
    table = result.per_class_table()
    assert list(table["class"]) == ["alpha", "beta", "gamma"] and table["support"].sum() == summary["n_test"]
    json.dumps(summary)


def test_holdout_samples_are_the_test_set_and_never_trained_on(images, result):
    holdout = set(images.sample_ids[images.split == "holdout"])
    assert set(result.split["test"]) == holdout
    assert not holdout & (set(result.split["train"]) | set(result.split["val"]))
    assert not set(result.split["train"]) & set(result.split["val"])
    assert result.split["test_source"].startswith("holdout")


def test_without_holdout_a_stratified_test_split_is_made():
    labels = np.repeat(["a", "b", "c"], 20)
    split = make_split(labels, np.full(60, "fit"), test_fraction=0.25, val_fraction=0.2, seed=0)
    assert split["test"].size == 15 and "stratified" in split["test_source"]
    assert sorted(np.unique(labels[split["test"]], return_counts=True)[1]) == [5, 5, 5]
    assert np.intersect1d(split["train"], split["test"]).size == 0


def test_same_seed_same_run(images):
    first = train_model(images, seed=3, epochs=2, baseline=False, n_threads=2)
    second = train_model(images, seed=3, epochs=2, baseline=False, n_threads=2)
    assert first.history[-1]["train_loss"] == second.history[-1]["train_loss"]
    assert first.metrics == second.metrics


def test_stop_event_keeps_the_best_model(images):
    stop = threading.Event()
    seen = []

    def progress(record):
        seen.append(record["epoch"])
        stop.set()

    result = train_model(images, epochs=20, baseline=False, progress=progress, should_stop=stop, n_threads=2)
    assert result.stopped == "stop requested" and result.epochs_run <= 2 and seen == [1]
    assert result.metrics["n_test"] > 0


def test_ctrl_c_ends_training_cleanly(images):
    def progress(record):
        if record["epoch"] == 2:
            raise KeyboardInterrupt

    result = train_model(images, epochs=20, baseline=False, progress=progress, n_threads=2)
    assert result.stopped == "interrupted" and result.best_epoch >= 1
    assert np.isfinite(result.metrics["accuracy"])


def test_save_and_load_round_trip(tmp_path, images, result):
    folder = save_model(result, tmp_path / "model")
    assert {p.name for p in folder.iterdir()} >= {"model.safetensors", "model.json", "layout.json.gz",
                                                   "history.csv", "per_class.csv", "confusion.csv"}
    loaded = load_model(folder)
    assert loaded.class_names == result.class_names
    assert loaded.info["metrics"]["balanced_accuracy"] == result.metrics["balanced_accuracy"]
    np.testing.assert_array_equal(loaded.layout.placement_pixel, images.layout.placement_pixel)
    np.testing.assert_allclose(loaded.predict_proba(images.images), result.model.predict_proba(images.images),
                               atol=1e-6)


def test_loading_never_unpickles(tmp_path, result):
    folder = save_model(result.model, tmp_path / "model")
    torch.save({"payload": object()}, folder / "model.safetensors")  # a pickle posing as weights
    with pytest.raises(InputError, match="could not be loaded"):
        load_model(folder)
    with pytest.raises(InputError, match="not an rnaimg model folder"):
        load_model(tmp_path / "missing")


def test_unlabelled_images_are_refused(images):
    unlabelled = ImageSet(images.images, images.sample_ids, None, images.split, images.layout)
    with pytest.raises(InputError, match="no labels"):
        train_model(unlabelled)
