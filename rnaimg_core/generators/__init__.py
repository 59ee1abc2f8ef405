"""The image generators, by name.

``get_generator(name)`` returns the class; ``Generator(**params).fit(expression)``
returns a :class:`~rnaimg_core.layout.Layout`. :func:`fit_layout` does both
from strings, as the command line does.
"""

from __future__ import annotations

from rnaimg_core.errors import InputError
from rnaimg_core.generators.base import COMMON_PARAMS, FitData, Generator, Param, Placement
from rnaimg_core.generators.chromosome import ChromosomeGenerator
from rnaimg_core.generators.deepinsight import DeepInsightGenerator
from rnaimg_core.generators.deepmapper import DeepMapperGenerator
from rnaimg_core.generators.gene_ontology import GeneOntologyGenerator
from rnaimg_core.generators.random import RandomGenerator
from rnaimg_core.generators.som import SOMGenerator
from rnaimg_core.generators.stack import StackGenerator

# Registry order is the order of the dashboard's list and of `rnaimg generators`.
REGISTRY: dict[str, type[Generator]] = {
    cls.name: cls
    for cls in (ChromosomeGenerator, DeepMapperGenerator, SOMGenerator, GeneOntologyGenerator, DeepInsightGenerator,
                RandomGenerator, StackGenerator)
}


def get_generator(name: str) -> type[Generator]:
    """The generator class registered as ``name``."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise InputError(f"Unknown generator {name!r}; choose one of {', '.join(REGISTRY)}.") from None


def list_generators() -> list[dict]:
    """Name, title, description, reference and parameters of every generator."""
    return [cls.describe() for cls in REGISTRY.values()]


def fit_layout(expression, name: str, params: dict | None = None, **fit_kwargs):
    """Fit generator ``name`` with typed ``params`` on ``expression``; returns a Layout."""
    return get_generator(name)(**(params or {})).fit(expression, **fit_kwargs)


__all__ = ["COMMON_PARAMS", "FitData", "Generator", "Param", "Placement", "REGISTRY",
           "get_generator", "list_generators", "fit_layout"]
