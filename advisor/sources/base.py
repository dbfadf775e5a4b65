"""The one interface every log format implements."""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from advisor.model import Batch


class Loader(Protocol):
    """Reads one log file incrementally.

    Contract (DESIGN.md section 3): ``load()`` returns only what was appended since the
    previous call. It never drops or duplicates a point. A half-written trailing record
    or line stays unread until it is complete; with ``final`` (the writer is done, as
    for ``advisor replay``) it is reported and skipped instead, never read as if it
    were whole and never dropped in silence. A file that shrinks or is replaced is
    read again from its start, with ``Batch.reset`` set. Memory stays bounded by what
    is kept, not by the file's size. Input problems are returned in ``Batch.problems``
    (each once), never raised; only an unreadable path raises ``InputError``.
    """

    path: Path

    def load(self, *, final: bool = False) -> Batch:
        """Return what was appended since the previous call (``final``: nothing more
        will be written)."""
        ...
