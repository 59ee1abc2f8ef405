"""Attribution by method name, pixel -> gene mapping, and the planted-driver sanity check."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from rnaimg_core.attribution import METHODS, attribute, class_gene_table, explain, resolve_method
from rnaimg_core.compose import permutation_control
from rnaimg_core.errors import InputError
from rnaimg_core.images import ImageSet
from rnaimg_core.layout import Layout
from rnaimg_core.model import train_model
from rnaimg_core.normalize import Normalization
from tests.helpers import CLASSES, N_DRIVERS, N_GENES


@pytest.fixture(scope="module")
def model(planted_images):
    return train_model(planted_images, epochs=20, patience=20, seed=0, baseline=False, n_threads=2,
                       n_models=1).model


def _hand_layout() -> Layout:
    """Four genes on a 1x2x2 image: g0 alone, g1 and g2 share a pixel, g3 on two pixels, g4 unplaced."""
    norm = Normalization(log="no", scale="none").fit(np.zeros((2, 5), dtype=np.float32))
    return Layout(generator="hand", params={}, seed=0, shape=(1, 2, 2),
                  gene_ids=np.array(["g0", "g1", "g2", "g3", "g4"]),
                  placement_gene=np.array([0, 1, 2, 3, 3]), placement_pixel=np.array([0, 1, 1, 2, 3]),
                  reduce="mean", normalization=norm, symbols=np.array(["A", "B", "C", "D", "E"]),
                  entrez_ids=np.array([-1, -1, -1, -1, -1]))


def test_pixel_scores_map_to_genes_and_sharing_is_stated():
    layout = _hand_layout()
    attributions = np.array([[[[1.0, 2.0], [3.0, 4.0]]], [[[0.0, -1.0], [0.5, 0.5]]]], dtype=np.float32)
    scores = layout.pixel_to_gene_scores(attributions)
    np.testing.assert_allclose(scores[:, :4], [[1, 2, 2, 7], [0, -1, -1, 1]])
    assert np.isnan(scores[:, 4]).all()
    np.testing.assert_allclose(layout.pixel_to_gene_scores(attributions[0], combine="mean")[3], 3.5)
    table = class_gene_table(layout, scores[0], class_name="x", top=None, go_terms=0)
    assert list(table["symbol"]) == ["D", "B", "C", "A"] and list(table["rank"]) == [1, 2, 3, 4]
    shared = table.set_index("symbol")
    assert shared.loc["B", "n_genes_on_pixel"] == 2 and shared.loc["B", "shares_pixel_with"] == "C"
    assert shared.loc["A", "n_genes_on_pixel"] == 1 and shared.loc["A", "shares_pixel_with"] == ""


@pytest.mark.parametrize("method", list(METHODS))
def test_every_method_returns_image_shaped_attributions(model, planted_images, method):
    options = {"window": 4, "stride": 4} if method == "occlusion" else {}
    out = attribute(model, planted_images.images[:5], "alpha", method, **options)
    assert out.shape == (5, *planted_images.layout.shape) and out.dtype == np.float32 and np.isfinite(out).all()
    assert np.abs(out).sum() > 0


def test_method_names_and_options_are_checked(model, planted_images):
    assert resolve_method("IG") == "integrated_gradients" and resolve_method("gradcam") == "guided_gradcam"
    with pytest.raises(InputError, match="Unknown attribution method"):
        resolve_method("lime")
    with pytest.raises(InputError, match="no option"):
        attribute(model, planted_images.images[:2], 0, "saliency", n_steps=3)
    with pytest.raises(InputError, match="Unknown class"):
        attribute(model, planted_images.images[:2], "delta", "saliency")


def test_planted_drivers_top_their_class_table(model, planted_images, planted):
    """Sanity check: the genes raised in a class rank far above chance in that class's table."""
    _, drivers = planted
    explanation = explain(model, planted_images, method="integrated_gradients")
    top = 20  # 5 % of the genes: by chance about 0.3 of 6 drivers land there
    for name in CLASSES:
        table = explanation.class_gene_table(name, top=top, go_terms=0)
        hits = len(set(table["symbol"]) & set(drivers[name]))
        assert hits >= N_DRIVERS // 2, (name, hits, table["symbol"].tolist())
    assert explanation.class_samples["alpha"]["basis"] == "correctly classified"


def test_explain_table_has_annotation_and_exports(model, planted_images, tmp_path):
    explanation = explain(model, planted_images, method="saliency", classes=["beta"])
    table = explanation.class_gene_table("beta", top=10)
    assert {"symbol", "entrez_id", "chromosome", "start", "go_terms", "score", "rank", "n_genes_on_pixel",
            "shares_pixel_with"} <= set(table.columns)
    assert (table["entrez_id"] > 0).all() and (table["chromosome"] != "").all()
    assert table["score"].is_monotonic_decreasing
    assert (table["go_terms"] != "").any()
    table.to_csv(tmp_path / "genes.csv", index=False)
    assert (tmp_path / "genes.csv").read_text().startswith("class,rank,symbol")
    per_sample = explanation.sample_gene_scores()
    # by default only the held-out samples are explained (the model never saw them)
    held_beta = (planted_images.labels == "beta") & (planted_images.split == "holdout")
    assert per_sample.shape == (int(held_beta.sum()), N_GENES)
    assert any("held-out" in note for note in explanation.notes)


def test_explain_one_sample_gives_what_the_sample_view_needs(model, planted_images):
    sample = str(planted_images.sample_ids[planted_images.split == "holdout"][0])
    i = int(np.flatnonzero(planted_images.sample_ids == sample)[0])
    label = str(planted_images.labels[i])
    explanation = explain(model, planted_images, method="saliency", samples=[sample])
    assert explanation.sample_ids.tolist() == [sample] and explanation.targets.tolist() == [label]
    assert explanation.predicted[0] == model.predict(planted_images.images[i:i + 1])[0]
    pixel_map = attribute(model, planted_images.images[i:i + 1], label, "saliency")[0]
    # equal on the CPU; CUDA kernels may round the last bit differently for another batch size
    np.testing.assert_allclose(explanation.sample_map(sample), pixel_map, rtol=1e-5, atol=1e-7)
    layout = planted_images.layout
    by_hand = class_gene_table(layout, layout.pixel_to_gene_scores(pixel_map), class_name=label, top=20, go_terms=0)
    table = explanation.sample_gene_table(sample, top=20, go_terms=0)
    pd.testing.assert_frame_equal(table, by_hand, check_exact=False, rtol=1e-5, atol=1e-7)
    assert set(table["class"]) == {label}
    assert explanation.sample_gene_scores().shape == (1, N_GENES)


def test_explain_a_set_of_samples_by_id_or_position(model, planted_images):
    ids = planted_images.sample_ids[[5, 100, 200]].tolist()
    by_id = explain(model, planted_images, method="saliency", samples=ids)
    by_position = explain(model, planted_images, method="saliency", samples=[5, 100, 200])
    assert by_id.sample_ids.tolist() == by_position.sample_ids.tolist() == ids
    np.testing.assert_allclose(by_id.attributions, by_position.attributions, rtol=1e-5, atol=1e-7)
    only_beta = explain(model, planted_images, method="saliency", samples=ids, classes=["beta"])
    assert set(only_beta.targets) == {"beta"} and set(only_beta.class_pixel_maps) <= {"beta"}
    with pytest.raises(InputError, match="not in these images"):
        explain(model, planted_images, method="saliency", samples=["nobody"])


def test_explain_refuses_images_of_another_layout(model, planted, planted_images):
    """Images of the same shape and pixels but other genes on them (a permutation control) are refused."""
    control = permutation_control(planted_images.layout, seed=1)
    shuffled = ImageSet.from_expression(control, planted[0])
    assert shuffled.images.shape == planted_images.images.shape
    with pytest.raises(InputError, match="another layout than the model's layout: different pixels"):
        explain(model, shuffled, method="saliency")
    refitted = planted_images.layout.replace(normalization=Normalization(log="no", scale="none").fit(
        planted[0].values))
    with pytest.raises(InputError, match="different normalisation"):
        explain(model, ImageSet.from_expression(refitted, planted[0]), method="saliency")
    other = type(model)(model.network, model.class_names, control, {})
    with pytest.raises(InputError, match="models to average came from another layout"):
        explain([model, other], planted_images, method="saliency")


def test_explain_defaults_to_holdout_and_says_so(model, planted_images):
    held = planted_images.split == "holdout"
    default = explain(model, planted_images, method="saliency")
    assert set(default.sample_ids) == set(planted_images.sample_ids[held])
    assert any(f"{int(held.sum())} held-out samples" in note for note in default.notes)
    everything = explain(model, planted_images, method="saliency", samples="all")
    assert everything.sample_ids.size == planted_images.n_samples
    assert any("trained on" in note for note in everything.notes)


def test_several_models_average_and_report_rank_stability(planted_images):
    models = [train_model(planted_images, epochs=6, seed=seed, baseline=False, n_threads=2, n_models=1).model
              for seed in (1, 2)]
    single = [explain(m, planted_images, method="saliency", classes=["alpha"]) for m in models]
    both = explain(models, planted_images, method="saliency", classes=["alpha"])
    np.testing.assert_allclose(both.attributions, (single[0].attributions + single[1].attributions) / 2,
                               rtol=1e-5, atol=1e-6)
    table = both.class_gene_table("alpha", top=20, go_terms=0)
    stability = table["top20_stability"]
    assert both.n_models == 2 and set(stability.unique()) <= {0.0, 0.5, 1.0}
    in_both = set(single[0].class_gene_table("alpha", top=20, go_terms=0)["symbol"]) & set(
        single[1].class_gene_table("alpha", top=20, go_terms=0)["symbol"])
    assert set(table.loc[stability == 1.0, "symbol"]) <= in_both


def test_explain_warns_on_few_samples_chance_level_and_zero_maps(model, planted_images):
    one = explain(model, planted_images, method="saliency",
                  samples=[str(planted_images.sample_ids[planted_images.labels == "alpha"][0])])
    assert any("rests on" in note and "alpha" in note for note in one.notes)
    blind = type(model)(copy.deepcopy(model.network), model.class_names, model.layout, {})
    with torch.no_grad():
        for parameter in blind.network.parameters():
            parameter.zero_()  # every class scores 0: predictions at chance, gradients all zero
    zero = explain(blind, planted_images, method="saliency", classes=["alpha"])
    assert any("all zero" in note and "integrated_gradients" in note for note in zero.notes)
