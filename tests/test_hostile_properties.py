"""Property-based hostile tests (Hypothesis): readers, layout files, images files and fit/transform.

Asserted for every generated example: only :class:`InputError` escapes; a valid table
written in any supported style reads back the same matrix; finite input gives finite
images. Example counts are kept small so the whole file runs in well under a minute.
"""

from __future__ import annotations

import gzip
import io
import json

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rnaimg_core.errors import InputError
from rnaimg_core.layout import Layout
from rnaimg_core.readers import read_expression_bytes

GENES = ["TP53", "ARID1A", "EGFR", "IDH1", "CIC", "FUBP1", "MYC", "PTEN", "KRAS", "BRAF", "NRAS", "ATRX"]
FAST = settings(max_examples=40, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                         HealthCheck.too_slow])


def only_input_errors(func) -> None:
    try:
        func()
    except InputError as exc:
        assert "\n" not in str(exc).strip() or "Traceback" not in str(exc)


# ---------------------------------------------------------------- readers: arbitrary bytes

@FAST
@given(data=st.binary(max_size=2000),
       name=st.sampled_from(["m.csv", "m.tsv", "m.txt", "m.csv.gz", "m.parquet", "m.h5ad"]))
def test_arbitrary_bytes_give_only_input_errors(data, name):
    only_input_errors(lambda: read_expression_bytes(data, name))


cell = st.one_of(st.integers(-5, 5).map(str), st.sampled_from(["", "NA", "nan", "inf", "x", "1e400", '"', "TP53",
                                                                  "label", "sample", "\t", ","]),
                 st.floats(allow_nan=True, allow_infinity=True).map(repr))


@FAST
@given(rows=st.lists(st.lists(cell, min_size=1, max_size=6), min_size=1, max_size=8),
       sep=st.sampled_from([",", "\t"]))
def test_ragged_text_tables_give_only_input_errors(rows, sep):
    text = "\n".join(sep.join(r) for r in rows)
    only_input_errors(lambda: read_expression_bytes(text.encode(), "m.csv" if sep == "," else "m.tsv"))


# ---------------------------------------------------------------- readers: valid tables round-trip

sample_id = st.one_of(st.integers(1, 10**6).map(str), st.from_regex(r"[A-Z]{1,3}-?[0-9]{1,4}", fullmatch=True))


@st.composite
def valid_tables(draw):
    n_samples = draw(st.integers(4, 9))
    n_genes = draw(st.integers(4, len(GENES)))
    genes = draw(st.permutations(GENES))[:n_genes]
    samples = draw(st.lists(sample_id, min_size=n_samples, max_size=n_samples, unique=True))
    values = draw(st.lists(st.integers(0, 10_000), min_size=n_samples * n_genes, max_size=n_samples * n_genes))
    frame = pd.DataFrame(np.asarray(values, dtype=np.float32).reshape(n_samples, n_genes) / 4,
                         index=samples, columns=genes)
    style = draw(st.sampled_from(["samples-rows", "genes-rows", "r-header", "sample-sheet"]))
    suffix = draw(st.sampled_from([".csv", ".tsv", ".csv.gz", ".txt"]))
    return frame, style, suffix


def write_table(frame: pd.DataFrame, style: str, suffix: str) -> tuple[bytes, bytes | None]:
    sep = "," if ".csv" in suffix else "\t"
    sheet = None
    if style == "samples-rows":
        table = frame.rename_axis("sample")
    elif style == "genes-rows":
        table = frame.T.rename_axis("gene")
    elif style == "sample-sheet":
        table = frame.T.rename_axis("id")
        sheet = pd.DataFrame({"sample": frame.index, "label": ["A", "B"] * (len(frame) // 2) + ["A"] * (len(frame) % 2)})
        sheet = sheet.to_csv(index=False).encode()
    else:
        table = frame
    buffer = io.StringIO()
    if style == "r-header":  # R write.table: no header field above the row names
        buffer.write(sep.join(table.columns) + "\n")
        table.to_csv(buffer, sep=sep, header=False)
    else:
        table.to_csv(buffer, sep=sep)
    data = buffer.getvalue().encode()
    return (gzip.compress(data) if suffix.endswith(".gz") else data), sheet


@FAST
@given(case=valid_tables())
def test_valid_tables_read_back_the_same_matrix(case):
    frame, style, suffix = case
    data, sheet = write_table(frame, style, suffix)
    expr = read_expression_bytes(data, "m" + suffix, labels=sheet, labels_filename="sheet.csv")
    assert expr.sample_ids.tolist() == frame.index.tolist()
    assert expr.gene_ids.tolist() == frame.columns.tolist()
    np.testing.assert_array_equal(expr.values, frame.to_numpy(np.float32))


# ---------------------------------------------------------------- layout files

@pytest.fixture(scope="module")
def layout_dict(demo_expression) -> dict:
    from rnaimg_core.generators import get_generator

    layout = get_generator("deepmapper")(max_genes=50).fit(demo_expression.subset(slice(0, 40)))
    return json.loads(layout.to_json())


json_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(), st.text(max_size=5)),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=4), children, max_size=3),
    max_leaves=8)
FIELDS = ["format", "format_version", "generator", "params", "seed", "shape", "reduce", "gene_ids", "entrez_ids",
          "symbols", "placements", "normalization", "quality", "notes", "regions", "fit_sample_ids"]


@FAST
@given(field=st.sampled_from(FIELDS), value=json_value, drop=st.booleans())
def test_mutated_layout_files_give_only_input_errors(layout_dict, field, value, drop):
    data = json.loads(json.dumps(layout_dict))
    if drop:
        data.pop(field)
    else:
        data[field] = value
    text = json.dumps(data)
    try:
        layout = Layout.from_json(text)
    except InputError:
        return
    assert np.isfinite(layout.normalization.center_).all()  # what loads is usable


@FAST
@given(key=st.sampled_from(["center", "spread", "gene", "pixel"]), index=st.integers(0, 49),
       value=st.one_of(st.floats(), st.integers(-2**64, 2**64), st.text(max_size=3), st.none()))
def test_mutated_layout_arrays_give_only_input_errors(layout_dict, key, index, value):
    data = json.loads(json.dumps(layout_dict))
    target = data["normalization"] if key in ("center", "spread") else data["placements"]
    target[key][index % len(target[key])] = value
    only_input_errors(lambda: Layout.from_json(json.dumps(data)))


# ---------------------------------------------------------------- fit / transform

@settings(max_examples=25, deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(values=st.lists(st.floats(0, 1e6, allow_nan=False, allow_infinity=False, width=32),
                       min_size=6 * 12, max_size=6 * 12),
       generator=st.sampled_from(["deepmapper", "random", "chromosome", "som"]),
       scale=st.sampled_from(["zscore", "minmax", "none", "sample_max"]))
def test_finite_input_gives_finite_images(values, generator, scale):
    from rnaimg_core.expression import from_arrays
    from rnaimg_core.generators import get_generator

    expr = from_arrays(np.asarray(values, dtype=np.float32).reshape(6, 12), [f"S{i}" for i in range(6)], GENES,
                       ["A", "A", "A", "B", "B", "B"])
    try:
        layout = get_generator(generator)(scale=scale).fit(expr, quality=False)
    except InputError:
        return
    images = layout.transform(expr.values, expr.gene_ids)
    assert np.isfinite(images).all()


@FAST
@given(n=st.integers(1, 5), fill=st.sampled_from([np.nan, np.inf, 1e30, -1.0, 0.0]))
def test_images_files_round_trip_or_refuse(tmp_path_factory, layout_dict, n, fill):
    from rnaimg_core.images import read_images, write_images

    layout = Layout.from_dict(layout_dict)
    images = np.full((n, *layout.shape), fill, dtype=np.float32)
    path = write_images(tmp_path_factory.mktemp("img") / "i.npz", images, [f"S{i}" for i in range(n)], None, layout)
    try:
        loaded = read_images(path)
    except InputError:
        assert not np.isfinite(fill)
        return
    assert np.isfinite(fill) and loaded.n_samples == n
