"""The tags of one event file: ids, vectorised lookup by raw bytes, plugin memory.

The fast decoder finds each record's tag as a byte span in the read buffer. Building a
Python string per record would cost more than everything else, so spans are hashed in
numpy (the tag padded to 8-byte words, each word mixed in), hashes are looked up in a
sorted array, and every match is then checked word for word against the tag's stored
bytes: a hash collision can only send a record to the slow path, never mislabel it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from advisor.sources.tfrecord import Buf
from advisor.sources.tfrecord import u64_at

Idx = npt.NDArray[np.intp]
U64 = npt.NDArray[np.uint64]

SCALARS_PLUGIN = "scalars"
# Per-tag plugin codes: how a tensor value of the tag counts.
NO_PLUGIN = 0  # no metadata seen yet (or an empty plugin name): numeric scalars count
SCALARS = 1  # the scalars plugin: numeric scalars count
OTHER = 2  # any other plugin (hparams, text, histograms, ...): nothing counts

_WORDS = 8  # tags up to 64 bytes are hashed (longer ones take the slow path)
_MULT = np.uint64(0x9E3779B97F4A7C15)
# _KEEP[k]: the mask of the first k bytes of a little-endian word.
_KEEP = np.array([(1 << (8 * k)) - 1 for k in range(9)], np.uint64)


def _hash(words: U64, lengths: Idx) -> U64:
    h = lengths.astype(np.uint64) * _MULT
    for k in range(words.shape[1]):
        h = (h ^ words[:, k]) * _MULT
        h ^= h >> np.uint64(29)
    return h


class TagTable:
    """Tag ids, in order of first appearance, with each tag's plugin as first seen."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self._ids: dict[bytes, int] = {}
        self._raw: list[bytes] = []
        self._codes: list[int] = []
        self._known: list[bool] = []  # whether metadata was seen for the tag
        self._hashes = np.zeros(0, np.uint64)  # sorted
        self._hash_ids = np.zeros(0, np.intp)
        self._rows = np.zeros((0, _WORDS), np.uint64)
        self._row_lengths = np.zeros(0, np.intp)

    def __len__(self) -> int:
        return len(self.names)

    def id_of(self, raw: bytes) -> int:
        """The id of a tag given by its raw bytes, created on first use."""
        found = self._ids.get(raw)
        if found is not None:
            return found
        new = len(self.names)
        self._ids[raw] = new
        self._raw.append(raw)
        self.names.append(raw.decode("utf-8", "replace"))
        self._codes.append(NO_PLUGIN)
        self._known.append(False)
        return new

    def learn(self, tag: int, plugin: str) -> bool:
        """Remember the tag's plugin unless one was seen before; True if this was first."""
        if self._known[tag]:
            return False
        self._known[tag] = True
        self._codes[tag] = (
            SCALARS if plugin == SCALARS_PLUGIN else (OTHER if plugin else NO_PLUGIN)
        )
        return True

    def known(self) -> npt.NDArray[np.bool_]:
        """Per tag id: whether its plugin is settled."""
        return np.array(self._known, np.bool_)

    def codes(self) -> Idx:
        """Per tag id: its plugin code (``NO_PLUGIN``, ``SCALARS`` or ``OTHER``)."""
        return np.array(self._codes, np.intp)

    def code(self, tag: int) -> int:
        """The plugin code of one tag."""
        return self._codes[tag]

    def lookup(self, buf: Buf, offsets: Idx, lengths: Idx) -> Idx:
        """Ids of the tags at ``buf[offsets : offsets + lengths]`` (each at most 64 bytes).

        Returns -1 where a hash collision makes the answer unsure (the caller decodes
        those records the slow way).
        """
        n = offsets.shape[0]
        if n == 0:
            return np.zeros(0, np.intp)
        width = max(1, (int(lengths.max()) + 7) // 8)
        u64 = u64_at(buf)
        words = np.empty((n, width), np.uint64)
        for k in range(width):
            keep = _KEEP[np.clip(lengths - 8 * k, 0, 8)]
            words[:, k] = u64[offsets + 8 * k] & keep
        hashes = _hash(words, lengths)
        ids = self._find(hashes)
        missing = ids < 0
        if missing.any():
            new_hashes, first = np.unique(hashes[missing], return_index=True)
            new_ids = [
                self.id_of(bytes(buf[start : start + size]))
                for start, size in zip(
                    offsets[missing][first].tolist(), lengths[missing][first].tolist(), strict=True
                )
            ]
            # One merge per call, not one insert per tag: files with very many distinct
            # tags must stay linear. The new hashes are all absent from the table.
            merged = np.concatenate([self._hashes, new_hashes])
            order = np.argsort(merged, kind="stable")
            self._hashes = merged[order]
            self._hash_ids = np.concatenate([self._hash_ids, new_ids]).astype(np.intp)[order]
            ids = self._find(hashes)
        self._sync_rows()
        same = (self._row_lengths[ids] == lengths) & (words == self._rows[ids, :width]).all(axis=1)
        return np.where(same, ids, -1)

    def _find(self, hashes: U64) -> Idx:
        if self._hashes.size == 0:
            return np.full(hashes.shape[0], -1, np.intp)
        at = np.minimum(np.searchsorted(self._hashes, hashes), self._hashes.size - 1)
        return np.where(self._hashes[at] == hashes, self._hash_ids[at], -1)

    def _sync_rows(self) -> None:
        """Extend the padded word rows (for the collision check) to every tag."""
        have = self._rows.shape[0]
        if have == len(self._raw):
            return
        rows = np.zeros((len(self._raw) - have, _WORDS), np.uint64)
        lengths = np.zeros(len(self._raw) - have, np.intp)
        for i, raw in enumerate(self._raw[have:]):
            lengths[i] = len(raw)
            head = raw[: 8 * _WORDS]
            padded = head + bytes(-len(head) % 8)
            rows[i, : len(padded) // 8] = np.frombuffer(padded, "<u8")
        self._rows = np.concatenate([self._rows, rows])
        self._row_lengths = np.concatenate([self._row_lengths, lengths])
