"""Which logged tag plays which role: validation loss, training loss, learning rate...

Names differ by framework (``val_loss``, ``val/loss``, ``Loss/val``, ``eval_loss``,
``validation/epoch_loss``, ``valid_loss``, ``ValLoss``, ``test_loss`` all mean the
validation loss), so a tag is split into lower-case words (on separators and on
camelCase boundaries) and classified by the words it contains. Exact names and globs
from ``advisor.toml`` override the defaults.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from functools import lru_cache

from advisor.errors import ConfigError
from advisor.model import Direction
from advisor.model import Role
from advisor.model import TagRole

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")
_SPLIT = re.compile(r"[^A-Za-z0-9]+")

_VAL_WORDS = frozenset({"val", "valid", "validation", "eval", "evaluation", "test", "dev"})
_TRAIN_WORDS = frozenset({"train", "training", "trn"})
_LOSS_WORDS = frozenset({"loss", "nll", "xent", "crossentropy", "objective"})
# Metrics where higher is better, and where lower is better. A tag is a metric when
# one of its words is here; anything else stays OTHER rather than being guessed.
_MAX_WORDS = frozenset(
    {"acc", "accuracy", "top1", "top5", "f1", "auc", "auroc", "precision", "recall", "iou",
     "miou", "dice", "bleu", "rouge", "map", "r2", "score", "mcc"}
)  # fmt: skip
_MIN_WORDS = frozenset(
    {"mae", "mse", "rmse", "error", "err", "perplexity", "ppl", "wer", "cer", "mape"}
)
_LR_WORDS = frozenset({"lr", "learningrate"})
_MOMENTUM_WORDS = frozenset({"momentum", "mom", "beta1"})
_WD_WORDS = frozenset({"wd", "weightdecay"})
_BATCH_WORDS = frozenset({"bs", "batchsize"})
# Words that say a tag is not a value to diagnose even if it names a loss, e.g.
# HF's ``eval_runtime`` or ``train_samples_per_second``.
_NOISE_WORDS = frozenset({"runtime", "time", "samples", "second", "seconds", "flos", "norm"})


def words(tag: str) -> tuple[str, ...]:
    """Split a tag into lower-case words, joining the two-word names we know.

    ``"validation/epoch_loss"`` → ``("validation", "epoch", "loss")``;
    ``"ValLoss"`` → ``("val", "loss")``; ``"learning_rate"`` → ``("learningrate",)``.
    """
    raw = [w for part in _SPLIT.split(tag) if part for w in _CAMEL.split(part) if w]
    out: list[str] = []
    for w in (w.lower() for w in raw):
        pair = (out[-1] + w) if out else ""
        if pair in {"learningrate", "weightdecay", "batchsize", "crossentropy"}:
            out[-1] = pair
        else:
            out.append(w)
    return tuple(out)


@lru_cache(maxsize=65536)
def default_role(tag: str) -> TagRole:
    """The role of a tag by its words alone (no configuration)."""
    ws = words(tag)
    s = set(ws)
    if s & _LR_WORDS and not s & _LOSS_WORDS:
        # Lightning's LearningRateMonitor logs "lr-SGD" and "lr-SGD-momentum".
        return TagRole(Role.MOMENTUM if s & _MOMENTUM_WORDS else Role.LR)
    if s & _MOMENTUM_WORDS:
        return TagRole(Role.MOMENTUM)
    if s & _WD_WORDS:
        return TagRole(Role.WEIGHT_DECAY)
    if s & _BATCH_WORDS:
        return TagRole(Role.BATCH_SIZE)
    if ws in {("epoch",), ("epochs",)} or (ws and ws[-1] == "epoch" and len(ws) == 2 and
                                            ws[0] in _TRAIN_WORDS):  # fmt: skip
        return TagRole(Role.EPOCH)
    if s & _NOISE_WORDS:
        return TagRole(Role.OTHER)
    phase_val = bool(s & _VAL_WORDS)
    if s & _LOSS_WORDS:
        return TagRole(Role.VAL_LOSS if phase_val else Role.TRAIN_LOSS)
    if s & _MAX_WORDS:
        return TagRole(Role.VAL_METRIC if phase_val else Role.TRAIN_METRIC, Direction.MAX)
    if s & _MIN_WORDS:
        return TagRole(Role.VAL_METRIC if phase_val else Role.TRAIN_METRIC, Direction.MIN)
    return TagRole(Role.OTHER)


def parse_role(text: str, where: str) -> TagRole:
    """Parse a configured role such as ``val_loss`` or ``val_metric:max``.

    Raises:
        ConfigError: naming ``where`` and the bad value.
    """
    name, _, direction = text.partition(":")
    try:
        role = Role(name.strip())
    except ValueError:
        choices = ", ".join(r.value for r in Role)
        raise ConfigError(f"{where}: unknown role {text!r} (one of {choices})") from None
    if not direction:
        default = Direction.MAX if role in (Role.VAL_METRIC, Role.TRAIN_METRIC) else Direction.MIN
        return TagRole(role, default)
    try:
        return TagRole(role, Direction(direction.strip()))
    except ValueError:
        raise ConfigError(f"{where}: unknown direction {direction!r} (min or max)") from None


@dataclass(frozen=True)
class RoleTable:
    """Tag → role, with configured overrides (exact names or globs) before defaults.

    Attributes:
        overrides: tag name or glob → role, in the order given.
    """

    overrides: Mapping[str, TagRole] = field(default_factory=dict)

    def role(self, tag: str) -> TagRole:
        """The role of ``tag``."""
        exact = self.overrides.get(tag)
        if exact is not None:
            return exact
        for pattern, role in self.overrides.items():
            if fnmatch.fnmatchcase(tag, pattern):
                return role
        return default_role(tag)
