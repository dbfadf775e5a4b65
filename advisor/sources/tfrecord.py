"""TFRecord framing over a byte buffer: find records, check their headers, resynchronise.

A record is ``length (u64 LE) | masked_crc32c(length) (u32) | data | masked_crc32c(data)``.
Finding where records start is inherently sequential (each start comes from the previous
length), so :func:`frame` walks a few records with a tight Python loop, and when their
lengths repeat with a short period (4 tags logged in turn give period 4) it hypothesises
the following starts and verifies them all at once with numpy: if every hypothesised
start holds the expected length, each next start is exactly where the previous length
puts it, so the chain is proved by induction. Verification grows geometrically, so a
pattern that breaks (a step varint gaining a byte, a tag logged every N steps) costs only
a short return to the Python loop.

Buffers handed to these functions must be followed by at least :data:`PAD` readable
bytes (zeros), so that fixed-width gathers near the end stay in bounds.
"""

from __future__ import annotations

import struct

import numpy as np
import numpy.typing as npt

from advisor.sources.crc32c import masked_length_crc

Idx = npt.NDArray[np.intp]
Buf = bytearray | bytes

HEADER = 12  # length + its CRC
OVERHEAD = 16  # header + data CRC
PAD = 128  # zero bytes after the valid data of every buffer (see the module docstring)

_LENGTH = struct.Struct("<Q")
_SEQUENTIAL = 16  # records walked in Python before looking for a period
_MAX_PERIOD = 8
_FIRST_CYCLES = 16  # cycles verified by the first vectorised attempt; doubles on success
_SCAN_BLOCK = 256 << 10  # offsets examined at once when resynchronising
_ZERO_LENGTH_CRC = np.uint32(masked_length_crc(np.zeros(1, np.uint64))[0])


def u32_at(buf: Buf) -> npt.NDArray[np.uint32]:
    """A view of the little-endian u32 starting at every byte offset of ``buf``."""
    return np.ndarray((len(buf) - 3,), "<u4", buffer=buf, strides=(1,))


def u64_at(buf: Buf) -> npt.NDArray[np.uint64]:
    """A view of the little-endian u64 starting at every byte offset of ``buf``."""
    return np.ndarray((len(buf) - 7,), "<u8", buffer=buf, strides=(1,))


def _period(lengths: list[int]) -> int:
    """The shortest period (up to ``_MAX_PERIOD``) of ``lengths``, or 0."""
    for p in range(1, _MAX_PERIOD + 1):
        if lengths[p:] == lengths[:-p]:
            return p
    return 0


def frame(buf: Buf, start: int, avail: int, max_len: int) -> tuple[Idx, int]:
    """Start offsets of the consecutive complete records from ``start``.

    Framing stops before the first record that is incomplete within ``avail`` bytes or
    whose length exceeds ``max_len``. Length CRCs are NOT checked here (see
    :func:`check_lengths`), so offsets after a corrupt length may be garbage.

    Returns:
        The start offsets, and the offset where framing stopped.
    """
    unpack = _LENGTH.unpack_from
    parts: list[Idx] = []
    u64 = u64_at(buf)
    pos = start
    while True:
        offsets: list[int] = []
        lengths: list[int] = []
        while len(offsets) < _SEQUENTIAL and pos + HEADER <= avail:
            length = unpack(buf, pos)[0]
            if length > max_len or pos + OVERHEAD + length > avail:
                break
            offsets.append(pos)
            lengths.append(length)
            pos += OVERHEAD + length
        if offsets:
            parts.append(np.array(offsets, np.intp))
        if len(offsets) < _SEQUENTIAL:
            break
        period = _period(lengths)
        if period:
            pos = _jump(u64, parts, pos, avail, lengths[-period:])
    if not parts:
        return np.zeros(0, np.intp), pos
    return np.concatenate(parts), pos


def _jump(
    u64: npt.NDArray[np.uint64], parts: list[Idx], pos: int, avail: int, cycle: list[int]
) -> int:
    """Extend the framing from ``pos`` while the lengths keep repeating ``cycle``."""
    sizes = np.array(cycle, np.intp) + OVERHEAD
    span = int(sizes.sum())
    inner = np.concatenate(([0], np.cumsum(sizes[:-1]))).astype(np.intp)
    expected = np.array(cycle, np.uint64)
    cycles = _FIRST_CYCLES
    while True:
        count = min(cycles, (avail - pos) // span)  # whole cycles that fit entirely
        if count == 0:
            return pos
        starts = (pos + np.arange(count, dtype=np.intp)[:, None] * span + inner).ravel()
        wrong = np.flatnonzero(u64[starts].reshape(count, -1) != expected)
        if wrong.size:
            first = int(wrong[0])
            parts.append(starts[:first])
            return int(starts[first])
        parts.append(starts)
        pos += count * span
        cycles *= 2


def check_lengths(buf: Buf, offsets: Idx) -> int:
    """How many leading ``offsets`` carry a length whose masked CRC verifies."""
    if offsets.size == 0:
        return 0
    lengths = u64_at(buf)[offsets]
    good = masked_length_crc(lengths) == u32_at(buf)[offsets + 8]
    if bool(good.all()):
        return int(offsets.size)
    return int(np.argmin(good))


def length_ok(buf: Buf, pos: int) -> bool:
    """Whether the length at ``pos`` carries a verified masked CRC."""
    return check_lengths(buf, np.array([pos], np.intp)) == 1


def candidates(buf: Buf, lo: int, hi: int, max_len: int) -> Idx:
    """Offsets in ``[lo, hi)`` whose length is at most ``max_len`` and whose CRC verifies.

    Used to resynchronise after a corrupt header; ``hi + HEADER`` must be within the
    valid data. Cheap filters run first: a length below ``max_len`` rules out nearly
    every offset of random bytes, and a zero length must carry its own non-zero CRC,
    which rules out zero-filled stretches (the one input where every offset has a small
    length); the CRC (a table gather for short lengths) checks the rest. Work goes in
    blocks so that the temporaries stay small whatever the window.
    """
    u64 = u64_at(buf)
    u32 = u32_at(buf)
    found: list[Idx] = []
    for start in range(lo, hi, _SCAN_BLOCK):
        stop = min(start + _SCAN_BLOCK, hi)
        lengths = u64[start:stop]
        maybe = lengths <= np.uint64(max_len)
        maybe &= (lengths != 0) | (u32[start + 8 : stop + 8] == _ZERO_LENGTH_CRC)
        at: Idx = np.flatnonzero(maybe).astype(np.intp)
        if at.size:
            at = at[masked_length_crc(lengths[at]) == u32[at + start + 8]] + start
            found.append(at)
    return np.concatenate(found) if found else np.zeros(0, np.intp)
