"""Offline datasets: scikit-learn's bundled digits and a generated MNIST-1D.

Nothing is downloaded: ``load_digits`` ships with scikit-learn, and MNIST-1D is made by
the ``mnist1d`` package's ``make_dataset(get_dataset_args())`` (about a second), never
by its ``get_dataset``, which fetches a pickle from GitHub.
"""

from __future__ import annotations

import functools
import random
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from advisor.trainer.config import DatasetName

F32 = npt.NDArray[np.float32]
I64 = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class Dataset:
    """A train/validation split, standardised with the training set's mean and sd.

    Attributes:
        name: the dataset's name.
        x_train: inputs, shape ``(n, 1, 8, 8)`` for digits and ``(n, 1, 40)`` for MNIST-1D.
        y_train: class labels.
        x_val: validation inputs.
        y_val: validation labels.
        n_classes: number of classes (10 for both).
    """

    name: str
    x_train: F32
    y_train: I64
    x_val: F32
    y_val: I64
    n_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example (channels first)."""
        return tuple(int(d) for d in self.x_train.shape[1:])


def load_dataset(
    name: DatasetName,
    *,
    split_seed: int = 0,
    val_fraction: float = 0.2,
    n_train: int | None = None,
) -> Dataset:
    """Split ``name`` deterministically into training and validation sets.

    Args:
        name: ``digits`` (1,797 images) or ``mnist1d`` (5,000 sequences).
        split_seed: seeds the permutation that picks the validation examples.
        val_fraction: part of the examples held out for validation.
        n_train: keep only the first ``n_train`` training examples of the permutation
            (the validation set is unchanged), to make a model overfit.

    Raises:
        ValueError: an unknown name, or ``n_train`` above the training examples there are.
    """
    if name == "digits":
        x, y = _digits()
    elif name == "mnist1d":
        x, y = _mnist1d()
    else:
        raise ValueError(f"dataset must be digits or mnist1d but got {name!r}")
    order = np.random.default_rng(split_seed).permutation(len(y))
    n_val = round(len(y) * val_fraction)
    val, train = order[:n_val], order[n_val:]
    if n_train is not None:
        if n_train > len(train):
            raise ValueError(f"n_train must be <= {len(train)} for {name} but got {n_train}")
        train = train[:n_train]
    mean = float(x[train].mean())
    sd = float(x[train].std()) or 1.0
    return Dataset(
        name=name,
        x_train=((x[train] - mean) / sd).astype(np.float32),
        y_train=y[train],
        x_val=((x[val] - mean) / sd).astype(np.float32),
        y_val=y[val],
        n_classes=10,
    )


@functools.cache
def _digits() -> tuple[F32, I64]:
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = np.asarray(bunch.images, dtype=np.float32)[:, None, :, :] / 16.0
    return x, np.asarray(bunch.target, dtype=np.int64)


@functools.cache
def _mnist1d() -> tuple[F32, I64]:
    from mnist1d.data import get_dataset_args
    from mnist1d.data import make_dataset

    # make_dataset reseeds the global random and numpy generators; put them back so
    # that generating the data has no effect on anything else in the process.
    py_state, np_state = random.getstate(), np.random.get_state()
    try:
        raw = make_dataset(get_dataset_args())
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)
    # Its own 80/20 split is pooled; load_dataset splits again with split_seed.
    x = np.concatenate([raw["x"], raw["x_test"]]).astype(np.float32)[:, None, :]
    y = np.concatenate([raw["y"], raw["y_test"]]).astype(np.int64)
    return x, y
