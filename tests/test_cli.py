"""The command line, run as a newcomer would: a real subprocess, real files (error cases through ``main``)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from rnaimg_core.cli import main as cli
from rnaimg_core.images import read_images


def rnaimg(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([sys.executable, "-m", "rnaimg_core", *args], capture_output=True, text=True,
                            timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"rnaimg {' '.join(args)} failed:\n{result.stderr}")
    return result


def last_json(result: subprocess.CompletedProcess) -> dict:
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_generators_json_lists_parameters():
    listing = json.loads(rnaimg("generators", "--json").stdout)
    names = {g["name"] for g in listing}
    assert {"chromosome", "deepmapper"} <= names
    for gen in listing:
        assert gen["description"] and isinstance(gen["parameters"], list)
        assert {"name", "default", "help"} <= set(gen["parameters"][0])


def test_layout_and_convert_on_the_demo(tmp_path, demo_expression):
    layout_path = tmp_path / "chrom.json"
    summary = last_json(rnaimg("layout", "--generator", "chromosome", "--holdout", "0.25",
                               "--out", str(layout_path), "--json"))
    for key in ("generator", "shape", "n_genes_in", "n_genes_placed", "n_pixels_used",
                "max_genes_per_pixel", "seconds"):
        assert key in summary
    assert summary["generator"] == "chromosome"
    assert summary["shape"] == [1, 98, 98]
    assert summary["n_genes_in"] == 9450 and summary["n_genes_placed"] == 9436
    assert summary["n_fit_samples"] == 138

    images_path = tmp_path / "demo.npz"
    convert = last_json(rnaimg("convert", "--layout", str(layout_path), "--chunk-size", "50",
                               "--out", str(images_path), "--json"))
    assert convert["n_samples"] == 184 and convert["n_holdout_samples"] == 46
    imageset = read_images(images_path)
    assert imageset.images.shape == (184, 1, 98, 98)
    assert set(imageset.labels) >= {"malignant_93", "Microglia/Macrophage"}
    assert np.array_equal(imageset.images, imageset.layout.transform(demo_expression.values))


def test_tcga_style_file_end_to_end(tmp_path):
    """A user's TCGA legacy file: genes as rows, SYMBOL|ENTREZ ids, a separate sample sheet."""
    rng = np.random.default_rng(3)
    genes = ["TP53|7157", "EGFR|1956", "MYC|4609", "?|100133144", "ARID1A|8289", "CIC|23152", "PTEN|5728",
             "IDH1|3417", "BRCA1|672", "KRAS|3845"]
    samples = [f"TCGA-{i:02d}" for i in range(12)]
    matrix = pd.DataFrame(rng.gamma(2, 30, size=(len(genes), len(samples))), index=genes, columns=samples)
    matrix.index.name = "gene_id"
    matrix_path = tmp_path / "tcga.tsv.gz"
    matrix.to_csv(matrix_path, sep="\t")
    sheet = tmp_path / "samples.csv"
    pd.DataFrame({"sample_id": samples, "cancer_type": ["BRCA"] * 6 + ["LUAD"] * 6}).to_csv(sheet, index=False)

    summary = last_json(rnaimg("layout", "--input", str(matrix_path), "--labels", str(sheet),
                               "--generator", "chromosome", "--out", str(tmp_path / "l.json"), "--json"))
    assert summary["genes_by_route"]["tcga_entrez"] == 9
    assert summary["n_genes_placed"] == 9  # the ?|id has no position and is reported dropped
    assert summary["notes"]["dropped_examples"] == ["?|100133144"]
    convert = last_json(rnaimg("convert", "--input", str(matrix_path), "--labels", str(sheet),
                               "--layout", str(tmp_path / "l.json"), "--out", str(tmp_path / "i.npz"), "--json"))
    assert convert["shape"] == [1, 3, 3]


@pytest.mark.parametrize("args, message", [
    (["layout", "--generator", "nope", "--out", "x.json"], "Unknown generator"),
    (["layout", "--generator", "chromosome", "--set", "height", "--out", "x.json"], "KEY=VALUE"),
    (["layout", "--generator", "chromosome", "--set", "height=big", "--out", "x.json"], "not a valid int"),
    (["layout", "--input", "missing.csv", "--generator", "chromosome", "--out", "x.json"], "file not found"),
    (["convert", "--layout", "missing.json", "--out", "x.npz"], "not found"),
])
def test_errors_exit_non_zero_with_a_message(tmp_path, monkeypatch, capsys, args, message):
    # in this process (the CLI's own entry point, ``main``): a subprocess per case paid 3 s of imports each;
    # an exception escaping ``main`` fails the test just as a traceback would
    monkeypatch.chdir(tmp_path)
    assert cli(args) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_compare_takes_generator_settings_and_arms(tmp_path, demo_expression, capsys):
    # 60 demo cells of three classes x 1,500 genes, as a CSV with its labels
    keep = np.flatnonzero(np.isin(demo_expression.labels, ["malignant_93", "malignant_97", "malignant_MGH53"]))[::2]
    matrix = pd.DataFrame(demo_expression.values[keep][:, :1500], index=demo_expression.sample_ids[keep],
                          columns=demo_expression.gene_ids[:1500])
    matrix.insert(0, "tumour", demo_expression.labels[keep])
    matrix.to_csv(tmp_path / "cells.csv", index_label="cell")
    out = tmp_path / "check.csv"
    result = rnaimg("compare", "--input", str(tmp_path / "cells.csv"), "--label-column", "tumour", "--generators",
                    "chromosome", "--set", "chromosome.preset=lyu_haque_paper", "--arms", "probe", "--no-hybrid",
                    "--no-power", "--folds", "2", "--repeats", "1", "--out", str(out), "--json")
    data = last_json(result)
    assert data["arms"] == ["probe"] and set(data["generators"]) == {"chromosome"}
    assert all(record["arm"] == "probe" for record in data["folds"])
    assert "chromosome: " in result.stderr and "Pooled probe: balanced accuracy" in result.stderr
    assert "compared with its own permutation" in data["explanation"]
    assert pd.read_csv(out)["model"].tolist()[:2] == ["layout", "permutation"]
    capsys.readouterr()
    assert cli(["compare", "--generators", "chromosome", "--set", "preset=lyu_haque"]) == 2
    assert "GENERATOR.NAME=VALUE" in capsys.readouterr().err
    assert cli(["compare", "--generators", "chromosome", "--set", "chromosome.colour=red"]) == 2
    assert "colour" in capsys.readouterr().err
