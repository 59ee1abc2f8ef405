"""The CUDA paths agree with the CPU: transform, training, attribution (skipped without a CUDA GPU).

Run on a GPU machine by ``scripts/gpu_check.sh``. The transform does no matrix products, so its
images must match the CPU's to float32 rounding (1e-4); convolutions on Ampere and later GPUs use
TF32 by default in cuDNN, so network outputs and attributions are compared by closeness and
correlation, not bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse
import torch

from rnaimg_core.attribution import explain
from rnaimg_core.generators import fit_layout
from rnaimg_core.model import load_model, save_model, train_model

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

TOLERANCE = 1e-4

# every branch of Layout.transform: gather (one gene per pixel), scatter-add (mean/sum), segment max,
# counts-per-million depth, min-max scale, Lyu & Haque's per-sample maximum and their code's floor
LAYOUTS = {
    "chromosome (one gene per pixel)": ("chromosome", {}),
    "deepinsight mean (shared pixels)": ("deepinsight", {"method": "pca", "height": 40, "width": 40,
                                                         "assignment": "nearest", "seed": 0}),
    "deepinsight max": ("deepinsight", {"method": "pca", "height": 40, "width": 40, "assignment": "nearest",
                                        "reduce": "max", "seed": 0}),
    "deepinsight sum, cpm, minmax": ("deepinsight", {"method": "pca", "height": 40, "width": 40,
                                                     "assignment": "nearest", "reduce": "sum", "depth": "cpm",
                                                     "scale": "minmax", "seed": 0}),
    "chromosome lyu_haque_paper (sample_max)": ("chromosome", {"preset": "lyu_haque_paper"}),
    "chromosome lyu_haque_code (values <= 1 to 0, sample_max)": ("chromosome", {"preset": "lyu_haque_code"}),
}


@pytest.fixture(scope="module", params=list(LAYOUTS))
def demo_layout(request, demo_expression):
    generator, params = LAYOUTS[request.param]
    return fit_layout(demo_expression, generator, params, quality=False)


def test_transform_on_cuda_equals_cpu(demo_expression, demo_layout):
    values, genes = demo_expression.values, demo_expression.gene_ids
    on_cpu = demo_layout.transform(values, genes, device="cpu")
    on_cuda = demo_layout.transform(values, genes, device="cuda")
    assert on_cuda.shape == on_cpu.shape and on_cuda.dtype == np.float32
    assert np.isfinite(on_cuda).all()
    np.testing.assert_allclose(on_cuda, on_cpu, rtol=0, atol=TOLERANCE)


def test_sparse_and_missing_genes_on_cuda_equal_cpu(demo_expression, demo_layout):
    keep = np.arange(demo_expression.n_genes) % 10 != 0  # every tenth gene absent: filled with the training centre
    values = scipy.sparse.csr_matrix(demo_expression.values[:, keep])
    genes = demo_expression.gene_ids[keep]
    on_cpu = demo_layout.transform(values, genes, missing="fill", device="cpu")
    on_cuda = demo_layout.transform(values, genes, missing="fill", device="cuda")
    np.testing.assert_allclose(on_cuda, on_cpu, rtol=0, atol=TOLERANCE)


@pytest.fixture(scope="module")
def cuda_result(planted_images):
    return train_model(planted_images, device="cuda", seed=0, epochs=12, patience=12, n_models=2)


def test_training_on_cuda_learns_and_returns_a_cpu_model(planted_images, cuda_result):
    summary = cuda_result.summary()
    assert summary["device"].startswith("cuda")
    assert summary["balanced_accuracy"] >= 0.8  # three planted classes: chance is 1/3
    assert {p.device.type for p in cuda_result.model.network.parameters()} == {"cpu"}
    probabilities = cuda_result.model.predict_proba(planted_images.images)  # on the CPU
    assert probabilities.shape == (planted_images.n_samples, 3)
    np.testing.assert_allclose(probabilities.sum(1), 1.0, atol=1e-5)
    on_cuda = cuda_result.model.predict_proba(planted_images.images, device="cuda")
    np.testing.assert_allclose(on_cuda, probabilities, atol=5e-3)


def test_cuda_trained_model_saves_and_loads_on_the_cpu(tmp_path, planted_images, cuda_result):
    loaded = load_model(save_model(cuda_result, tmp_path / "model"))
    assert {p.device.type for p in loaded.network.parameters()} == {"cpu"}
    reference = cuda_result.model.network.state_dict()
    state = loaded.network.state_dict()
    assert state.keys() == reference.keys()
    for name, tensor in reference.items():
        assert torch.equal(state[name], tensor), name
    images = planted_images.images
    np.testing.assert_array_equal(loaded.predict(images), cuda_result.model.predict(images))


def test_same_seed_same_run_on_cuda(planted_images):
    # the same samples, batches and initial weights; CUDA's pooling backward adds with atomics, so the
    # losses may differ in the last bits (the CPU run is bit for bit, tests/test_model.py)
    first = train_model(planted_images, device="cuda", seed=3, epochs=3, baseline=False, n_models=1)
    second = train_model(planted_images, device="cuda", seed=3, epochs=3, baseline=False, n_models=1)
    for part in ("train", "val", "test"):
        np.testing.assert_array_equal(first.split[part], second.split[part])
    np.testing.assert_allclose([r["train_loss"] for r in first.history],
                               [r["train_loss"] for r in second.history], rtol=1e-3)


def test_attribution_on_cuda_matches_cpu(planted_images, cuda_result):
    model = cuda_result.model
    on_cuda = explain(model, planted_images, method="integrated_gradients", device="cuda")
    assert {p.device.type for p in model.network.parameters()} == {"cpu"}  # moved back after explaining
    on_cpu = explain(model, planted_images, method="integrated_gradients", device="cpu")
    np.testing.assert_array_equal(on_cuda.sample_ids, on_cpu.sample_ids)
    np.testing.assert_array_equal(on_cuda.predicted, on_cpu.predicted)
    assert np.isfinite(on_cuda.attributions).all()
    correlation = np.corrcoef(on_cuda.attributions.ravel(), on_cpu.attributions.ravel())[0, 1]
    assert correlation > 0.99
    scale = np.abs(on_cpu.attributions).max()
    np.testing.assert_allclose(on_cuda.attributions, on_cpu.attributions, rtol=0, atol=0.02 * scale)
    for name in on_cpu.class_pixel_maps:  # each class's strongest pixel on CUDA is among the CPU's top three
        top_cpu = np.argsort(on_cpu.class_pixel_maps[name].ravel())[-3:]
        assert np.argmax(on_cuda.class_pixel_maps[name]) in top_cpu, name
