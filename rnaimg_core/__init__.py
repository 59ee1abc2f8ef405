"""rnaimg: turn RNA-seq expression profiles into images for convolutional networks.

The library behind the dashboard and the ``rnaimg`` command line::

    from rnaimg_core import load_demo, fit_layout, ImageSet, train_model, explain
    expr = load_demo()                                   # or read_expression(path), Expression.from_anndata(adata)
    layout = fit_layout(expr, "chromosome")              # a Layout: gene -> pixel, normalisation
    images = ImageSet.from_expression(layout, expr)      # images (n, C, H, W) float32 with ids, labels, split
    result = train_model(images)                         # TrainSettings() defaults; CNN beside a baseline
    explanation = explain(result.model, images)          # per-class pixel and gene attributions
    layout.save("chromosome.layout.json")

Reading: :func:`read_expression`, :class:`Expression` (``from_anndata`` / ``to_anndata``).
Layouts: :func:`get_generator`, :func:`list_generators`, :func:`fit_layout`, :class:`Layout`.
Images: :class:`ImageSet`, :func:`read_images`, :func:`write_images`.
Training: :class:`TrainSettings`, :func:`train_model`, :func:`cross_validate`, :func:`save_model`, :func:`load_model`.
Explaining: :func:`explain`, :func:`list_methods`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rnaimg_core._lazy import lazy_names
from rnaimg_core._version import __version__
from rnaimg_core.errors import InputError

# Every public name, by the module that defines it. They load on first use (PEP 562): ``import rnaimg_core``
# or ``rnaimg layout`` does not pay for what it does not use (scikit-learn and captum took 2 s of each start
# of the command line, a Dask worker or the dashboard's server).
_HOMES = {
    "explain": "attribution", "list_methods": "attribution",
    "Expression": "expression", "as_expression": "expression", "load_demo": "expression",
    "load_synthetic": "expression",
    "fit_layout": "generators", "get_generator": "generators", "list_generators": "generators",
    "ImageSet": "images", "read_images": "images", "write_images": "images",
    "Layout": "layout", "load_layout": "layout",
    "TrainSettings": "model", "cross_validate": "model", "load_model": "model", "save_model": "model",
    "train_model": "model",
    "read_expression": "readers",
}

if TYPE_CHECKING:
    from rnaimg_core.attribution import explain, list_methods
    from rnaimg_core.expression import Expression, as_expression, load_demo, load_synthetic
    from rnaimg_core.generators import fit_layout, get_generator, list_generators
    from rnaimg_core.images import ImageSet, read_images, write_images
    from rnaimg_core.layout import Layout, load_layout
    from rnaimg_core.model import TrainSettings, cross_validate, load_model, save_model, train_model
    from rnaimg_core.readers import read_expression


__getattr__, __dir__ = lazy_names(globals(), _HOMES)

__all__ = [
    "__version__",
    "InputError",
    "Expression",
    "as_expression",
    "load_demo",
    "load_synthetic",
    "read_expression",
    "get_generator",
    "list_generators",
    "fit_layout",
    "Layout",
    "load_layout",
    "ImageSet",
    "read_images",
    "write_images",
    "TrainSettings",
    "train_model",
    "cross_validate",
    "save_model",
    "load_model",
    "explain",
    "list_methods",
]
