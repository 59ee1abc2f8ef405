"""Attribution: which pixels, and so which genes, drive a class.

Captum methods are chosen by name from one table, :data:`METHODS` (name ->
factory building the captum explainer, default options, description), behind
one function, :func:`attribute`, which always returns an array shaped like the
images, ``(n, C, H, W)``. :meth:`Layout.pixel_to_gene_scores
<rnaimg_core.layout.Layout.pixel_to_gene_scores>` carries pixel scores back to
genes, written once for every method. :func:`explain` does both for a class, one
sample or a set of samples and summarises per class;
:meth:`Explanation.class_gene_table` and :meth:`Explanation.sample_gene_table`
give the top-genes table (symbol, Entrez id, position, GO terms, score, rank).

Reading the scores
------------------
* A gene gets the score of its pixel. Where several genes share a pixel they
  all get that pixel's full score, and the table says so (``n_genes_on_pixel``,
  ``shares_pixel_with``): their contributions cannot be told apart.
* A gene placed on several pixels (stacked layouts) gets the sum over them.
* The default reference input (Integrated Gradients, DeepLift) is an all-zero
  image, which after the layout's per-gene z-score is the average training
  sample: scores say how far a gene's value *above or below its average*
  pushes the sample toward the class.
* The class score is the mean over samples of that class the model classifies
  correctly, attributed to that class.

What to trust
-------------
* :func:`explain` explains the **held-out** samples by default when the images
  carry any (attributions on training samples show what the network memorised);
  ``Explanation.notes`` says which samples were used.
* Given several models (the fold or seed models of one recipe), it averages their
  attributions and reports each gene's **rank stability**: the fraction of models
  in which the gene is among a class's top :data:`STABILITY_TOP` genes. One
  model's top genes move between training seeds; genes that stay are the finding.
* Notes warn when a class table rests on fewer than :data:`MIN_CLASS_SAMPLES`
  samples, when the model is at chance level for a class, and when a map is all
  zero (a method that cannot see this network: try another).
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from rnaimg_core import annotation
from rnaimg_core.device import choose_device, torch_threads
from rnaimg_core.errors import InputError
from rnaimg_core.images import ImageSet
from rnaimg_core.layout import Layout
from rnaimg_core.model import TrainedModel

Run = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""A built method: ``run(inputs, targets) -> attributions`` for one batch."""


@dataclass(frozen=True)
class Method:
    """One attribution method of the table.

    Attributes
    ----------
    title : name to show
    help : one-paragraph description
    options : default options (the keyword options :func:`attribute` accepts for it)
    factory : ``factory(network, options) -> run``: builds the captum explainer and
        returns ``run(inputs, targets)`` giving attributions shaped like ``inputs``
    """

    title: str
    help: str
    options: dict
    factory: Callable[[nn.Module, dict], Run]


def _integrated_gradients(network: nn.Module, options: dict) -> Run:
    from captum.attr import IntegratedGradients  # noqa: PLC0415 (lazy: captum loads on first use (attribution only))

    explainer = IntegratedGradients(network)
    return lambda x, t: explainer.attribute(x, target=t, n_steps=int(options["n_steps"]),
                                            method=options["integration"],
                                            internal_batch_size=int(options["internal_batch_size"]))


def _saliency(network: nn.Module, options: dict) -> Run:
    from captum.attr import Saliency  # noqa: PLC0415 (lazy: captum loads on first use (attribution only))

    explainer = Saliency(network)
    return lambda x, t: explainer.attribute(x, target=t, abs=bool(options["abs"]))


def _guided_gradcam(network: nn.Module, options: dict) -> Run:
    from captum.attr import GuidedGradCam  # noqa: PLC0415 (lazy: captum loads on first use (attribution only))

    explainer = GuidedGradCam(network, _layer(network, options["layer"]))
    return lambda x, t: explainer.attribute(x, target=t, interpolate_mode=options["interpolate_mode"])


def _occlusion(network: nn.Module, options: dict) -> Run:
    from captum.attr import Occlusion  # noqa: PLC0415 (lazy: captum loads on first use (attribution only))

    explainer = Occlusion(network)
    window, stride = int(options["window"]), int(options["stride"])
    return lambda x, t: explainer.attribute(x, target=t, sliding_window_shapes=(1, window, window),
                                            strides=(1, stride, stride), baselines=0.0,
                                            perturbations_per_eval=int(options["perturbations_per_eval"]))


def _deeplift(network: nn.Module, options: dict) -> Run:
    from captum.attr import DeepLift  # noqa: PLC0415 (lazy: captum loads on first use (attribution only))

    explainer = DeepLift(network, multiply_by_inputs=bool(options["multiply_by_inputs"]))
    return lambda x, t: explainer.attribute(x, target=t, baselines=torch.zeros_like(x))


METHODS: dict[str, Method] = {
    "integrated_gradients": Method(
        "Integrated Gradients",
        "Path integral of gradients from an all-average (zero) image to the sample; signed, "
        "and the scores of a sample add up to its logit change.",
        {"n_steps": 16, "integration": "gausslegendre", "internal_batch_size": 256}, _integrated_gradients),
    "saliency": Method(
        "Saliency",
        "Gradient of the class score with respect to each pixel (absolute by default); the fastest.",
        {"abs": True}, _saliency),
    "guided_gradcam": Method(
        "Guided Grad-CAM",
        "Grad-CAM on a convolution layer times guided backpropagation (used by Lyu & Haque 2018).",
        {"layer": "last_conv", "interpolate_mode": "nearest"}, _guided_gradcam),
    "occlusion": Method(
        "Occlusion",
        "Score drop when a window of pixels is set to the average (zero); slow but model-agnostic.",
        {"window": 8, "stride": 8, "perturbations_per_eval": 64}, _occlusion),
    "deeplift": Method(
        "DeepLift",
        "Contribution of each pixel relative to the all-average (zero) image, by DeepLift's rescale rule.",
        {"multiply_by_inputs": True}, _deeplift),
}
ALIASES = {"ig": "integrated_gradients", "integrated-gradients": "integrated_gradients",
           "gradcam": "guided_gradcam", "guided-gradcam": "guided_gradcam", "grad-cam": "guided_gradcam",
           "dl": "deeplift"}
METHOD_NAMES = (*METHODS, *ALIASES)  # every name :func:`resolve_method` accepts

ProgressFn = Callable[[int, int], None]
STABILITY_TOP = 20      # rank stability: how often a gene is among a class's top 20 across models
MIN_CLASS_SAMPLES = 5   # fewer samples behind a class table earns a warning


def list_methods() -> list[dict]:
    """Name, title, help and default options of every attribution method."""
    return [{"name": name, "title": spec.title, "help": spec.help, "options": dict(spec.options)}
            for name, spec in METHODS.items()]


def resolve_method(method: str) -> str:
    """The canonical method name for a name or alias."""
    name = str(method).strip().lower().replace(" ", "_")
    name = ALIASES.get(name, name)
    if name not in METHODS:
        raise InputError(f"Unknown attribution method {method!r}; choose one of {', '.join(METHODS)}.")
    return name


def _network(model: TrainedModel | nn.Module) -> nn.Module:
    return model.network if isinstance(model, TrainedModel) else model


def _targets(model: TrainedModel | nn.Module, target, n: int) -> np.ndarray:
    """Target class index per sample from an int, class name, or per-sample sequence."""
    names = list(model.class_names) if isinstance(model, TrainedModel) else None
    values = np.atleast_1d(np.asarray(target))
    if values.size == 1:
        values = np.repeat(values, n)
    if values.size != n:
        raise InputError(f"Give one target for all samples or one per sample ({n}), not {values.size}.")
    if values.dtype.kind in "US":
        if names is None:
            raise InputError("Class names as targets need a TrainedModel (it knows the class names).")
        lookup = {name: i for i, name in enumerate(names)}
        unknown = sorted(set(values.tolist()) - set(lookup))
        if unknown:
            raise InputError(f"Unknown class(es) {', '.join(unknown)}; the model knows {', '.join(names)}.")
        return np.array([lookup[v] for v in values.tolist()], dtype=np.int64)
    return values.astype(np.int64)


def attribute(
    model: TrainedModel | nn.Module,
    images: np.ndarray,
    target: int | str | Sequence,
    method: str = "integrated_gradients",
    *,
    batch_size: int = 64,
    device: str = "auto",
    progress: ProgressFn | None = None,
    **options,
) -> np.ndarray:
    """Pixel attributions for a target class, by a captum method chosen by name.

    Parameters
    ----------
    model : TrainedModel (or its network)
    images : ndarray, shape (n, C, H, W), float32
    target : class index or class name for all samples, or one per sample
    method : one of :data:`METHODS` (``integrated_gradients``, ``saliency``,
        ``guided_gradcam``, ``occlusion``, ``deeplift``) or an alias (``ig``, ``gradcam``)
    batch_size : samples per captum call
    device : ``"auto"`` (CUDA, then MPS, then CPU), ``"cuda"``, ``"mps"`` or ``"cpu"``
    progress : optional callback ``(samples_done, n_samples)``
    **options : method options (see :func:`list_methods`): ``n_steps``, ``integration``
        (captum's ``method``: ``gausslegendre``, ``riemann_trapezoid``, ...),
        ``internal_batch_size`` (Integrated Gradients); ``abs`` (Saliency); ``layer``
        (a module name of the network or ``"last_conv"``), ``interpolate_mode``
        (Guided Grad-CAM); ``window``, ``stride``, ``perturbations_per_eval``
        (Occlusion); ``multiply_by_inputs`` (DeepLift)

    Returns
    -------
    ndarray, shape (n, C, H, W), float32
    """
    name = resolve_method(method)
    spec = METHODS[name]
    unknown = sorted(set(options) - set(spec.options))
    if unknown:
        raise InputError(f"{spec.title} has no option {', '.join(unknown)}; "
                         f"it takes {', '.join(spec.options) or 'none'}.")
    images = np.ascontiguousarray(images, dtype=np.float32)
    if images.ndim != 4:
        raise InputError(f"images must have shape (n, C, H, W), got {images.shape}.")
    n = images.shape[0]
    targets = _targets(model, target, n)
    network = _network(model)
    original_device = next(network.parameters()).device
    dev = choose_device(device)
    network.eval().to(dev)
    out = np.empty_like(images)
    try:
        run = spec.factory(network, {**spec.options, **options})
        with warnings.catch_warnings(), torch_threads():  # the package's CPU-threads default (device.py)
            # captum warns on every call that it hooks the ReLUs; the hooks are removed afterwards
            warnings.filterwarnings("ignore", message=".*hooks.*", category=UserWarning)
            for start in range(0, n, max(1, int(batch_size))):
                stop = min(n, start + max(1, int(batch_size)))
                inputs = torch.as_tensor(images[start:stop], device=dev).requires_grad_(True)
                batch_targets = torch.as_tensor(targets[start:stop], device=dev)
                out[start:stop] = run(inputs, batch_targets).detach().cpu().numpy()
                if progress is not None:
                    progress(stop, n)
    finally:
        network.to(original_device)
    return out


def _layer(network: nn.Module, layer: str | nn.Module) -> nn.Module:
    if isinstance(layer, nn.Module):
        return layer
    if layer == "last_conv":
        convs = [m for m in network.modules() if isinstance(m, nn.Conv2d)]
        if not convs:
            raise InputError("Guided Grad-CAM needs a convolution layer; the network has none.")
        return convs[-1]
    modules = dict(network.named_modules())
    if layer not in modules:
        raise InputError(f"The network has no layer {layer!r}; layers: {', '.join(k for k in modules if k)}.")
    return modules[layer]


# ---------------------------------------------------------------- pixels -> genes

def gene_pixel_table(layout: Layout, genes: np.ndarray | None = None, *, max_shared: int = 5) -> pd.DataFrame:
    """Where each gene sits and which genes share its pixel.

    Parameters
    ----------
    layout : Layout
    genes : gene indices to describe (default: all placed genes)
    max_shared : list at most this many sharing genes by symbol, then ``(+k more)``

    Returns
    -------
    DataFrame indexed by gene index: channel, row, col (first placement),
    n_pixels, n_genes_on_pixel (the most on any of its pixels), shares_pixel_with
    """
    if genes is None:
        genes = layout.placed_genes()
    genes = np.asarray(genes, dtype=np.int64)
    order = np.argsort(layout.placement_gene, kind="stable")
    first = np.full(layout.n_genes, -1, dtype=np.int64)
    first[layout.placement_gene[order[::-1]]] = layout.placement_pixel[order[::-1]]
    per_pixel = np.bincount(layout.placement_pixel, minlength=layout.n_pixels)
    crowd = np.zeros(layout.n_genes, dtype=np.int64)
    np.maximum.at(crowd, layout.placement_gene, per_pixel[layout.placement_pixel])
    n_pixels = np.bincount(layout.placement_gene, minlength=layout.n_genes)
    names = layout.display_names
    pixel = first[genes]
    channel, row, col = layout.coordinates(np.maximum(pixel, 0))
    shared = []
    crowded = set(np.flatnonzero(crowd > 1).tolist())
    for gene in genes.tolist():
        if gene not in crowded:
            shared.append("")
            continue
        pixels = layout.placement_pixel[layout.placement_gene == gene]
        others = np.unique(layout.placement_gene[np.isin(layout.placement_pixel, pixels)])
        others = others[others != gene]
        extra = f" (+{others.size - max_shared} more)" if others.size > max_shared else ""
        shared.append(", ".join(names[others[:max_shared]].tolist()) + extra)
    placed = pixel >= 0
    return pd.DataFrame({
        "channel": np.where(placed, channel, -1), "row": np.where(placed, row, -1),
        "col": np.where(placed, col, -1), "n_pixels": n_pixels[genes],
        "n_genes_on_pixel": crowd[genes], "shares_pixel_with": shared,
    }, index=pd.Index(genes, name="gene_index"))


def top_go_terms(entrez_ids: Sequence[int], n_terms: int = 3) -> pd.Series:
    """A few GO term names per gene, ``"; "``-joined.

    Biological process terms come first, then molecular function, then cellular
    component; within each, the most specific terms (fewest annotated genes) first.

    Returns
    -------
    Series indexed by Entrez id (genes without annotation get ``""``)
    """
    wanted = pd.Index(np.asarray(entrez_ids, dtype=np.int64)).unique()
    pairs = annotation.go_annotations()
    size = pairs["go_id"].value_counts()
    chosen = pairs[pairs["entrez_id"].isin(wanted)].merge(annotation.go_terms()[["go_id", "name"]], on="go_id")
    if chosen.empty:
        return pd.Series("", index=wanted, dtype=object)
    chosen = chosen.assign(ontology_rank=chosen["ontology"].map({"BP": 0, "MF": 1, "CC": 2}).fillna(3),
                           n_genes=chosen["go_id"].map(size))
    chosen = chosen.sort_values(["entrez_id", "ontology_rank", "n_genes", "name"])
    joined = chosen.groupby("entrez_id", sort=False).head(n_terms).groupby("entrez_id")["name"].agg("; ".join)
    return joined.reindex(wanted).fillna("")


# ---------------------------------------------------------------- explanation

@dataclass
class Explanation:
    """Attributions for an image set, summarised per class and per gene.

    Attributes
    ----------
    method : the attribution method used
    options : its options
    sample_ids, labels, predicted : per explained sample (labels may be None)
    targets : class name each sample's attribution is for (its label, or the
        prediction when unlabelled)
    attributions : ndarray, shape (n, C, H, W), float32, per sample
    class_pixel_maps : dict class -> (C, H, W) mean attribution over its correctly
        classified samples
    class_samples : dict class -> number of samples averaged (and on what basis)
    layout : the layout, to map pixels to genes
    class_names : the model's classes
    seconds : attribution wall time
    notes : list of str: which samples were explained, and warnings (classes on few samples,
        at chance, all-zero maps, no correctly classified sample)
    n_models : number of models whose attributions were averaged
    stability : DataFrame classes x layout genes, the fraction of models in which the gene
        is among the class's top :data:`STABILITY_TOP` (None with one model)
    """

    method: str
    options: dict
    sample_ids: np.ndarray
    labels: np.ndarray | None
    predicted: np.ndarray
    targets: np.ndarray
    attributions: np.ndarray
    class_pixel_maps: dict[str, np.ndarray]
    class_samples: dict[str, dict]
    layout: Layout
    class_names: list[str]
    seconds: float
    absolute: bool = False
    notes: list[str] = field(default_factory=list)
    n_models: int = 1
    stability: pd.DataFrame | None = None

    def sample_gene_scores(self) -> pd.DataFrame:
        """Gene scores per sample: DataFrame samples x layout genes (NaN for unplaced genes)."""
        scores = self.layout.pixel_to_gene_scores(self.attributions)
        return pd.DataFrame(scores, index=pd.Index(self.sample_ids, name="sample_id"), columns=self.layout.gene_ids)

    def sample_position(self, sample: str | int) -> int:
        """Position among the explained samples of a sample id (an int is taken as that position)."""
        if isinstance(sample, (int, np.integer)):
            if not -self.sample_ids.size <= sample < self.sample_ids.size:
                raise InputError(f"Sample position {sample} is out of range; {self.sample_ids.size} were explained.")
            return int(sample) % self.sample_ids.size
        hits = np.flatnonzero(self.sample_ids == str(sample))
        if hits.size == 0:
            raise InputError(f"Sample {sample!r} was not explained.")
        return int(hits[0])

    def sample_map(self, sample: str | int) -> np.ndarray:
        """The attribution map of one explained sample (by id or position), shape (C, H, W)."""
        return self.attributions[self.sample_position(sample)]

    def sample_gene_table(self, sample: str | int, *, top: int | None = 50, go_terms: int = 3) -> pd.DataFrame:
        """The top-genes table of one explained sample, toward its target class.

        Same columns as :meth:`class_gene_table`; ``class`` is the sample's target
        (its label, or its prediction when unlabelled) and ``n_samples`` is empty.
        """
        i = self.sample_position(sample)
        scores = self.layout.pixel_to_gene_scores(self.attributions[i])
        return class_gene_table(self.layout, scores, class_name=str(self.targets[i]), top=top, go_terms=go_terms)

    def class_gene_scores(self) -> pd.DataFrame:
        """Gene scores per class: DataFrame classes x layout genes."""
        classes = [c for c in self.class_names if c in self.class_pixel_maps]
        maps = np.stack([self.class_pixel_maps[c] for c in classes]) if classes else np.empty((0, *self.layout.shape))
        return pd.DataFrame(self.layout.pixel_to_gene_scores(maps), index=pd.Index(classes, name="class"),
                            columns=self.layout.gene_ids)

    def class_gene_table(self, class_name: str | None = None, *, top: int | None = 50,
                         go_terms: int = 3) -> pd.DataFrame:
        """The top-genes table for one class, or all classes stacked (``class_name=None``).

        Columns: class, rank, symbol, entrez_id, gene_id, chromosome, start, end,
        cytoband, go_terms, score, n_genes_on_pixel, shares_pixel_with, channel,
        row, col, n_samples. Ranked by score, highest first (``top=None`` keeps all placed genes).
        """
        classes = list(self.class_pixel_maps) if class_name is None else [class_name]
        unknown = [c for c in classes if c not in self.class_pixel_maps]
        if unknown:
            raise InputError(f"No attribution for class {unknown[0]!r}; classes explained: "
                             f"{', '.join(self.class_pixel_maps)}.")
        scores = self.class_gene_scores().loc[classes]
        frames = []
        for name in classes:
            table = class_gene_table(self.layout, scores.loc[name].to_numpy(), class_name=name, top=top,
                                     go_terms=go_terms, n_samples=self.class_samples[name]["n_samples"])
            if self.stability is not None:
                table[f"top{STABILITY_TOP}_stability"] = self.stability.loc[name].reindex(table["gene_id"]).to_numpy()
            frames.append(table)
        return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()

    def summary(self, top: int = 5) -> dict:
        """JSON-serialisable summary: method, counts, seconds, top symbols per class."""
        table = self.class_gene_table(top=top, go_terms=0)
        return {
            "method": self.method,
            "options": self.options,
            "n_samples": int(self.sample_ids.size),
            "n_models": self.n_models,
            "classes": self.class_samples,
            "top_genes": {c: g["symbol"].tolist() for c, g in table.groupby("class", sort=False)},
            "seconds": round(self.seconds, 3),
            "notes": list(self.notes),
        }


def class_gene_table(layout: Layout, gene_scores: np.ndarray, *, class_name: str = "", top: int | None = 50,
                     go_terms: int = 3, n_samples: int | None = None) -> pd.DataFrame:
    """Rank genes by score and describe them: the top-genes table of one class.

    Parameters
    ----------
    layout : the layout (gene ids, symbols, Entrez ids, placements)
    gene_scores : ndarray (n_genes,), e.g. a row of :meth:`Layout.pixel_to_gene_scores`
    class_name : written in the ``class`` column
    top : keep this many genes (None: all placed genes)
    go_terms : GO term names per gene (0 skips the GO lookup)
    n_samples : written in the ``n_samples`` column

    Returns
    -------
    DataFrame with class, rank, symbol, entrez_id, gene_id, chromosome, start, end,
    cytoband, go_terms, score, n_genes_on_pixel, shares_pixel_with, channel, row, col, n_samples
    """
    gene_scores = np.asarray(gene_scores, dtype=np.float64)
    placed = np.flatnonzero(~np.isnan(gene_scores))
    order = placed[np.argsort(-gene_scores[placed], kind="stable")]
    if top is not None:
        order = order[: int(top)]
    entrez = (np.asarray(layout.entrez_ids, dtype=np.int64)[order] if layout.entrez_ids is not None
              else np.full(order.size, -1, dtype=np.int64))
    table = pd.DataFrame({
        "class": class_name, "rank": np.arange(1, order.size + 1), "symbol": layout.display_names[order],
        "entrez_id": entrez, "gene_id": layout.gene_ids[order],
    })
    genes = annotation.gene_table().set_index("entrez_id")
    position = genes.reindex(entrez)[["chromosome", "start", "end", "cytoband"]].reset_index(drop=True)
    table = pd.concat([table, position], axis=1)
    table["chromosome"] = table["chromosome"].fillna("")
    table["cytoband"] = table["cytoband"].fillna("")
    table["go_terms"] = top_go_terms(entrez, go_terms).reindex(entrez).fillna("").to_numpy() if go_terms else ""
    table["score"] = gene_scores[order]
    pixels = gene_pixel_table(layout, order)
    for column in ("n_genes_on_pixel", "shares_pixel_with", "channel", "row", "col"):
        table[column] = pixels[column].to_numpy()
    table["n_samples"] = n_samples
    return table


def explain(
    model: TrainedModel | Sequence[TrainedModel],
    images: ImageSet,
    *,
    method: str = "integrated_gradients",
    classes: Sequence[str] | None = None,
    samples: Sequence[str | int] | str | None = None,
    absolute: bool = False,
    batch_size: int = 64,
    device: str = "auto",
    progress: ProgressFn | None = None,
    **options,
) -> Explanation:
    """Attribute samples to their class and average per class: a class, one sample or a set.

    Each sample is attributed to its label (to the predicted class when the
    images carry no labels). A class's map is the mean over the samples of that
    class the model classifies correctly; when it gets none right, all samples
    of the class are used and a note says so.

    Parameters
    ----------
    model : a TrainedModel (``train_model(...).model`` or ``load_model(dir)``), or several
        trained on the same layout (fold or seed models): their attributions are averaged,
        predictions come from their mean probability, and ``Explanation.stability`` says
        how often each gene is among a class's top :data:`STABILITY_TOP` across them
    images : ImageSet made with the model's layout
    method : attribution method name (see :func:`list_methods`)
    classes : explain only samples of these classes (default: all)
    samples : which samples, in this order: sample ids, or int positions in ``images``;
        ``"holdout"`` or ``"all"``. Default (None): the held-out samples when the images
        carry any (split ``"holdout"``: never seen by layout or network), else all, with a
        note. ``samples=[sample_id]`` explains one sample: see :meth:`Explanation.sample_map`
        and :meth:`Explanation.sample_gene_table`
    absolute : average absolute attributions (magnitude regardless of direction)
    batch_size, device, progress, **options : passed to :func:`attribute`

    Returns
    -------
    Explanation
    """
    started = time.perf_counter()
    name = resolve_method(method)
    models = [model] if isinstance(model, TrainedModel) else list(model)
    if not models:
        raise InputError("No model to explain: the list of models is empty.")
    model = models[0]
    for other in models[1:]:
        if list(other.class_names) != list(model.class_names) or other.image_shape != model.image_shape:
            raise InputError("The models to average must share classes and image shape (one layout, one recipe).")
        if model.layout is not None and other.layout is not None:
            model.layout.check_same_as(other.layout, what="The models to average", whose="the first model's",
                                       fix="Average only models trained on images of one layout.")
    layout = model.layout if model.layout is not None else images.layout
    if tuple(images.images.shape[1:]) != model.image_shape:
        raise InputError(f"The model was trained on images of shape {model.image_shape}; these are "
                         f"{images.images.shape[1:]}. Convert the data with the model's layout.")
    if model.layout is not None and images.layout is not None:
        model.layout.check_same_as(images.layout, what="These images", whose="the model's layout",
                                   fix="Convert the data with the model's layout (saved in the model folder).")
    class_names = list(model.class_names)
    labels = None if images.labels is None else np.asarray(images.labels).astype(str)
    if labels is not None:
        unknown = sorted(set(labels.tolist()) - set(class_names))
        if unknown:
            raise InputError(f"Label(s) {', '.join(unknown[:5])} are not classes of the model "
                             f"({', '.join(class_names)}).")
    notes: list[str] = []
    keep = _default_samples(images, samples, notes)
    if classes is not None:
        classes = [str(c) for c in classes]
        bad = sorted(set(classes) - set(class_names))
        if bad:
            raise InputError(f"Unknown class(es) {', '.join(bad)}; the model knows {', '.join(class_names)}.")
        basis = labels[keep] if labels is not None else model.predict(images.images[keep])
        keep = keep[np.isin(basis, classes)]
        if keep.size == 0:
            raise InputError(f"No sample of class(es) {', '.join(classes)} in these images.")
    x = images.images[keep]
    probabilities = np.mean([m.predict_proba(x, device=device) for m in models], axis=0)
    predicted = np.asarray(class_names)[probabilities.argmax(axis=1)]
    targets = labels[keep] if labels is not None else predicted
    per_model = []
    for i, member in enumerate(models):
        # progress runs over all models' samples, so one bar covers an ensemble
        member_progress = None if progress is None else (
            lambda done, total, i=i: progress(i * total + done, len(models) * total))
        per_model.append(attribute(member, x, targets, name, batch_size=batch_size, device=device,
                                   progress=member_progress, **options))
    attributions = per_model[0] if len(models) == 1 else np.mean(per_model, axis=0)
    maps, counts, chosen_by_class = _class_maps(attributions, targets, predicted, labels, classes or class_names,
                                                absolute, notes)
    _warn_on_weak_tables(maps, counts, targets, predicted, labels, class_names, name, notes)
    stability = None
    if len(models) > 1 and maps:
        stability = _rank_stability(per_model, chosen_by_class, layout, absolute)
        notes.append(f"Attributions averaged over {len(models)} models; the top{STABILITY_TOP}_stability column "
                     f"is the fraction of them in which the gene is among the class's top {STABILITY_TOP}.")
    shared = int((layout.genes_per_pixel > 1).sum())
    if shared:
        notes.append(f"{shared} pixel(s) carry more than one gene; those genes share one score "
                     "(see n_genes_on_pixel and shares_pixel_with).")
    settings = {**METHODS[name].options, **options}
    return Explanation(
        method=name, options=settings, sample_ids=images.sample_ids[keep], labels=None if labels is None else
        labels[keep], predicted=predicted, targets=targets, attributions=attributions, class_pixel_maps=maps,
        class_samples=counts, layout=layout, class_names=class_names, seconds=time.perf_counter() - started,
        absolute=absolute, notes=notes, n_models=len(models), stability=stability,
    )


def _default_samples(images: ImageSet, samples: Sequence[str | int] | str | None, notes: list[str]) -> np.ndarray:
    """Positions to explain: given ones, or the held-out samples when there are any (with a note saying which)."""
    if samples is not None and not isinstance(samples, str):
        return _sample_positions(images, samples)
    if samples not in (None, "holdout", "all"):
        raise InputError(f"samples must be sample ids, positions, 'holdout' or 'all', not {samples!r}.")
    split = None if images.split is None else np.asarray(images.split).astype(str)
    held = np.zeros(images.n_samples, dtype=bool) if split is None else split == "holdout"
    if samples == "all" or (samples is None and not held.any()):
        why = "as asked" if samples == "all" else "the images carry no held-out samples"
        notes.append(f"Explained all {images.n_samples} samples ({why}); samples the model was trained on show "
                     "what it fitted, not what generalises.")
        return np.arange(images.n_samples)
    if not held.any():
        raise InputError("These images carry no held-out samples; explain samples='all' or give sample ids.")
    notes.append(f"Explained the {int(held.sum())} held-out samples (kept out of layout fitting and training).")
    return np.flatnonzero(held)


def _class_maps(attributions: np.ndarray, targets: np.ndarray, predicted: np.ndarray, labels: np.ndarray | None,
                classes: Sequence[str], absolute: bool, notes: list[str]) -> tuple[dict, dict, dict]:
    """Per class: the mean map over its correctly classified samples, their counts, and which samples."""
    weighted = np.abs(attributions) if absolute else attributions
    maps: dict[str, np.ndarray] = {}
    counts: dict[str, dict] = {}
    chosen_by_class: dict[str, np.ndarray] = {}
    for class_name in classes:
        members = targets == class_name
        correct = members & (predicted == class_name)
        basis = "correctly classified" if labels is not None else "predicted as this class"
        chosen = correct if labels is not None else members
        if labels is not None and not correct.any() and members.any():
            chosen = members
            basis = "all samples of the class (none classified correctly)"
            notes.append(f"{class_name}: no sample classified correctly; its map averages all its samples.")
        if not chosen.any():
            continue
        maps[class_name] = weighted[chosen].mean(axis=0)
        counts[class_name] = {"n_samples": int(chosen.sum()), "n_in_class": int(members.sum()), "basis": basis}
        chosen_by_class[class_name] = chosen
    return maps, counts, chosen_by_class


def _warn_on_weak_tables(maps: dict, counts: dict, targets: np.ndarray, predicted: np.ndarray,
                         labels: np.ndarray | None, class_names: list[str], method: str, notes: list[str]) -> None:
    """Notes for class tables that should not be read as findings."""
    chance = 1.0 / max(1, len(class_names))
    for class_name, pixel_map in maps.items():
        n = counts[class_name]["n_samples"]
        if n < MIN_CLASS_SAMPLES:
            notes.append(f"Warning: the {class_name} table rests on {n} sample(s) (fewer than {MIN_CLASS_SAMPLES}); "
                         "read it as an anecdote, not a finding.")
        members = targets == class_name
        if labels is not None and members.any():
            recall = float(np.mean(predicted[members] == class_name))
            if recall <= chance:
                notes.append(f"Warning: the model is at chance level for {class_name} (recall {recall:.2f} on "
                             f"{int(members.sum())} samples, chance {chance:.2f}); its table says little.")
        if not np.any(pixel_map):
            other = "integrated_gradients" if method != "integrated_gradients" else "occlusion"
            notes.append(f"Warning: {METHODS[method].title} gave an all-zero map for {class_name}: its scores are all "
                         "zero (the method sees nothing through this network), so it says nothing about which "
                         f"genes mattered. Try another method ({METHODS[other].title}, method={other}).")


def _rank_stability(per_model: list[np.ndarray], chosen_by_class: dict[str, np.ndarray], layout: Layout,
                    absolute: bool) -> pd.DataFrame:
    """Fraction of models in which each gene is among each class's top :data:`STABILITY_TOP`."""
    classes = list(chosen_by_class)
    in_top = np.zeros((len(classes), layout.n_genes))
    for attributions in per_model:
        weighted = np.abs(attributions) if absolute else attributions
        maps = np.stack([weighted[chosen_by_class[c]].mean(axis=0) for c in classes])
        scores = layout.pixel_to_gene_scores(maps)
        scores = np.where(np.isnan(scores), -np.inf, scores)
        top = np.argsort(-scores, axis=1, kind="stable")[:, :STABILITY_TOP]
        np.put_along_axis(in_top, top, np.take_along_axis(in_top, top, axis=1) + 1, axis=1)
    return pd.DataFrame(in_top / len(per_model), index=pd.Index(classes, name="class"), columns=layout.gene_ids)


def _sample_positions(images: ImageSet, samples: Sequence[str | int]) -> np.ndarray:
    """Positions in ``images`` of sample ids (or int positions, passed through), in the order given."""
    lookup = {sample_id: i for i, sample_id in enumerate(np.asarray(images.sample_ids).astype(str).tolist())}
    positions, missing = [], []
    for sample in samples:
        if isinstance(sample, (int, np.integer)):
            if not 0 <= sample < images.n_samples:
                raise InputError(f"Sample position {sample} is out of range (0 to {images.n_samples - 1}).")
            positions.append(int(sample))
        elif str(sample) in lookup:
            positions.append(lookup[str(sample)])
        else:
            missing.append(str(sample))
    if missing:
        raise InputError(f"Sample(s) {', '.join(missing[:5])} are not in these images.")
    if not positions:
        raise InputError("No samples to explain: the list of samples is empty.")
    return np.asarray(positions, dtype=np.int64)
