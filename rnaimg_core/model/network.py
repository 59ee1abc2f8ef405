"""The small convolutional network for expression images, and batched prediction."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

DEFAULT_ARCHITECTURE = {"base_channels": 8, "n_blocks": 3, "pool_size": 12, "dropout": 0.5, "stem_stride": 2,
                        "input_clip": 4.0, "input_dropout": 0.0, "linear_path": True, "linear_zero_init": True,
                        "clip_linear_path": False}


class SmallCNN(nn.Module):
    """A small convolutional classifier for (C, H, W) expression images.

    ``n_blocks`` blocks of 3x3 convolution, batch normalisation and ReLU; the
    first block downsamples with stride ``stem_stride`` (images of at least
    8 pixels a side), the others with 2x2 max pooling as long as the feature
    map stays at least ``pool_size`` a side (where a gene sits is what it is,
    so the classifier must keep seeing positions; small images work), then adaptive average pooling to
    ``pool_size`` x ``pool_size``, dropout and one linear layer.

    Every ReLU is its own module and none is in-place, so captum's DeepLift
    and Guided Grad-CAM can hook them.

    Parameters
    ----------
    in_channels, height, width : the image shape
    n_classes : number of output classes
    base_channels : filters in the first block; doubled in each further block
    n_blocks : number of convolution blocks
    pool_size : side of the adaptive pooling output
    dropout : dropout probability before the classifier
    stem_stride : stride of the first convolution (2 keeps CPU training fast)
    input_clip : inputs pass through ``input_clip * tanh(x / input_clip)`` (0 = off)
    input_dropout : fraction of input pixels zeroed at random during training
    linear_path : also feed every pixel to the logits through one linear layer beside the
        convolutions ("wide and deep"): with few samples the convolutions alone lose what a
        linear model on the genes finds, and the linear path keeps it (it is blind to the
        arrangement, so a layout's gain still shows against its random permutation). On by
        default in training (:data:`DEFAULT_ARCHITECTURE`, benchmarks/bench_recipe.py); the argument
        defaults to off so model folders saved before it existed load unchanged
    clip_linear_path : whether the linear path also sees the soft-clipped inputs. The clip
        protects the convolutions from a few extreme z-scores; the linear path is the logistic
        regression the network starts from, and clipping its inputs costs it what the flat
        baseline sees (on a 120-cell demo draw, scikit-learn's logistic regression scored 0.833
        balanced accuracy on clipped inputs against 0.917 on the values). Off in training
        (:data:`DEFAULT_ARCHITECTURE`); the argument defaults to on so model folders saved
        before it existed load unchanged
    linear_zero_init : start the linear path's weights at zero instead of PyTorch's random
        default. Gradient steps only move the weights within the span of the training
        images, so a random start stays in the weights for good and adds a seed-dependent
        term of about 0.6 (standard deviation) to every unseen sample's logits and to its
        attributions; from zero, the linear path is the same function for every seed. On in
        training (:data:`DEFAULT_ARCHITECTURE`); it changes nothing once trained
    """

    def __init__(self, in_channels: int, height: int, width: int, n_classes: int, *,
                 base_channels: int = 8, n_blocks: int = 3, pool_size: int = 12, dropout: float = 0.5,
                 stem_stride: int = 2, input_clip: float = 4.0, input_dropout: float = 0.0,
                 linear_path: bool = False, linear_zero_init: bool = False, clip_linear_path: bool = True):
        super().__init__()
        self.hyperparameters = {
            "in_channels": int(in_channels), "height": int(height), "width": int(width),
            "n_classes": int(n_classes), "base_channels": int(base_channels), "n_blocks": int(n_blocks),
            "pool_size": int(pool_size), "dropout": float(dropout), "stem_stride": int(stem_stride),
            "input_clip": float(input_clip), "input_dropout": float(input_dropout),
            "linear_path": bool(linear_path), "linear_zero_init": bool(linear_zero_init),
            "clip_linear_path": bool(clip_linear_path),
        }
        # dropping random pixels while training mimics single-cell dropouts and regularises
        # strongly with few samples; in eval mode (prediction, attribution) it does nothing
        self.input_dropout = nn.Dropout(float(input_dropout))
        # z-scores of rarely expressed genes reach 10 or more; a soft clip keeps them from
        # dominating while staying differentiable (and a module, so DeepLift can hook it)
        self.clip = nn.Tanh() if input_clip > 0 else nn.Identity()
        layers: list[nn.Module] = []
        channels, side = int(in_channels), min(int(height), int(width))
        for block in range(int(n_blocks)):
            out = int(base_channels) * 2 ** block
            # the first block downsamples by its stride instead of pooling: a full-resolution
            # convolution is what makes small CNNs slow on CPUs
            stride = int(stem_stride) if block == 0 and side >= 8 else 1
            layers += [nn.Conv2d(channels, out, kernel_size=3, stride=stride, padding=1, bias=False),
                       nn.BatchNorm2d(out), nn.ReLU(inplace=False)]
            side = (side + stride - 1) // stride
            # pool only while the map stays at least pool_size a side: a gene's position is
            # information here (unlike in photographs), so the classifier must still see where
            if stride == 1 and side >= 4 and side // 2 >= int(pool_size):
                layers.append(nn.MaxPool2d(2))
                side //= 2
            channels = out
        self.features = nn.Sequential(*layers)
        # never pool "up": a feature map smaller than pool_size keeps its own size
        pooled = max(1, min(int(pool_size), side))
        self.pool = nn.AdaptiveAvgPool2d(pooled)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Dropout(float(dropout)),
                                        nn.Linear(channels * pooled ** 2, int(n_classes)))
        self.linear = (nn.Sequential(nn.Flatten(), nn.Linear(int(in_channels) * int(height) * int(width),
                                                             int(n_classes), bias=False))
                       if linear_path else None)
        if self.linear is not None and linear_zero_init:
            nn.init.zeros_(self.linear[1].weight)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits, shape (n, n_classes), for images of shape (n, C, H, W)."""
        raw = images
        limit = self.hyperparameters["input_clip"]
        if limit > 0:
            images = limit * self.clip(images / limit)
        if self.input_dropout.p > 0:  # Dropout(0) would still draw a mask per batch
            keep = self.input_dropout(torch.ones_like(images))  # one mask (0 or 1/(1-p)) for both paths
            images, raw = images * keep, raw * keep
        logits = self.classifier(self.pool(self.features(images)))
        if self.linear is None:
            return logits
        return logits + self.linear(images if self.hyperparameters["clip_linear_path"] else raw)

    def linear_logits(self, images: torch.Tensor) -> torch.Tensor | None:
        """The linear path's share of the logits alone (what the network says without its convolutions).

        None without a linear path. The conv head's output bias (the linear model's intercept
        after a warm start) is included, so a network whose conv head was never trained gives
        exactly its logits.
        """
        if self.linear is None:
            return None
        return self.linear(self.linear_inputs(images)) + self.classifier[-1].bias

    def linear_inputs(self, images: torch.Tensor) -> torch.Tensor:
        """What the linear path sees of ``images`` (in eval mode): soft-clipped or not (``clip_linear_path``)."""
        limit = self.hyperparameters["input_clip"]
        if limit > 0 and self.hyperparameters["clip_linear_path"]:
            return limit * self.clip(images / limit)
        return images

    @property
    def last_conv(self) -> nn.Conv2d:
        """The last convolution layer (Grad-CAM's default layer)."""
        return [m for m in self.features if isinstance(m, nn.Conv2d)][-1]


class EnsembleCNN(nn.Module):
    """Several :class:`SmallCNN` trained alike from different seeds; the logits are their mean.

    Training (:func:`~rnaimg_core.model.train.train_model`) by default also gives each member
    its own validation fold of the non-test samples (``TrainSettings.ensemble_validation``).
    Averaging models smooths the seed-to-seed wobble of small cohorts, and because
    the mean is linear, gradient attributions of the ensemble are the mean of the
    members' attributions.

    Parameters
    ----------
    members : number of member networks
    **hyperparameters : the :class:`SmallCNN` arguments, shared by every member
    """

    def __init__(self, *args, members: int = 2, **hyperparameters):
        super().__init__()
        self.members = nn.ModuleList([SmallCNN(*args, **hyperparameters) for _ in range(int(members))])
        self.hyperparameters = {**self.members[0].hyperparameters, "members": int(members)}

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Mean class logits of the members, shape (n, n_classes)."""
        return torch.stack([member(images) for member in self.members]).mean(dim=0)

    def linear_logits(self, images: torch.Tensor) -> torch.Tensor | None:
        """Mean of the members' :meth:`SmallCNN.linear_logits`; None without a linear path."""
        parts = [member.linear_logits(images) for member in self.members]
        return None if any(part is None for part in parts) else torch.stack(parts).mean(dim=0)


def build_network(**hyperparameters) -> SmallCNN | EnsembleCNN:
    """The network a ``hyperparameters`` dict describes (``members`` above 1: an :class:`EnsembleCNN`)."""
    members = int(hyperparameters.pop("members", 1))
    return EnsembleCNN(members=members, **hyperparameters) if members > 1 else SmallCNN(**hyperparameters)


def predict_proba(network: nn.Module, images: np.ndarray, dev: torch.device, batch_size: int = 256) -> np.ndarray:
    """Softmax class probabilities, shape (n, n_classes), for images (n, C, H, W), computed on ``dev``.

    The network is moved to ``dev`` for the call and back to where it was afterwards.
    """
    network.eval()
    parameter = next(network.parameters())
    original = parameter.device
    network.to(dev)
    out = []
    with torch.inference_mode():
        for start in range(0, images.shape[0], batch_size):
            batch = torch.as_tensor(images[start:start + batch_size]).to(dev)
            out.append(torch.softmax(network(batch), dim=1).cpu().numpy())
    network.to(original)
    n_classes = network.hyperparameters["n_classes"] if hasattr(network, "hyperparameters") else 0
    return np.concatenate(out) if out else np.empty((0, n_classes), dtype=np.float32)
