"""advisor: watches training logs and says, early and concretely, what to change."""

from __future__ import annotations

from typing import Any

__all__ = ["read_scalars"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    # Lazy, so that `import advisor.model` (the pure core) does not pull in pandas.
    if name == "read_scalars":
        from advisor.api import read_scalars

        return read_scalars
    raise AttributeError(name)
