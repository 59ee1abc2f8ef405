"""The shipped demo data set: single cells of four human oligodendrogliomas.

The arrays come from ``data/demo/oligodendroglioma.npz``, built by
``scripts/extract_demo.py``; ``data/demo/README.md`` gives the provenance,
licence and value scale.
"""

from __future__ import annotations

import functools
from importlib import resources

import numpy as np

DEMO_NAME = "Oligodendroglioma (Tirosh et al. 2016, via infercnvpy)"

DEMO_DESCRIPTION = (
    "184 single cells from four human oligodendrogliomas (Tirosh et al., Nature 2016), "
    "profiled by full-length single-cell RNA-seq and measured on 9,450 genes. Each "
    "malignant cell is labelled by its patient tumour (malignant_93, malignant_97, "
    "malignant_MGH36, malignant_MGH53); normal oligodendrocytes and microglia/macrophages "
    "from the same tumours form two further classes. Oligodendrogliomas are defined by "
    "the co-deletion of chromosome arms 1p and 19q, and each tumour carries its own "
    "further copy-number gains and losses, so the tumours differ in whole "
    "chromosome-arm blocks of expression: a layout that orders genes along the genome "
    "should make these blocks visible. Values are TPM-like (each cell sums to about "
    "100,000); rnaimg uses log2(x + 1)."
)

DEMO_KEYS = ("values", "sample_ids", "gene_ids", "labels")
DEMO_SHAPE = (184, 9450)
DEMO_CLASS_COUNTS = {
    "malignant_93": 40,
    "malignant_97": 35,
    "malignant_MGH53": 34,
    "malignant_MGH36": 33,
    "Oligodendrocytes (non-malignant)": 23,
    "Microglia/Macrophage": 19,
}

_DEMO_FILE = "oligodendroglioma.npz"


@functools.lru_cache(maxsize=1)
def _load_cached() -> tuple[np.ndarray, ...]:
    """Read the archive once; the arrays are made read-only before caching."""
    source = resources.files("rnaimg_core").joinpath("data", "demo", _DEMO_FILE)
    with resources.as_file(source) as path, np.load(path, allow_pickle=False) as archive:
        arrays = tuple(np.array(archive[key]) for key in DEMO_KEYS)
    for array in arrays:
        array.flags.writeable = False
    return arrays


def load_demo_arrays() -> dict[str, np.ndarray]:
    """Load the oligodendroglioma demo as plain arrays.

    The file is read once per process. Every call returns a new dict of
    read-only arrays, so a caller cannot change what later callers get; use
    ``array.copy()`` for a writable copy.

    Returns
    -------
    dict of str to numpy.ndarray
        ``values``
            float32 array of shape ``(184, 9450)``, samples x genes, TPM-like
            (rows sum to about 100,000; use ``log2(x + 1)``).
        ``sample_ids``
            unicode array of shape ``(184,)``, cell names.
        ``gene_ids``
            unicode array of shape ``(9450,)``, gene symbols.
        ``labels``
            unicode array of shape ``(184,)``, one of six cell classes.
    """
    return dict(zip(DEMO_KEYS, _load_cached(), strict=True))
