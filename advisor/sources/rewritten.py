"""JSON files that their writer rewrites whole at each update, read as they grow.

Hugging Face's ``trainer_state.json`` and Sacred's ``metrics.json`` are written with
``open(path, "w")`` and a JSON dump, not atomically, so a reader can see one empty or
cut short. :class:`RewrittenJson` reads the whole file when it changed (same size, inode
and mtime: not opened), and hands a version that parses to the format's ``_take``. An
unparsable version is waited for, silently, while it keeps changing; if it is still
unparsable at a later call with the file unchanged, or read as final, it is reported,
once per version.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from advisor.model import Batch
from advisor.model import HParamValue
from advisor.sources.tail import PointTable
from advisor.sources.tail import ProblemLog
from advisor.sources.tail import stat_file
from advisor.sources.tail import unreadable

_MAX_BYTES = 512 << 20
_Signature = tuple[int, int, int]


class RewrittenJson:
    """Base of the loaders of rewritten JSON files (see the module docstring).

    Args:
        path: the file.
        max_bytes: a larger file is reported and not read.
    """

    def __init__(self, path: Path | str, *, max_bytes: int = _MAX_BYTES) -> None:
        self.path = Path(path)
        self._max_bytes = max_bytes
        self._points = PointTable()
        self._problems = ProblemLog(self.path)
        self._signature: _Signature | None = None  # of the last version handled
        self._failed: _Signature | None = None  # the last version found unparsable

    # -- for subclasses --------------------------------------------------------------

    def _invalid(self, data: Any) -> str | None:
        """Why a parsed version is not one of this format (None: it is)."""
        raise NotImplementedError

    def _take(self, data: Any) -> tuple[bool, dict[str, HParamValue]]:
        """Add a valid version's new points to ``self._points``; whether the points
        emitted before changed (the batch then holds all of them again, ``reset``), and
        the hyper-parameters when new or changed."""
        raise NotImplementedError

    # -- the reading -----------------------------------------------------------------

    def load(self, *, final: bool = False) -> Batch:
        """Return the points added since the previous call; with ``final`` an
        unparsable file is reported at once (it is not being rewritten)."""
        st = stat_file(self.path)
        if st is None:
            return Batch()
        signature = (st.st_size, st.st_ino, st.st_mtime_ns)
        if signature == self._signature:
            return Batch()
        if st.st_size > self._max_bytes:
            self._problems.add("file", f"larger than {self._max_bytes >> 20} MiB; not read")
            self._signature = signature
            return Batch(problems=self._problems.take())
        data = self._read()
        if isinstance(data, tuple) or data is None:
            if data is not None and (final or self._failed == signature):
                # Unparsable twice with nothing changed between, or final: the writer
                # is done.
                self._problems.add(*data)
                self._signature = signature
            self._failed = signature
            return Batch(problems=self._problems.take())
        self._failed = None
        self._signature = signature
        reset, hparams = self._take(data[0])
        return Batch(
            scalars=self._points.build(),
            problems=self._problems.take(),
            hparams=hparams,
            reset=reset,
        )

    def _read(self) -> list[Any] | tuple[str, str] | None:
        """[the parsed version]; else (position, message) saying why this version is not
        valid; None if the file is gone."""
        try:
            with open(self.path, "rb") as fh:
                raw = fh.read(self._max_bytes + 1)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise unreadable(self.path, exc) from None
        try:
            data = json.loads(raw)
        except json.JSONDecodeError as exc:
            return f"line {exc.lineno}", f"not valid JSON ({exc.msg})"
        except (ValueError, RecursionError):  # undecodable bytes, absurd nesting
            return "line 1", "not valid JSON"
        why = self._invalid(data)
        if why is not None:
            return "line 1", why
        return [data]
