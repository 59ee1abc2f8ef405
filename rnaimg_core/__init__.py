"""rnaimg: turn RNA-seq expression profiles into images for convolutional networks.

The library behind the dashboard and the ``rnaimg`` command line::

    from rnaimg_core import load_demo, get_generator
    expr = load_demo()
    layout = get_generator("chromosome")().fit(expr)
    images = layout.transform(expr.values)        # (n, C, H, W) float32
    layout.save("chromosome.layout.json")
"""

from __future__ import annotations

__version__ = "0.1.0"

from rnaimg_core.errors import InputError
from rnaimg_core.expression import Expression, load_demo, read_expression, load_synthetic
from rnaimg_core.layout import Layout, load_layout
from rnaimg_core.generators import get_generator, list_generators, fit_layout

__all__ = [
    "__version__",
    "InputError",
    "Expression",
    "load_demo",
    "load_synthetic",
    "read_expression",
    "Layout",
    "load_layout",
    "get_generator",
    "list_generators",
    "fit_layout",
]
