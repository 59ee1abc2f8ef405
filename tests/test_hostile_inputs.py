"""Hostile and careless inputs, classes 2, 3, 6 and 7 of the hardening issue.

Server paths from the browser and model folders (2), silent transposes and shifts (3),
plausible inputs that crashed (6), and the project's own files trusted blindly (7).
Every case ends in a correct reading or one clean :class:`InputError`.
"""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from rnaimg_core.errors import InputError
from rnaimg_core.layout import Layout, load_layout
from rnaimg_core.readers import OrientationUnclear, read_expression

GENES = ["TP53", "ARID1A", "EGFR", "IDH1", "CIC", "FUBP1", "MYC", "PTEN"]


def matrix(n_samples: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(rng.integers(0, 100, (n_samples, len(GENES))).astype(float),
                        index=[str(i) for i in range(1, n_samples + 1)], columns=GENES)


# ---------------------------------------------------------------- 3. orientation and shifts

def test_numeric_sample_ids_do_not_flip(tmp_path):
    frame = matrix()
    frame.to_csv(tmp_path / "m.csv")  # first header cell empty, sample ids 1..40 look like Entrez ids
    expr = read_expression(tmp_path / "m.csv")
    assert expr.notes["orientation"] == "samples-as-rows"
    assert expr.sample_ids.tolist() == frame.index.tolist()
    np.testing.assert_array_equal(expr.values, frame.to_numpy(np.float32))


def test_sample_sheet_ids_decide_orientation(tmp_path):
    frame = matrix()
    frame.T.to_csv(tmp_path / "m.csv")  # genes as rows, sample ids 1..40 as the header
    pd.DataFrame({"sample": frame.index, "label": ["A", "B"] * 20}).to_csv(tmp_path / "sheet.csv", index=False)
    expr = read_expression(tmp_path / "m.csv", labels_path=tmp_path / "sheet.csv")
    assert expr.notes["orientation"] == "genes-as-rows"
    assert "sample-sheet ids" in expr.notes["orientation_reason"]
    np.testing.assert_array_equal(expr.values, frame.to_numpy(np.float32))


def test_r_write_table_header_is_one_short(tmp_path):
    frame = matrix(6)
    frame.index = [f"S{i}" for i in range(6)]
    lines = ["\t".join(GENES)] + ["\t".join([sid, *map(str, row)]) for sid, row in zip(frame.index, frame.to_numpy())]
    (tmp_path / "r.txt").write_text("\n".join(lines) + "\n")
    expr = read_expression(tmp_path / "r.txt")
    assert expr.sample_ids.tolist() == frame.index.tolist()
    assert expr.gene_ids.tolist() == GENES
    np.testing.assert_array_equal(expr.values, frame.to_numpy(np.float32))
    assert "R write.table" in expr.notes["header"]


@pytest.mark.parametrize("text, samples", [
    ("gene,P1,P2\nTP53,1,2\nEGFR,3,4\nMYC,5,6\n", ["P1", "P2"]),
    ("gene\t1\t2\t3\nTP53\t1\t2\t3\nEGFR\t3\t4\t5\n", ["1", "2", "3"]),
])
def test_genes_as_rows_with_a_gene_header(tmp_path, text, samples):
    path = tmp_path / ("m.tsv" if "\t" in text else "m.csv")
    path.write_text(text)
    expr = read_expression(path)
    assert expr.notes["orientation"] == "genes-as-rows"
    assert expr.sample_ids.tolist() == samples


def test_weak_evidence_asks_naming_both_readings(tmp_path):
    (tmp_path / "m.csv").write_text("id,X1,X2\nQ1,1,2\nQ2,3,4\nQ3,5,6\n")
    with pytest.raises(OrientationUnclear) as info:
        read_expression(tmp_path / "m.csv")
    message = str(info.value)
    assert "samples-as-rows" in message and "genes-as-rows" in message and "--orientation" in message
    expr = read_expression(tmp_path / "m.csv", orientation="genes-as-rows")
    assert expr.sample_ids.tolist() == ["X1", "X2"]


def test_ids_that_look_like_numbers_keep_their_text(tmp_path):
    (tmp_path / "m.csv").write_text("sample,TP53,EGFR\n001,1,2\n002,3,4\n1e5,5,6\n")
    assert read_expression(tmp_path / "m.csv").sample_ids.tolist() == ["001", "002", "1e5"]


def test_parquet_multiindex_and_dates(tmp_path):
    frame = matrix(4)
    frame.columns = pd.MultiIndex.from_product([["a", "b"], GENES[:4]])
    frame.to_parquet(tmp_path / "multi.parquet")
    with pytest.raises(InputError, match="multi-level"):
        read_expression(tmp_path / "multi.parquet")
    dated = matrix(4).reset_index(names="sample")
    dated["TP53"] = pd.date_range("2020-01-01", periods=4)
    dated.to_parquet(tmp_path / "dates.parquet")
    with pytest.raises(InputError, match="dates or times"):
        read_expression(tmp_path / "dates.parquet", orientation="samples-as-rows")


def test_h5ad_without_var_names_is_not_mapped_as_entrez(tmp_path):
    anndata = pytest.importorskip("anndata")
    adata = anndata.AnnData(np.ones((4, 16), dtype=np.float32))
    adata.write_h5ad(tmp_path / "m.h5ad")
    expr = read_expression(tmp_path / "m.h5ad")
    assert expr.notes["gene_mapping"]["n_mapped"] == 0
    assert "position" in expr.notes["gene_ids_note"]


# ---------------------------------------------------------------- 4. ids that map to no gene

def test_probe_ids_accepted_for_annotation_free_generators_only(tmp_path):
    from rnaimg_core.generators import get_generator

    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.gamma(2, 50, (12, 30)), index=[f"S{i}" for i in range(12)],
                         columns=[f"{200000 + i}_at" for i in range(30)])
    frame.insert(0, "label", ["A", "B", "C"] * 4)
    frame.to_csv(tmp_path / "probes.csv")
    expr = read_expression(tmp_path / "probes.csv")
    assert "deepmapper" in expr.notes["gene_ids_note"]
    for name in ("deepmapper", "random"):
        assert get_generator(name)().fit(expr).n_genes == 30
    with pytest.raises(InputError, match="chromosome position"):
        get_generator("chromosome")().fit(expr)


# ---------------------------------------------------------------- 6. plausible inputs

@pytest.mark.parametrize("text, expected", [
    ("sample,sample,EGFR\nS1,1,2\nS2,3,4\n", "appears again in the header"),
    ("sample,label,label,TP53\nS1,A,A,1\nS2,A,A,2\n", "more than once"),
    ("sample,TP53,EGFR\nS1,1,2,3,4\n", "header has 3 fields"),
    ("sample," + ",".join(f"G{i}" for i in range(200_000)) + "\n", "no data rows"),
])
def test_plausible_tables_get_clean_errors(tmp_path, text, expected):
    (tmp_path / "m.csv").write_text(text)
    with pytest.raises(InputError, match=expected):
        read_expression(tmp_path / "m.csv")


# ---------------------------------------------------------------- 2 and 7. the project's own files

@pytest.fixture(scope="module")
def small_layout(demo_expression) -> Layout:
    from rnaimg_core.generators import get_generator

    return get_generator("deepmapper")().fit(demo_expression.subset(slice(0, 60)))


def damaged(layout: Layout, change) -> dict:
    data = json.loads(layout.to_json())
    change(data)
    return data


@pytest.mark.parametrize("change, expected", [
    (lambda d: d.update(format_version=[1]), "format_version"),
    (lambda d: d.pop("placements"), "incomplete"),
    (lambda d: d["placements"]["pixel"].__setitem__(0, 2**63), "placements.pixel"),
    (lambda d: d["placements"]["gene"].__setitem__(0, -1), "placements.gene"),
    (lambda d: d["normalization"]["spread"].__setitem__(0, 0.0), "spread must be positive"),
    (lambda d: d["normalization"]["center"].__setitem__(0, float("nan")), "finite"),
    (lambda d: d["gene_ids"].__setitem__(1, d["gene_ids"][0]), "distinct"),
    (lambda d: d.update(fit_sample_ids="S1"), "fit_sample_ids"),
    (lambda d: d.update(shape=[1_000_000, 10, 10]), "max_channels"),
    (lambda d: d.update(reduce="median"), "reduce"),
    (lambda d: d.update(seed=1.5), "seed"),
    (lambda d: d.update(symbols=d["symbols"][:-1]), "symbols"),
])
def test_layout_schema(tmp_path, small_layout, change, expected):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(damaged(small_layout, change)))
    with pytest.raises(InputError, match=expected):
        load_layout(path)


def test_layout_round_trip_and_atomic_save(tmp_path, small_layout):
    path = small_layout.save(tmp_path / "l.json.gz")
    assert load_layout(path).to_json() == small_layout.to_json()
    assert [p.name for p in tmp_path.iterdir()] == ["l.json.gz"]  # no temporary file left


def test_random_like_takes_a_layout_object(demo_expression, small_layout):
    from rnaimg_core.generators import get_generator

    control = get_generator("random")(like=small_layout).fit(demo_expression.subset(slice(0, 60)))
    assert control.shape == small_layout.shape and control.notes["control_of"] == "deepmapper"


def write_images_file(tmp_path, layout, expr, **overrides) -> str:
    from rnaimg_core.images import write_images

    images = layout.transform(expr.values, expr.gene_ids)
    path = write_images(tmp_path / "ok.npz", images, expr.sample_ids, expr.labels, layout)
    with np.load(path) as data:
        members = {k: data[k] for k in data.files}
    members.update(overrides)
    bad = tmp_path / "bad.npz"
    np.savez(bad, **members)
    return bad


@pytest.mark.parametrize("member, make, expected", [
    ("labels", lambda m: m["labels"][:-1], "labels has shape"),
    ("sample_ids", lambda m: m["sample_ids"][:-1], "sample_ids has shape"),
    ("split", lambda m: np.full(m["split"].shape, "train"), "split must be"),
    ("images", lambda m: np.where(np.arange(m["images"].size).reshape(m["images"].shape) == 5, np.nan,
                                  m["images"]).astype(np.float32), "NaN or infinite"),
    ("images", lambda m: m["images"].astype(np.float64), "must be float32"),
    ("sample_ids", lambda m: np.array([1] * m["sample_ids"].size), "must be text"),
    ("gene_ids", lambda m: m["gene_ids"][::-1], "gene_ids differ"),
    ("sample_ids", lambda m: np.array(["S"] * m["sample_ids"].size), "repeat"),
])
def test_images_schema(tmp_path, demo_expression, small_layout, member, make, expected):
    from rnaimg_core.images import read_images, write_images

    expr = demo_expression.subset(slice(0, 30))
    images = small_layout.transform(expr.values, expr.gene_ids)
    path = write_images(tmp_path / "ok.npz", images, expr.sample_ids, expr.labels, small_layout)
    assert read_images(path).n_samples == 30
    with np.load(path) as data:
        members = {k: data[k] for k in data.files}
    members[member] = make(members)
    np.savez(tmp_path / "bad.npz", **members)
    with pytest.raises(InputError, match=expected):
        read_images(tmp_path / "bad.npz")


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory, small_layout):
    import torch

    from rnaimg_core.model import save_model
    from rnaimg_core.model.network import SmallCNN
    from rnaimg_core.model.trained import TrainedModel

    torch.manual_seed(0)
    c, h, w = small_layout.shape
    model = TrainedModel(SmallCNN(c, h, w, 3), ["a", "b", "c"], small_layout, {})
    return save_model(model, tmp_path_factory.mktemp("m") / "model")


def edited_model(tmp_path, folder, change) -> str:
    import shutil

    target = tmp_path / "model"
    shutil.copytree(folder, target)
    info = json.loads((target / "model.json").read_text())
    info = change(info, target)
    (target / "model.json").write_text(json.dumps(info))
    return target


@pytest.mark.parametrize("change, expected", [
    (lambda i, t: [i], "not an rnaimg model file"),
    (lambda i, t: {**i, "architecture": {**i["architecture"], "dropout": 2.0}}, "dropout"),
    (lambda i, t: {**i, "class_names": ["a", "a", "b"]}, "class_names"),
    (lambda i, t: {**i, "layout": {**i["layout"], "file": "../../etc/passwd"}}, "outside the model folder"),
    (lambda i, t: {**i, "layout": {**i["layout"], "file": "/etc/passwd"}}, "plain name inside"),
    (lambda i, t: {**i, "layout": {**i["layout"], "sha256": "0" * 64}}, "sha256 mismatch"),
    (lambda i, t: {**i, "format_version": "1"}, "format_version"),
])
def test_model_folder_schema(tmp_path, model_folder, change, expected):
    from rnaimg_core.model import load_model

    assert load_model(model_folder).layout.to_json() is not None
    with pytest.raises(InputError, match=expected):
        load_model(edited_model(tmp_path, model_folder, change))


def test_model_layout_swapped_is_detected(tmp_path, model_folder, demo_expression):
    from rnaimg_core.compose import permutation_control
    from rnaimg_core.model import load_model

    def swap(info, target):
        other = permutation_control(load_layout(target / "layout.json.gz"), seed=3)
        other.save(target / "layout.json.gz")
        return info

    with pytest.raises(InputError, match="sha256"):
        load_model(edited_model(tmp_path, model_folder, swap))
    assert hashlib.sha256(b"").hexdigest()  # the digest is the file's content, not its name


@pytest.mark.parametrize("generator", ["som", "deepinsight", "deepmapper"])
def test_one_sample_cannot_fit_a_layout(generator):
    from rnaimg_core.expression import from_arrays
    from rnaimg_core.generators import get_generator

    expr = from_arrays(np.ones((1, len(GENES)), dtype=np.float32), ["S1"], GENES)
    with pytest.raises(InputError, match="at least 2 samples"):
        get_generator(generator)().fit(expr)
