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


# ---------------------------------------------------------------- issue 20.5: the remaining tracebacks

def test_an_images_file_with_zero_samples_is_refused(tmp_path, demo_expression):
    from rnaimg_core.generators import get_generator
    from rnaimg_core.images import read_images, write_images

    layout = get_generator("random")().fit(demo_expression)
    path = write_images(tmp_path / "zero.npz", np.zeros((0, *layout.shape), np.float32), [], None, layout)
    with pytest.raises(InputError, match="holds no images"):
        read_images(path)


def test_a_layout_holding_a_5000_digit_integer_is_refused(tmp_path, demo_expression):
    from rnaimg_core.generators import get_generator

    text = get_generator("random")().fit(demo_expression).to_json()
    path = tmp_path / "layout.json"
    path.write_text(text[:-1] + ',"extra":' + "9" * 5000 + "}")
    with pytest.raises(InputError, match="number too long"):
        load_layout(path)


def test_deep_json_names_its_depth_not_a_billion(tmp_path):
    from rnaimg_core.limits import load_json

    with pytest.raises(InputError, match=r"nesting depth \(about\) is 100,000") as info:
        load_json("[" * 100_000 + "]" * 100_000, "deep.json")
    assert "1,000,000,000" not in str(info.value)


@pytest.mark.parametrize("name, params, n_genes", [("som", {}, 1), ("deepinsight", {"method": "umap"}, 2),
                                                   ("deepinsight", {"method": "umap"}, 3),
                                                   ("deepinsight", {"method": "kpca"}, 1)])
def test_embeddings_of_too_few_genes_are_refused(demo_expression, name, params, n_genes):
    from rnaimg_core.expression import from_arrays
    from rnaimg_core.generators import get_generator

    few = from_arrays(demo_expression.values[:, :n_genes], demo_expression.sample_ids,
                      demo_expression.gene_ids[:n_genes], demo_expression.labels)
    with pytest.raises(InputError, match="at least"):
        get_generator(name)(**params).fit(few)


def test_a_huge_grid_after_limits_are_raised_is_refused_before_allocating(demo_expression):
    import tracemalloc

    from rnaimg_core.generators import get_generator
    from rnaimg_core.limits import use_limits

    with use_limits(max_height=100_000, max_width=100_000):
        tracemalloc.start()
        try:
            with pytest.raises(InputError, match="max_array_bytes"):
                get_generator("deepmapper")(height=60_000, width=60_000).fit(demo_expression)
        finally:
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
    assert peak < 200 * 2**20


# ---------------------------------------------------------------- issue 20.6: one reader, honest messages

def test_a_finite_1e308_is_not_called_infinite(tmp_path):
    frame = matrix(8)
    frame.iloc[0, 0] = 1e308
    frame.rename_axis("sample").to_csv(tmp_path / "big.csv")
    with pytest.raises(InputError, match=r"beyond the range of 32-bit values") as info:
        read_expression(tmp_path / "big.csv")
    assert "first is infinite at" not in str(info.value)


def test_folders_and_fifos_are_named_as_such(tmp_path):
    import os

    from rnaimg_core.stores import open_cohort

    os.mkfifo(tmp_path / "pipe.csv")
    for reader in (read_expression, open_cohort):
        with pytest.raises(InputError, match="is a folder, not a file"):
            reader(tmp_path)
        with pytest.raises(InputError, match="FIFO"):  # never opened: reading it would block
            reader(tmp_path / "pipe.csv")


def test_multi_level_parquet_is_refused_from_its_metadata_by_both_readers(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from rnaimg_core.stores import open_cohort

    level = {"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "object", "metadata": None}
    columns = [{"name": g, "field_name": g, "pandas_type": "float64", "numpy_type": "float64", "metadata": None}
               for g in ("TP53", "EGFR")]
    meta = {"index_columns": [], "column_indexes": [level, level], "columns": columns}
    table = pa.table({"TP53": [1.0, 2.0], "EGFR": [2.0, 3.0]}).replace_schema_metadata(
        {b"pandas": json.dumps(meta).encode()})
    pq.write_table(table, tmp_path / "levels.parquet")
    frame = matrix(4)
    frame.index = pd.MultiIndex.from_tuples([(i, "x") for i in frame.index])
    frame.to_parquet(tmp_path / "index.parquet")
    for name in ("levels.parquet", "index.parquet"):
        for reader in (read_expression, open_cohort):
            with pytest.raises(InputError, match="multi-level header or index") as info:
                reader(tmp_path / name)
            assert "ast." not in str(info.value)


def test_the_big_run_reader_reads_what_the_normal_reader_reads(tmp_path, demo_expression):
    """An R write.table header, a genes-as-rows table (found or given by --orientation) and the size limits:
    the same evidence and checks as read_expression."""
    from rnaimg_core.limits import use_limits
    from rnaimg_core.stores import open_cohort

    expr = demo_expression
    frame = pd.DataFrame(expr.values[:40, :60], index=expr.sample_ids[:40], columns=expr.gene_ids[:60])
    r_style = tmp_path / "r.tsv"
    r_style.write_text("\t".join(frame.columns) + "\n" + frame.to_csv(sep="\t", header=False))
    whole = read_expression(r_style)
    cohort = open_cohort(r_style, block_size=16)
    assert "R write.table" in cohort.notes["header"]
    assert np.array_equal(cohort.sample_ids, whole.sample_ids) and np.array_equal(cohort.gene_ids, whole.gene_ids)
    np.testing.assert_array_equal(np.concatenate([b for _, b in cohort.iter_blocks()]), whole.values)

    frame.T.rename_axis("gene").to_csv(tmp_path / "genes_rows.csv")
    assert read_expression(tmp_path / "genes_rows.csv").n_samples == 40
    with pytest.raises(InputError, match=r"has genes as rows \(because the id column is named 'gene'\)"):
        open_cohort(tmp_path / "genes_rows.csv")
    frame.rename_axis("sample").to_csv(tmp_path / "samples_rows.csv")
    with pytest.raises(InputError, match="as given by --orientation"):
        open_cohort(tmp_path / "samples_rows.csv", orientation="genes-as-rows")
    with use_limits(max_cells=1000):
        with pytest.raises(InputError, match="max_cells"):
            open_cohort(tmp_path / "samples_rows.csv")
    with use_limits(max_columns=10):
        with pytest.raises(InputError, match="max_columns"):
            open_cohort(tmp_path / "samples_rows.csv")
    with use_limits(max_file_bytes=100):
        with pytest.raises(InputError, match="max_file_bytes"):
            open_cohort(tmp_path / "samples_rows.csv")


# ---------------------------------------------------------------- issue 20.2 / 20.5: stores, stale and damaged

@pytest.fixture
def store_parts(demo_expression, tmp_path):
    """A layout, 100 demo samples as a CSV file and its fingerprinted cohort (no cluster needed)."""
    return _store_parts(demo_expression, tmp_path)


def _store_parts(expr, folder):
    from rnaimg_core.generators import get_generator
    from rnaimg_core.stores import open_cohort

    layout = get_generator("random")(height=12, width=12).fit(expr)
    frame = pd.DataFrame(expr.values[:100], index=pd.Index(expr.sample_ids[:100], name="sample"),
                         columns=expr.gene_ids)
    frame.insert(0, "cell_type", expr.labels[:100])
    frame.to_csv(folder / "cohort.csv")
    return layout, frame, open_cohort(folder / "cohort.csv", block_size=50)


@pytest.fixture(scope="module")
def pristine_store(demo_expression, tmp_path_factory):
    """A complete store of :func:`store_parts`, written once for the module: copy it before damaging it."""
    folder = tmp_path_factory.mktemp("pristine")
    layout, _, cohort = _store_parts(demo_expression, folder)
    write_store(folder / "images.zarr", layout, cohort)
    return folder / "images.zarr"


def write_store(path, layout, cohort, missing="error", resume=True):
    """What convert_to_store writes, block by block in this process (fingerprint included)."""
    import hashlib

    from rnaimg_core.splits import layout_split
    from rnaimg_core.stores import create_store, write_block

    fingerprint = {**cohort.fingerprint, "layout_sha256": hashlib.sha256(layout.to_json().encode()).hexdigest(),
                   "settings": {"missing": missing}}
    group, done = create_store(path, layout, cohort.sample_ids, cohort.labels,
                               layout_split(layout.fit_sample_ids, cohort.sample_ids), block_size=cohort.block_size,
                               resume=resume, fingerprint=fingerprint)
    for index, (start, block) in enumerate(cohort.iter_blocks()):
        if not done[index]:
            write_block(str(path), start, layout.transform(block, cohort.gene_ids), index)
    group.attrs["complete"] = True
    return done


def test_a_store_is_resumed_only_for_the_same_input_layout_and_settings(tmp_path, store_parts):
    import os

    from rnaimg_core.stores import open_cohort, read_store

    layout, frame, cohort = store_parts
    out = tmp_path / "images.zarr"
    write_store(out, layout, cohort)
    assert write_store(out, layout, cohort).all()  # the same conversion: every block resumed
    before = read_store(out).images[:]

    changed = frame.copy()
    changed.iloc[:, 1:] = changed.iloc[:, 1:].to_numpy()[::-1]  # other data under the same sample ids
    changed.to_csv(tmp_path / "cohort.csv")
    os.utime(tmp_path / "cohort.csv", ns=(1, 1))
    new_cohort = open_cohort(tmp_path / "cohort.csv", block_size=50)
    with pytest.raises(InputError, match="the input file changed"):
        write_store(out, layout, new_cohort)
    with pytest.raises(InputError, match=r"conversion settings differ \(\{'missing': 'error'\} before"):
        write_store(out, layout, cohort, missing="fill")
    other_layout = layout.replace(seed=layout.seed + 1)
    with pytest.raises(InputError, match="the layout differs"):
        write_store(out, other_layout, cohort)
    assert np.array_equal(read_store(out).images[:], before)  # nothing written by the refused runs
    assert not write_store(out, layout, new_cohort, resume=False).any()  # --overwrite: afresh
    assert not np.array_equal(read_store(out).images[:], before)


@pytest.mark.parametrize("damage, message", [
    ("short split", "split has 99 entries"),
    ("format_version 99", "format version 99"),
    ("short sample_ids", "sample_ids has 99 entries"),
    ("short labels", "labels has 99 entries"),
    ("bad split", "split must be"),
    ("missing images", "images array is missing"),
    ("blocks not written", "some blocks were never written"),
])
def test_damaged_stores_are_refused(tmp_path, pristine_store, damage, message):
    import shutil

    import zarr

    from rnaimg_core.stores import read_store

    out = tmp_path / "images.zarr"
    shutil.copytree(pristine_store, out)
    read_store(out)  # whole, it reads
    group = zarr.open_group(str(out), mode="r+")
    attrs = dict(group.attrs)
    if damage.startswith("short"):
        key = damage.split()[1]
        group.attrs[key] = attrs[key][:-1]
    elif damage == "format_version 99":
        group.attrs["format_version"] = 99
    elif damage == "bad split":
        group.attrs["split"] = ["train"] * len(attrs["split"])
    elif damage == "missing images":
        shutil.rmtree(out / "images")
    elif damage == "blocks not written":
        group["done"][1] = False
    with pytest.raises(InputError, match=message):
        read_store(out)


def test_nan_images_in_a_store_are_refused_where_read(tmp_path, store_parts):
    import zarr

    from rnaimg_core.stores import read_store

    layout, _, cohort = store_parts
    out = tmp_path / "images.zarr"
    write_store(out, layout, cohort)
    zarr.open_group(str(out), mode="r+")["images"][7, 0, 0, 0] = np.nan
    store = read_store(out)
    with pytest.raises(InputError, match=f"sample '{cohort.sample_ids[7]}' holds NaN"):
        store.load(np.arange(10))
    with pytest.raises(InputError, match="holds NaN"):
        store.check_finite()  # what train_streamed runs before training
