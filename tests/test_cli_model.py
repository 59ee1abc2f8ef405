"""layout -> convert -> train -> explain from the command line, on planted data."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from rnaimg_core.cli import main
from rnaimg_core.expression import to_frame


def _last_json(capsys) -> dict:
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def workdir(tmp_path_factory, planted):
    folder = tmp_path_factory.mktemp("cli_model")
    expr, _ = planted
    to_frame(expr).to_csv(folder / "planted.csv")
    return folder


def test_layout_convert_train_explain(workdir, capsys):
    d = workdir
    assert main(["layout", "--input", str(d / "planted.csv"), "--label-column", "label", "--generator",
                 "chromosome", "--holdout", "0.25", "--out", str(d / "l.json"), "--json"]) == 0
    assert main(["convert", "--input", str(d / "planted.csv"), "--label-column", "label", "--layout",
                 str(d / "l.json"), "--out", str(d / "images.npz"), "--json"]) == 0
    capsys.readouterr()
    # plumbing: one network (--n-models; ensembles are trained and checked in test_model.py)
    assert main(["train", "--images", str(d / "images.npz"), "--epochs", "3", "--seed", "1", "--n-models", "1",
                 "--out", str(d / "model"), "--json"]) == 0
    summary = _last_json(capsys)
    assert "members" not in json.loads((d / "model" / "model.json").read_text())["architecture"]  # one network
    for key in ("accuracy", "balanced_accuracy", "baseline_accuracy", "baseline_balanced_accuracy", "device",
                "epochs", "seconds"):
        assert key in summary
    assert summary["epochs"] <= 3 and summary["evaluated_on"].startswith("holdout")
    assert main(["explain", "--model", str(d / "model"), "--images", str(d / "images.npz"), "--method",
                 "saliency", "--class", "gamma", "--top", "15", "--out", str(d / "genes.csv"), "--json"]) == 0
    result = _last_json(capsys)
    assert result["n_rows"] == 15 and list(result["top_genes"]) == ["gamma"]
    table = pd.read_csv(d / "genes.csv")
    assert len(table) == 15 and set(table["class"]) == {"gamma"} and list(table["rank"]) == list(range(1, 16))
    # images of the layout's random control: same shape and pixels, other genes on them: refused, file named
    assert main(["layout", "--input", str(d / "planted.csv"), "--label-column", "label", "--generator", "random",
                 "--set", f"like={d / 'l.json'}", "--holdout", "0.25", "--out", str(d / "control.json")]) == 0
    assert main(["convert", "--input", str(d / "planted.csv"), "--label-column", "label", "--layout",
                 str(d / "control.json"), "--out", str(d / "control.npz")]) == 0
    capsys.readouterr()
    assert main(["explain", "--model", str(d / "model"), "--images", str(d / "control.npz"),
                 "--out", str(d / "control.csv")]) == 2
    assert "control.npz came from another layout than the model's layout: different pixels" in capsys.readouterr().err


def test_errors_exit_2(workdir, capsys):
    assert main(["explain", "--model", str(workdir / "nope"), "--images", str(workdir / "images.npz"),
                 "--out", str(workdir / "x.csv")]) == 2
    assert "not an rnaimg model folder" in capsys.readouterr().err
    assert main(["train", "--images", str(workdir / "missing.npz"), "--out", str(workdir / "m")]) == 2
