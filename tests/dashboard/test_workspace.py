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


def test_an_upload_with_its_gene_map_is_read_again_the_same_after_a_reopen(tmp_path):
    """Probe ids (DERIVED from real genes) and their platform table: a reload reads both again, same genes."""
    from dashboard.glue import make_data

    matrix = b"ID_REF\tGSM1\tGSM2\tGSM3\n1_at\t8.1\t7.9\t8.4\n2_at\t5.0\t5.2\t4.9\n3_at\t6.0\t6.5\t6.1\n"
    table = b"ID\tGene Symbol\tENTREZ_GENE_ID\n1_at\tTP53\t7157\n2_at\tTP53\t7157\n3_at\tEGFR\t1956\n"
    origin = {"kind": "upload", "filename": "series.tsv", "gene_map_filename": "GPL.txt", "collapse": "mean"}
    ws = Workspace.create(tmp_path)
    ws.save_origin({**origin, "data_key": "upload:x"}, {"matrix": matrix, "sheet": None, "gene_map": table})
    saved, files = Workspace.open(ws.token, tmp_path).origin()
    expr = make_data(saved, files)
    assert sorted(expr.gene_ids) == ["EGFR", "TP53"]
    np.testing.assert_allclose(expr.values[:, list(expr.gene_ids).index("TP53")], [6.55, 6.55, 6.65], atol=1e-5)
    assert expr.notes["feature_mapping"]["collapse"] == "mean"


def test_workspaces_are_capped_in_count_and_bytes_least_recently_used_first(tmp_path):
    """Issue 20.4: a busy server's temporary folder cannot fill up; the caller's own workspace is kept."""
    from dashboard.workspace import folder_bytes

    spaces = [Workspace.create(tmp_path) for _ in range(5)]
    for age, space in enumerate(spaces):
        space.save_origin({"kind": "upload"}, {"matrix": b"x" * 1000})
        stamp = time.time() - 600 + 100 * age  # spaces[0] least recently used
        os.utime(space.folder, (stamp, stamp))
    assert sweep(tmp_path, max_count=3, keep=spaces[0].folder) == 2
    assert spaces[0].folder.exists() and not spaces[1].folder.exists() and not spaces[2].folder.exists()
    assert sweep(tmp_path, max_bytes=2500) == 1  # three of about 1 kB each: the oldest goes
    left = [s for s in spaces if s.folder.exists()]
    assert left == spaces[3:] and sum(folder_bytes(s.folder) for s in left) <= 2500


def test_a_session_deletes_its_data_and_writes_never_leave_partial_files(tmp_path, monkeypatch):
    ws = Workspace.create(tmp_path)
    ws.save_origin({"kind": "upload", "filename": "m.csv"}, {"matrix": b"sample,TP53\nS1,1\n"})
    ws.save_choices({"log": "yes"})
    assert ws.size_bytes() > 0
    # a write that fails half-way (disk full) leaves the earlier file, never a partial one
    import rnaimg_core.outputs as outputs

    real_replace = outputs.os.replace

    def full_disk(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(outputs.os, "replace", full_disk)
    with pytest.raises(OSError):
        ws.save_choices({"log": "no"})
    monkeypatch.setattr(outputs.os, "replace", real_replace)
    assert Workspace.open(ws.token, tmp_path).choices() == {"log": "yes"}
    assert not [p for p in ws.folder.iterdir() if ".tmp-" in p.name]
    ws.delete()
    assert not ws.folder.exists() and Workspace.open(ws.token, tmp_path) is None
    ws.save_choices({"log": "auto"})  # a live session writing after its folder went: made again, no error
    assert ws.folder.exists()
