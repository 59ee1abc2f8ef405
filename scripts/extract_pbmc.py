"""Build the second real labelled set of the training benchmark from the scanpy 1.11.5 wheel.

scanpy ships ``scanpy/datasets/10x_pbmc68k_reduced.h5ad``: 700 peripheral blood
mononuclear cells (10x Genomics PBMC 68k, Zheng et al., Nature Communications
2017) x 765 highly variable genes, with a cell type per cell in
``obs["bulk_labels"]`` (10 types, 8 to 240 cells each). This script downloads the
wheel with pip (no dependencies), reads the ``.h5ad`` once with anndata and
writes the log-normalised values of ``adata.raw`` (non-negative; ``adata.X`` is
z-scored and clipped) with sample ids, gene symbols and labels to one small
reproducible ``.npz`` (about 0.3 MB) that the benchmarks read without scanpy.

Usage::

    python scripts/extract_pbmc.py                    # download, then write benchmarks/data/pbmc68k_reduced.npz
    python scripts/extract_pbmc.py --wheel PATH.whl   # use a wheel already here

scanpy is BSD-3 licensed; the data are 10x Genomics' public PBMC 68k set.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from scripts._wheels import download_wheel, extract_checked, write_npz  # noqa: E402

SCANPY_VERSION = "1.11.5"
H5AD_MEMBER = "scanpy/datasets/10x_pbmc68k_reduced.h5ad"
H5AD_SHA256 = "e71d41e737c941559b7c57c9243bdb3d2c889c2adfdf00e3422ac6b46783676f"
DEFAULT_OUT = REPO_ROOT / "benchmarks" / "data" / "pbmc68k_reduced.npz"


def read_arrays(wheel: Path, scratch: Path) -> dict[str, np.ndarray]:
    """Unzip the ``.h5ad`` from the wheel, check its digest and read it into plain arrays."""
    import anndata  # only this rebuild script needs anndata
    import scipy.sparse

    adata = anndata.read_h5ad(extract_checked(wheel, H5AD_MEMBER, H5AD_SHA256, scratch))
    matrix = adata.raw.X
    values = matrix.toarray() if scipy.sparse.issparse(matrix) else np.asarray(matrix)
    return {"values": np.ascontiguousarray(values, dtype=np.float32),
            "sample_ids": np.asarray(adata.obs_names, dtype=str),
            "gene_ids": np.asarray(adata.raw.var_names, dtype=str),
            "labels": np.asarray(adata.obs["bulk_labels"].astype(str), dtype=str)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wheel", type=Path, help="a scanpy wheel already downloaded")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel if args.wheel is not None else download_wheel("scanpy", SCANPY_VERSION, Path(tmp))
        arrays = read_arrays(wheel, Path(tmp))
    values = arrays["values"]
    if values.shape != (700, 765) or values.min() < 0 or not np.isfinite(values).all():
        raise RuntimeError(f"unexpected values: shape {values.shape}, min {values.min()}")
    write_npz(args.out, arrays)
    counts = Counter(arrays["labels"].tolist())
    print(f"wrote {args.out}: {values.shape}, max {values.max():.2f}; classes: "
          + ", ".join(f"{k} ({v})" for k, v in counts.most_common()))


if __name__ == "__main__":
    main()
