"""The layout engine, DeepMapper and chromosome location on the real demo data."""

from __future__ import annotations

import numpy as np
import pytest

from rnaimg_core import InputError, get_generator, load_layout
from rnaimg_core.layout import Layout
from rnaimg_core.normalize import Normalization


@pytest.fixture(scope="module")
def chrom(demo_expression):
    return get_generator("chromosome")().fit(demo_expression)


def placed_order(layout: Layout) -> np.ndarray:
    """Gene indices in the order of their flat pixel."""
    return layout.placement_gene[np.argsort(layout.placement_pixel)]


def arm(cytoband: str) -> str:
    return "p" if "p" in cytoband else "q"


def test_chromosome_order_follows_the_genome(demo_expression, chrom):
    genes = demo_expression.genes.iloc[placed_order(chrom)]
    chromosomes = genes["chromosome"].tolist()
    assert chromosomes[0] == "1"
    assert chromosomes.index("2") > len(chromosomes) - chromosomes[::-1].index("1") - 1  # all chr1 before chr2
    expected = [str(i) for i in range(1, 23)] + ["X", "Y"]
    seen = list(dict.fromkeys(chromosomes))
    assert seen == [c for c in expected if c in seen]
    chr1 = genes[genes["chromosome"] == "1"]
    assert chr1["start"].is_monotonic_increasing
    arms = chr1["cytoband"].fillna("").map(arm).tolist()
    first_q = arms.index("q")
    assert "p" not in arms[first_q:], "chr1p genes all come before chr1q genes"


def test_chromosome_layout_shape_and_report(demo_expression, chrom):
    q = chrom.quality
    assert chrom.shape == (1, 98, 98)  # 9,436 placed genes -> smallest square
    assert q["n_genes_placed"] + chrom.notes["n_dropped_no_position"] == demo_expression.n_genes
    assert q["max_genes_per_pixel"] == 1
    assert chrom.notes["dropped_examples"]


def test_1p19q_region_is_where_the_layout_says(demo_expression, chrom):
    """The regions name where chr1 and chr19 lie; their genes are there, and the 1p arm
    is darker in malignant cells than in normal oligodendrocytes (1p/19q co-deletion)."""
    regions = {r["name"]: r for r in chrom.regions}
    assert regions["chr1"]["first"] == 0 and "chr19" in regions
    pixels = chrom.placement_pixel
    cyto = demo_expression.genes["cytoband"].fillna("").to_numpy()
    for name, gene in (("chr1", "ARID1A"), ("chr19", "SMARCA4")):
        index = int(np.flatnonzero(chrom.symbols == gene)[0])
        pix = pixels[chrom.placement_gene == index][0]
        assert regions[name]["first"] <= pix <= regions[name]["last"]
    images = chrom.transform(demo_expression.values).reshape(demo_expression.n_samples, -1)
    malignant = np.char.startswith(demo_expression.labels.astype(str), "malignant")
    normal = demo_expression.labels == "Oligodendrocytes (non-malignant)"
    for arm_prefix in ("1p", "19q"):
        arm_genes = np.flatnonzero(np.char.startswith(cyto.astype(str), arm_prefix))
        assert arm_genes.size > 50
        arm_pixels = pixels[np.isin(chrom.placement_gene, arm_genes)]
        region = regions["chr" + arm_prefix[:-1]]
        assert np.all((arm_pixels >= region["first"]) & (arm_pixels <= region["last"]))
        # the co-deleted arm is dimmer in the tumour cells than in normal oligodendrocytes
        assert images[malignant][:, arm_pixels].mean() < images[normal][:, arm_pixels].mean()


def test_save_load_convert_is_bit_identical(tmp_path, demo_expression, chrom):
    images = chrom.transform(demo_expression.values)
    path = chrom.save(tmp_path / "chromosome.layout.json")
    loaded = load_layout(path)
    again = loaded.transform(demo_expression.values, demo_expression.gene_ids)
    assert again.dtype == np.float32
    assert np.array_equal(images, again)
    gz = chrom.save(tmp_path / "chromosome.layout.json.gz")
    assert np.array_equal(load_layout(gz).transform(demo_expression.values), images)


@pytest.mark.parametrize("extra_placements", [20, 0, -10])  # genes placed twice, each once, or some not at all
@pytest.mark.parametrize("log", ["yes", "no"])
@pytest.mark.parametrize("scale", ["zscore", "sample_max"])
def test_transform_matches_a_plain_loop(extra_placements, log, scale):
    """Several genes per pixel: the vectorised reduce equals a per-pixel loop, for every rule."""
    rng = np.random.default_rng(0)
    n_genes = 50
    values = rng.gamma(2, 10, size=(7, n_genes)).astype(np.float32)
    norm = Normalization(log=log, scale=scale).fit(values)
    placement_gene = np.concatenate([np.arange(n_genes), rng.integers(0, n_genes, max(0, extra_placements))])
    placement_gene = placement_gene[:n_genes + extra_placements] if extra_placements < 0 else placement_gene
    placement_pixel = rng.integers(0, 2 * 4 * 4, placement_gene.size)
    if scale == "sample_max":  # each sample divided by its largest placed gene, as a generator's fit sets it
        norm.use_sample_genes(placement_gene)
    expected_normed = norm.apply(values)
    for reduce in ("mean", "max", "sum"):
        layout = Layout("test", {}, 0, (2, 4, 4), [f"g{i}" for i in range(n_genes)],
                        placement_gene, placement_pixel, reduce, norm)
        images = layout.transform(values).reshape(7, -1)
        for pixel in range(32):
            genes = placement_gene[placement_pixel == pixel]
            if genes.size == 0:
                assert np.all(images[:, pixel] == 0)
                continue
            column = expected_normed[:, genes]
            want = {"mean": column.mean(1), "max": column.max(1), "sum": column.sum(1)}[reduce]
            np.testing.assert_allclose(images[:, pixel], want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("log", ["yes", "no"])
@pytest.mark.parametrize("reduce", ["mean", "sum"])
def test_compiled_scatter_equals_torch_scatter(monkeypatch, log, reduce):
    """Large CPU transforms use the compiled kernel: the same images, bit for bit, as torch's index_add_."""
    import rnaimg_core.transform as transform_module

    rng = np.random.default_rng(1)
    n_genes = 300
    values = rng.gamma(2, 10, size=(11, n_genes)).astype(np.float32)  # 11 rows: groups of 4 and a remainder
    values[3] = 0.0
    norm = Normalization(log=log, scale="zscore").fit(values)
    layout = Layout("test", {}, 0, (1, 6, 6), [f"g{i}" for i in range(n_genes)],
                    rng.permutation(n_genes), rng.integers(0, 30, n_genes), reduce, norm)  # 6 pixels empty
    plan = transform_module.plan_transform(layout, np.arange(n_genes), transform_module.choose_device("cpu"),
                                           n_genes, kernel=True)
    assert plan["direct"] and plan["kernel"] is not None  # the path under test is the kernel's
    monkeypatch.setattr(transform_module, "_scatter_kernel", lambda: None)
    by_torch = layout.transform(values, device="cpu")
    monkeypatch.undo()
    monkeypatch.setattr(transform_module, "_KERNEL_MIN_VALUES", 0)
    read_only = values.copy()
    read_only.flags.writeable = False
    for rows in (slice(None), slice(0, 1), slice(2, 9)):
        np.testing.assert_array_equal(layout.transform(values[rows], device="cpu"), by_torch[rows])
        np.testing.assert_array_equal(layout.transform(read_only[rows], device="cpu"), by_torch[rows])
    # and both equal the normalisation applied gene by gene, then averaged or summed per pixel
    normed = norm.apply(values)
    flat = by_torch.reshape(len(values), -1)
    for pixel in (0, 7, 29):
        genes = layout.placement_gene[layout.placement_pixel == pixel]
        want = normed[:, genes].mean(1) if reduce == "mean" else normed[:, genes].sum(1)
        np.testing.assert_allclose(flat[:, pixel], want, rtol=1e-5, atol=1e-5)
    assert np.all(flat[:, 30:] == 0)


def test_transform_aligns_columns_by_gene_id(demo_expression, chrom):
    order = np.random.default_rng(1).permutation(demo_expression.n_genes)
    shuffled = chrom.transform(demo_expression.values[:, order], demo_expression.gene_ids[order])
    assert np.array_equal(shuffled, chrom.transform(demo_expression.values))


def test_missing_genes_error_or_fill(demo_expression, chrom):
    keep = np.arange(100, demo_expression.n_genes)
    with pytest.raises(InputError, match="missing from the input"):
        chrom.transform(demo_expression.values[:, keep], demo_expression.gene_ids[keep])
    filled = chrom.transform(demo_expression.values[:, keep], demo_expression.gene_ids[keep], missing="fill")
    assert np.isfinite(filled).all()


def test_normalisation_is_fitted_on_training_samples_only(demo_expression):
    train = np.arange(0, demo_expression.n_samples, 2)
    layout = get_generator("deepmapper")().fit(demo_expression, train_index=train)
    logged = np.log2(demo_expression.values[train].astype(np.float32) + 1)
    np.testing.assert_allclose(layout.normalization.center_, logged.mean(0), rtol=1e-5, atol=1e-5)
    assert layout.fit_sample_ids == demo_expression.sample_ids[train].tolist()


def test_deepmapper_orders_and_channels(demo_expression):
    by_var = get_generator("deepmapper")(order="variance", channels=2).fit(demo_expression)
    assert by_var.shape[0] == 2
    assert by_var.quality["n_genes_placed"] == demo_expression.n_genes
    logged = np.log2(demo_expression.values + 1)
    first = by_var.placement_gene[np.argmin(by_var.placement_pixel)]
    assert first == int(np.argmax(logged.var(0)))


def test_generator_parameters_are_checked():
    with pytest.raises(InputError, match="has no parameter"):
        get_generator("chromosome")(colour="red")
    with pytest.raises(InputError, match="must be one of"):
        get_generator("chromosome")(reduce="median")
    with pytest.raises(InputError, match="Unknown generator"):
        get_generator("nope")


def test_sample_max_scaling_follows_the_placed_genes_only():
    """A bright gene the layout does not place must not dim the image; genes absent from the input
    (missing="fill") do not count either; a sample with nothing placed expressed stays all zero."""
    values = np.array([[1000.0, 3.0, 7.0, 1.0],   # gene 0 (not placed) is the largest
                       [0.0, 15.0, 1.0, 0.0],
                       [5.0, 0.0, 0.0, 0.0]], dtype=np.float32)  # nothing placed is expressed
    norm = Normalization(log="yes", scale="sample_max").fit(values).use_sample_genes([1, 2, 3])
    layout = Layout("test", {}, 0, (1, 2, 2), ["a", "b", "c", "d"], [1, 2, 3], [0, 1, 2], "mean", norm)
    images = layout.transform(values).reshape(3, -1)
    logged = np.log2(values[:, 1:] + 1)
    np.testing.assert_allclose(images[:2, :3], logged[:2] / logged[:2].max(1, keepdims=True), rtol=1e-6)
    assert images[:2].max(1).tolist() == [1.0, 1.0] and np.all(images[2] == 0)
    # gene c (the largest of sample 0) absent from the input: the maximum is taken over b and d
    filled = layout.transform(values[:, [0, 1, 3]], ["a", "b", "d"], missing="fill").reshape(3, -1)
    np.testing.assert_allclose(filled[0, [0, 2]], [2.0 / 2.0, 1.0 / 2.0], rtol=1e-6)
    with pytest.raises(InputError, match="non-negative"):
        Normalization(log="no", scale="sample_max").fit(values - 10)


def test_damaged_layout_file(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        load_layout(path)
    path.write_text('{"format": "something-else"}')
    with pytest.raises(InputError, match="not an rnaimg layout"):
        load_layout(path)


@pytest.mark.parametrize("change, message", [
    (lambda norm: norm.update(scale="per_sample"), "normalization.scale"),
    (lambda norm: norm.update(sample_genes=[0, 99999]), "normalization.sample_genes"),
    (lambda norm: norm.update(sample_genes=[1, 1]), "distinct gene indices"),
])
def test_damaged_sample_max_normalisation_is_refused(tmp_path, change, message):
    values = np.random.default_rng(0).gamma(2, 10, size=(5, 4)).astype(np.float32)
    norm = Normalization(scale="sample_max").fit(values).use_sample_genes([0, 1, 2])
    data = Layout("test", {}, 0, (1, 2, 2), ["a", "b", "c", "d"], [0, 1, 2], [0, 1, 2], "mean", norm).to_dict()
    change(data["normalization"])
    with pytest.raises(InputError, match=message):
        Layout.from_dict(data)
