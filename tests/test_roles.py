"""Tag names map to roles by their words; configuration overrides the defaults."""

from __future__ import annotations

import pytest

from advisor.errors import ConfigError
from advisor.model import Direction
from advisor.model import Role
from advisor.roles import RoleTable
from advisor.roles import default_role
from advisor.roles import parse_role

VAL_LOSS_NAMES = [
    "val_loss", "val/loss", "Loss/val", "eval_loss", "validation/epoch_loss", "valid_loss",
    "ValLoss", "test_loss", "val_loss_epoch", "validation/evaluation_loss_vs_iterations",
]  # fmt: skip
TRAIN_LOSS_NAMES = ["loss", "train_loss", "Loss/train", "train/epoch_loss", "TrainLoss",
                    "train_loss_step", "train_loss_epoch", "epoch_loss"]  # fmt: skip


@pytest.mark.parametrize("tag", VAL_LOSS_NAMES)
def test_validation_loss_names(tag: str) -> None:
    """Every common spelling of the validation loss is recognised."""
    assert default_role(tag).role is Role.VAL_LOSS


@pytest.mark.parametrize("tag", TRAIN_LOSS_NAMES)
def test_training_loss_names(tag: str) -> None:
    """A loss without a validation word is the training loss."""
    assert default_role(tag).role is Role.TRAIN_LOSS


@pytest.mark.parametrize(
    ("tag", "role", "direction"),
    [
        ("val_accuracy", Role.VAL_METRIC, Direction.MAX),
        ("validation/epoch_accuracy", Role.VAL_METRIC, Direction.MAX),
        ("Accuracy/val", Role.VAL_METRIC, Direction.MAX),
        ("eval_accuracy", Role.VAL_METRIC, Direction.MAX),
        ("val_perplexity", Role.VAL_METRIC, Direction.MIN),
        ("val_mae", Role.VAL_METRIC, Direction.MIN),
        ("accuracy", Role.TRAIN_METRIC, Direction.MAX),
        ("lr", Role.LR, Direction.MIN),
        ("learning_rate", Role.LR, Direction.MIN),
        ("epoch_learning_rate", Role.LR, Direction.MIN),
        ("lr-SGD", Role.LR, Direction.MIN),
        ("lr-SGD-momentum", Role.MOMENTUM, Direction.MIN),
        ("momentum", Role.MOMENTUM, Direction.MIN),
        ("weight_decay", Role.WEIGHT_DECAY, Direction.MIN),
        ("batch_size", Role.BATCH_SIZE, Direction.MIN),
        ("epoch", Role.EPOCH, Direction.MIN),
        ("train/epoch", Role.EPOCH, Direction.MIN),
        ("eval_runtime", Role.OTHER, Direction.MIN),
        ("eval_samples_per_second", Role.OTHER, Direction.MIN),
        ("grad_norm", Role.OTHER, Direction.MIN),
        ("something_else", Role.OTHER, Direction.MIN),
    ],
)
def test_other_roles(tag: str, role: Role, direction: Direction) -> None:
    """Metrics carry their direction; schedule scalars get their own roles."""
    got = default_role(tag)
    assert (got.role, got.direction) == (role, direction)


def test_overrides_take_precedence_exact_then_glob() -> None:
    """Configured names win over defaults; exact names over globs."""
    table = RoleTable(
        {
            "objective": parse_role("val_loss", "t"),
            "score/*": parse_role("val_metric:max", "t"),
            "val_loss": parse_role("other", "t"),
        }
    )
    assert table.role("objective").role is Role.VAL_LOSS
    assert table.role("score/top1").direction is Direction.MAX
    assert table.role("val_loss").role is Role.OTHER
    assert table.role("eval_loss").role is Role.VAL_LOSS


@pytest.mark.parametrize("bad", ["valloss", "val_metric:up", ""])
def test_bad_role_names_the_place(bad: str) -> None:
    """An unknown role or direction is a one-line error naming where it was."""
    with pytest.raises(ConfigError, match=r"^advisor.toml: roles.x: unknown"):
        parse_role(bad, "advisor.toml: roles.x")
