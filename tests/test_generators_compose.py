"""Layout -> Layout operations (random control, stacks, channel splits), the generator registry and the command line."""

from __future__ import annotations

import json

import numpy as np
import pytest

from rnaimg_core.compose import (
    group_order_control,
    permutation_control,
    pixel_shuffle_control,
    split_channels,
    stack_layouts,
    within_group_control,
)
from rnaimg_core.errors import InputError
from rnaimg_core.generators import REGISTRY, fit_layout, list_generators
from rnaimg_core.limits import current_limits, use_limits
from tests.helpers import assert_every_gene_accounted, assert_round_trip


def test_random_control_scores_chance_and_round_trips(tmp_path, demo_expression):
    expr = demo_expression
    layout = fit_layout(expr, "random", {"seed": 1})
    assert_every_gene_accounted(layout)
    assert layout.quality["max_genes_per_pixel"] == 1
    assert abs(layout.quality["neighbourhood_preservation"]) < 0.03
    assert abs(layout.quality["adjacent_correlation_gain"]) < 0.01
    assert_round_trip(layout, expr, tmp_path)
    other = fit_layout(expr, "random", {"seed": 2}, quality=False)
    assert not np.array_equal(layout.placement_pixel, other.placement_pixel)


def test_random_like_copies_shape_and_pixel_counts(tmp_path, demo_expression):
    expr = demo_expression
    model = fit_layout(expr, "deepinsight", {"method": "pca", "height": 50, "width": 50, "assignment": "nearest"})
    path = model.save(tmp_path / "model.json")
    control = fit_layout(expr, "random", {"like": str(path)})
    assert control.shape == model.shape
    np.testing.assert_array_equal(control.genes_per_pixel, model.genes_per_pixel)
    assert control.quality["neighbourhood_preservation"] < model.quality["neighbourhood_preservation"] - 0.1
    in_memory = permutation_control(model, seed=0)
    np.testing.assert_array_equal(np.sort(in_memory.placement_gene), np.sort(model.placement_gene))


def test_stack_generator_and_stack_layouts(demo_expression):
    expr = demo_expression
    stacked = fit_layout(expr, "stack", {"layers": "chromosome,deepmapper"}, quality=False)
    assert stacked.shape[0] == 2
    chromosome = fit_layout(expr, "chromosome", quality=False)
    deepmapper = fit_layout(expr, "deepmapper", quality=False)
    combined = stack_layouts([chromosome, deepmapper])
    assert combined.shape == stacked.shape
    images = combined.transform(expr.values[:5], device="cpu")
    np.testing.assert_array_equal(images[:, :1], chromosome.transform(expr.values[:5], device="cpu"))
    np.testing.assert_array_equal(images[:, 1:], deepmapper.transform(expr.values[:5], device="cpu"))


def test_channels_by_chromosome_arm(demo_expression):
    expr = demo_expression
    layout = fit_layout(expr, "deepinsight", {"method": "pca", "channels": 2, "channel_by": "arm"}, quality=False)
    assert layout.shape[0] == 2
    channel = layout.placement_pixel // (layout.shape[1] * layout.shape[2])
    chromosomes = expr.genes["chromosome"].to_numpy()[layout.placement_gene]
    assert set(chromosomes[channel == 0]) >= {"1", "2"} and "22" not in set(chromosomes[channel == 0])
    counts = np.bincount(channel)
    assert counts.min() > 0.3 * counts.sum()  # arm groups of about equal size
    split = split_channels(fit_layout(expr, "deepmapper", quality=False),
                           (expr.genes["chromosome"].to_numpy() == "1").astype(int))
    assert split.shape[0] == 2


def test_cli_runs_every_generator(tmp_path, capsys):
    """Through the CLI's entry point in this process (``tests/test_cli.py`` runs ``python -m rnaimg_core`` as a
    newcomer would; a subprocess here paid 3 s of imports twice)."""
    from rnaimg_core.cli import main

    assert main(["generators", "--json"]) == 0
    names = {g["name"] for g in json.loads(capsys.readouterr().out.strip().splitlines()[-1])}
    assert {"chromosome", "deepmapper", "som", "gene_ontology", "deepinsight", "random"} <= names
    out = tmp_path / "deepinsight.json"
    code = main(["layout", "--generator", "deepinsight", "--set", "assignment=collision_free", "--set", "method=pca",
                 "--out", str(out), "--json"])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    summary = json.loads(captured.out.strip().splitlines()[-1])
    assert "neighbourhood_preservation" in json.dumps(summary)
    assert out.is_file()


def test_list_generators_describes_parameters():
    described = {g["name"]: g for g in list_generators()}
    som = {p["name"]: p for p in described["som"]["parameters"]}
    assert som["topology"]["choices"] == ["rectangular", "hexagonal"]
    assert som["assignment"]["choices"] == ["nearest", "collision_free"]


def test_image_size_parameters_follow_the_active_limits():
    """Every generator's height/width/channels bounds come from the resource policy when asked, not at import."""
    with use_limits(max_height=300, max_width=200, max_channels=3):
        for name, cls in REGISTRY.items():
            spec = cls.parameter_spec()
            assert (spec["height"].high, spec["width"].high) == (300, 200), name
            assert name == "stack" or spec["channels"].high == 3, name  # a stack's channels are its layers
            described = {p["name"]: p for p in cls.describe()["parameters"]}
            assert described["width"]["max"] == 200, name
        with pytest.raises(InputError, match=r"width must be at most 200, not 201\. .*RNAIMG_MAX_WIDTH"):
            REGISTRY["deepmapper"](width=201)
        with pytest.raises(InputError, match="channels must be at most 3"):
            REGISTRY["som"](channels=4)
    assert REGISTRY["deepmapper"](width=201).params["width"] == 201  # the default limits again
    assert REGISTRY["chromosome"].parameter_spec()["height"].high == current_limits().max_height


def test_generator_file_class_and_registry_names_agree():
    for name, cls in REGISTRY.items():
        assert cls.name == name
        assert cls.__module__ == f"rnaimg_core.generators.{name}"
        assert cls.__name__.lower() == name.replace("_", "") + "generator"


def test_fit_accepts_anndata(demo_expression):
    expr = demo_expression
    from_anndata = fit_layout(expr.to_anndata(), "deepmapper", {"order": "variance"}, quality=False)
    direct = fit_layout(expr, "deepmapper", {"order": "variance"}, quality=False)
    np.testing.assert_array_equal(from_anndata.placement_gene, direct.placement_gene)
    np.testing.assert_array_equal(from_anndata.gene_ids, direct.gene_ids)


def test_structured_controls_keep_what_they_say(demo_expression):
    layout = fit_layout(demo_expression.subset(np.arange(40)), "chromosome", quality=False)
    by_id = dict(zip(demo_expression.gene_ids, demo_expression.genes["chromosome"].astype(str)))
    chromosomes = np.array([by_id[g] for g in layout.gene_ids])
    pixel_of = lambda lay: dict(zip(lay.placement_gene.tolist(), lay.placement_pixel.tolist()))  # noqa: E731
    # within chromosomes: every chromosome covers the same pixels, and the local order is gone
    within = within_group_control(layout, chromosomes, seed=1)
    for name in ("1", "19", "X"):
        mine = np.sort(layout.placement_pixel[chromosomes[layout.placement_gene] == name])
        assert np.array_equal(mine, np.sort(within.placement_pixel[chromosomes[within.placement_gene] == name]))
    assert np.mean(within.placement_gene != layout.placement_gene) > 0.9
    # chromosomes shuffled: each chromosome's genes stay one run in their genomic order, somewhere else
    shuffled = group_order_control(layout, chromosomes, seed=1)
    order = np.argsort(shuffled.placement_pixel)
    runs = chromosomes[shuffled.placement_gene[order]]
    assert len(np.flatnonzero(runs[1:] != runs[:-1])) == len(np.unique(runs)) - 1  # one run per chromosome
    original = np.argsort(layout.placement_pixel)
    for name in ("1", "19"):
        assert np.array_equal(layout.placement_gene[original][chromosomes[layout.placement_gene[original]] == name],
                              shuffled.placement_gene[order][runs == name])
    assert not np.array_equal(shuffled.placement_gene, layout.placement_gene)
    # pixels shuffled: genes that share a pixel stay together, only where the pixels are changes
    som = fit_layout(demo_expression.subset(np.arange(40)), "som", {"height": 12, "width": 12}, quality=False)
    moved = pixel_shuffle_control(som, seed=2)
    assert som.genes_per_pixel.max() > 1
    before, after = pixel_of(som), pixel_of(moved)
    groups = {}
    for gene, pixel in before.items():
        groups.setdefault(pixel, set()).add(after[gene])
    assert all(len(targets) == 1 for targets in groups.values())
    assert sorted(np.bincount(moved.placement_pixel)[np.bincount(moved.placement_pixel) > 0]) == \
        sorted(np.bincount(som.placement_pixel)[np.bincount(som.placement_pixel) > 0])
    for control in (within, shuffled, moved):
        assert control.generator == "random" and control.notes["control_of"] in ("chromosome", "som")


def test_every_generator_has_a_docstring_and_shows_its_changed_parameters():
    """As scikit-learn's estimators: a class docstring, and a repr naming the parameters set away from defaults."""
    from rnaimg_core.generators.base import Generator

    for name, cls in REGISTRY.items():
        assert cls.__doc__ and cls.__doc__ != Generator.__doc__, name
        assert repr(cls()) == f"{cls.__name__}()"
    som = REGISTRY["som"](height=10, topology="hexagonal", seed=3)
    assert repr(som) == "SOMGenerator(topology='hexagonal', height=10, seed=3)"
    assert REGISTRY["som"](topology="hexagonal", height=10, seed=3).params == som.params
