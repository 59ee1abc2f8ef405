"""The public names of ``rnaimg_core`` and their modules: type checkers read them here, and
``lazy_loader.attach_stub`` (``__init__.py``) loads each from its module on first use."""

from ._version import __version__
from .attribution import explain, list_methods
from .errors import InputError
from .expression import Expression, as_expression, load_demo, load_synthetic
from .generators import fit_layout, get_generator, list_generators
from .images import ImageSet, read_images, write_images
from .layout import Layout, load_layout
from .model import TrainSettings, cross_validate, load_model, save_model, train_model
from .readers import read_expression

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
