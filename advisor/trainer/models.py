"""Small models that train in seconds on one CPU core: an MLP and a 1-D/2-D CNN."""

from __future__ import annotations

import math

from torch import nn

from advisor.trainer.config import ModelName


def mlp(input_shape: tuple[int, ...], n_classes: int, width: int, depth: int) -> nn.Module:
    """Flatten, then ``depth`` hidden ReLU layers of ``width`` units, then a linear head."""
    layers: list[nn.Module] = [nn.Flatten()]
    features = math.prod(input_shape)
    for _ in range(depth):
        layers += [nn.Linear(features, width), nn.ReLU()]
        features = width
    layers.append(nn.Linear(features, n_classes))
    return nn.Sequential(*layers)


def cnn(input_shape: tuple[int, ...], n_classes: int, width: int, depth: int) -> nn.Module:
    """``depth`` stride-2 ReLU convolutions of ``width`` channels, then a linear head.

    The input is ``(channels, length)`` (1-D) or ``(channels, height, width)`` (2-D).
    The head sees the flattened feature map rather than a global average: MNIST-1D's
    classes differ by where features lie along the sequence.
    """
    channels, *spatial = input_shape
    if len(spatial) == 1:
        conv: type[nn.Conv1d] | type[nn.Conv2d] = nn.Conv1d
        kernel, pad = 5, 2
    elif len(spatial) == 2:
        conv, kernel, pad = nn.Conv2d, 3, 1
    else:
        raise ValueError(f"cnn needs a 1-D or 2-D input but got shape {input_shape}")
    layers: list[nn.Module] = []
    for _ in range(depth):
        layers += [conv(channels, width, kernel, stride=2, padding=pad), nn.ReLU()]
        channels = width
        # The output size of a stride-2 convolution with "same" padding.
        spatial = [(s + 2 * pad - kernel) // 2 + 1 for s in spatial]
    layers += [nn.Flatten(), nn.Linear(channels * math.prod(spatial), n_classes)]
    return nn.Sequential(*layers)


def build_model(
    name: ModelName, input_shape: tuple[int, ...], n_classes: int, width: int, depth: int
) -> nn.Module:
    """The model called ``name`` (``mlp`` or ``cnn``)."""
    if name == "mlp":
        return mlp(input_shape, n_classes, width, depth)
    if name == "cnn":
        return cnn(input_shape, n_classes, width, depth)
    raise ValueError(f"model must be mlp or cnn but got {name!r}")
