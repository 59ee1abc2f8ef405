"""A session's workspace on the server: tokens, what is kept, restoring it, expiry."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from dashboard.workspace import Workspace, sweep
from rnaimg_core import get_generator, load_synthetic
from rnaimg_core.images import ImageSet
from rnaimg_core.model import TrainSettings, train_model


@pytest.fixture(scope="module")
def fitted():
    expr = load_synthetic(n_samples=40, n_genes=400, n_classes=2, seed=0, n_modules=4, module_size=20,
                          n_driver_genes=10)
    layout = get_generator("chromosome")().fit(expr)
    return expr, layout


def test_tokens_are_unguessable_and_never_a_path(tmp_path):
    a, b = Workspace.create(tmp_path), Workspace.create(tmp_path)
    assert a.token != b.token and len(a.token) >= 40
    assert a.token not in str(a.folder) and a.folder.parent == tmp_path
    for bad in ("../../etc", "/tmp", "", None, 42, "a" * 10, a.token + "/..", "x" * 300):
        assert Workspace.open(bad, tmp_path) is None
    assert Workspace.open(b.token[:-1] + ("A" if b.token[-1] != "A" else "B"), tmp_path) is None  # unknown
    assert Workspace.open(a.token, tmp_path).folder == a.folder


def test_upload_choices_layouts_and_model_survive_a_reopen(tmp_path, fitted):
    expr, layout = fitted
    ws = Workspace.create(tmp_path)
    ws.save_origin({"kind": "upload", "filename": "mine.csv", "data_key": "upload:abc"},
                   files={"matrix": b"sample,TP53\ns1,1\n", "sheet": None})
    ws.save_choices({"log": "no", "generator": "chromosome", "params": {"chromosome": {"height": 0}}})
    ws.save_layouts({"chromosome:1": layout})
    settings = TrainSettings(epochs=1, baseline=False)
    result = train_model(ImageSet.from_expression(layout, expr), settings)
    ws.save_model(result, "chromosome:1", settings)

    again = Workspace.open(ws.token, tmp_path)
    origin, files = again.origin()
    assert origin["filename"] == "mine.csv" and files == {"matrix": b"sample,TP53\ns1,1\n"}
    assert again.choices()["log"] == "no"
    layouts = again.layouts()
    assert list(layouts) == ["chromosome:1"]
    assert layouts["chromosome:1"].to_json() == layout.to_json()
    restored, layout_key, restored_settings = again.model()
    assert layout_key == "chromosome:1" and restored_settings == settings
    assert restored.summary()["balanced_accuracy"] == pytest.approx(result.summary()["balanced_accuracy"])
    images = ImageSet.from_expression(layout, expr).images[:5]
    assert np.allclose(restored.model.predict_proba(images), result.model.predict_proba(images), atol=1e-6)
    assert not list(ws.folder.rglob("*.pkl")) and not list(ws.folder.rglob("*.pt"))  # never pickled

    # new data drop the old data's layouts and model
    again.save_origin({"kind": "demo", "data_key": "demo"})
    assert again.layouts() == {} and again.model() is None and again.origin()[1] == {}


def test_sessions_are_apart_and_old_workspaces_go(tmp_path):
    a, b = Workspace.create(tmp_path), Workspace.create(tmp_path)
    a.save_choices({"log": "yes"})
    assert b.choices() == {}
    old = time.time() - 3 * 3600
    os.utime(a.folder, (old, old))
    assert sweep(tmp_path, ttl=2 * 3600) == 1
    assert not a.folder.exists() and b.folder.exists()
    assert Workspace.open(a.token, tmp_path) is None
