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

import lazy_loader

# Every public name, by the module that defines it, is in ``__init__.pyi`` (the type stub that type checkers and
# editors read). Each loads from its module on first use (lazy_loader, SPEC 1): ``import rnaimg_core`` or
# ``rnaimg layout`` does not pay for what it does not use (scikit-learn and captum took 2 s of each start of the
# command line, a Dask worker or the dashboard's server).
__getattr__, __dir__, __all__ = lazy_loader.attach_stub(__name__, __file__)
