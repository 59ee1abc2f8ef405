"""Stacked layouts: several generators fitted on the same samples, one after the other as channels.

From the command line: ``--set layers=chromosome,deepinsight``. Fitted layouts
are stacked after the fact with :func:`rnaimg_core.compose.stack_layouts`.
"""

from __future__ import annotations

import numpy as np

from rnaimg_core.compose import stack_geometry
from rnaimg_core.errors import InputError
from rnaimg_core.generators._grid import ASSIGNMENTS, size_params
from rnaimg_core.generators.base import FitData, Generator, Param, Placement


class StackGenerator(Generator):
    """Several layouts fitted on the same samples, stacked as the channels of one image.

    Parameters are keyword arguments, checked on construction and kept in ``params``:
    ``layers`` (generator names, comma-separated), ``height``, ``width``, ``assignment``,
    and the common ``log``, ``depth``, ``scale``, ``reduce``, ``seed``.
    """

    name = "stack"
    title = "Stacked layouts (multi-channel)"
    description = "Several layouts fitted on the same samples, one after the other as image channels."
    reference = "Multi-channel inputs as in RGB images: each channel is one view of the same sample."
    guide = """
**How it decides a gene's pixel.** Each generator named in *layers* places the genes its own way
(for example by chromosome and by co-expression); the layouts are stacked as channels of one image,
so every gene appears once per layer. Smaller layers are padded with empty pixels.

**What to tune.** *layers* (comma-separated generator names, each with its default settings);
*height*/*width* and *assignment*, passed to every layer that has them, so all channels share a size.
"""
    parameters = (
        Param("layers", "chromosome,deepinsight", "Comma-separated generator names, stacked in this order."),
        *size_params(None, height="Image height passed to every layer (0 = each layer's automatic size).",
                     width="Image width passed to every layer (0 = automatic)."),
        Param("assignment", "nearest", "Collision rule passed to every layer that has one.",
              choices=ASSIGNMENTS),
    )

    def place(self, data: FitData) -> Placement:
        from rnaimg_core.generators import get_generator  # noqa: PLC0415 (the registry imports this module)

        names = [name.strip() for name in self.params["layers"].split(",") if name.strip()]
        if not names:
            raise InputError("layers must name at least one generator, e.g. chromosome,deepinsight.")
        placements = []
        for i, name in enumerate(names):
            if name == self.name:
                raise InputError("A stack cannot contain another stack.")
            cls = get_generator(name)
            spec = cls.parameter_spec()
            shared = {key: self.params[key] for key in ("height", "width", "assignment", "seed") if key in spec}
            data.progress(i / len(names), f"layer {name}")
            placements.append(cls(**shared).place(data))
        shape, pixel, regions = stack_geometry([pl.shape for pl in placements], [pl.pixel for pl in placements],
                                               names)
        notes = {"layers": names, "layer_notes": {name: pl.notes for name, pl in zip(names, placements)}}
        genes = np.concatenate([np.asarray(pl.gene, dtype=np.int64) for pl in placements])
        return Placement(shape=shape, gene=genes, pixel=pixel, notes=notes, regions=regions)
