"""Vectorised decoding of the common one-scalar ``Event`` layouts, all records at once.

Writers serialise fields in field-number order, so nearly every scalar record of a
TensorBoard file has the same shape::

    Event   { 09 wall_time:f64 | 10 step:varint | 2a len Summary }
    Summary { 0a len Value }                                   exactly one value
    Value   { 0a len tag | 15 simple_value:f32                 torch, tensorboardX
                         | 42 len TensorProto                  torch new_style, TF2/Keras
                         [ 4a len SummaryMetadata ] }
    Tensor  { 08 dtype | [12 00] empty shape |
              22 n content | 2a 04 f32 | 2d f32 | 32 08 f64 | 31 f64 }

:func:`decode` walks that shape for every record in lock step: one numpy array of
cursors, one pass per field, each pass a gather plus a few comparisons. A record that
deviates anywhere (another field order, several values, a session log, a shape with
dimensions, varint-typed values, a tag over 64 bytes, ...) is simply marked not ``ok``
and left to the general decoder (:mod:`advisor.sources.protowire`), which gives the same
answer more slowly. Nothing here trusts the bytes: cursors are clamped to their record,
so garbage can only produce "not ok".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from advisor.sources.tfrecord import HEADER
from advisor.sources.tfrecord import Buf
from advisor.sources.tfrecord import u32_at
from advisor.sources.tfrecord import u64_at

Idx = npt.NDArray[np.intp]
Mask = npt.NDArray[np.bool_]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

MAX_TAG = 64  # longer tags take the general decoder (keeps the hashed tag rows short)

# Bytes of one element by TensorFlow dtype code; 0 where the fast path does not decode.
_ITEMSIZE = np.zeros(256, np.intp)
_ITEMSIZE[[1, 2, 3, 9, 19]] = [4, 8, 4, 8, 2]  # float, double, int32, int64, half


@dataclass(frozen=True, slots=True)
class Columns:
    """Per record: whether the fast path decoded it, and what it found.

    Every array has one entry per record; entries where ``ok`` is False are meaningless.
    """

    ok: Mask
    wall_time: F64
    step: I64
    value: F64
    tag_off: Idx
    tag_len: Idx
    tensor: Mask  # the value came from a tensor (it needs the tag's plugin to count)
    metadata: Mask  # the value carries SummaryMetadata


def _varint2(raw: npt.NDArray[np.uint8], pos: Idx) -> tuple[Idx, Idx | int]:
    """Decode 1- or 2-byte varints at ``pos``: values and sizes (size 0: longer).

    The size is the int 1 when every varint has one byte (the common case, cheaper).
    """
    b0 = raw[pos].astype(np.intp)
    one = b0 < 0x80
    if one.all():
        return b0, 1
    b1 = raw[pos + 1].astype(np.intp)
    value = np.where(one, b0, (b0 & 0x7F) | (b1 << 7))
    size = np.where(one, 1, np.where(b1 < 0x80, 2, 0))
    return value, size


def _varint64(raw: npt.NDArray[np.uint8], pos: Idx) -> tuple[I64, Idx]:
    """Decode varints of up to 10 bytes at ``pos``: values as int64, sizes (0: invalid)."""
    value = np.zeros(pos.shape[0], np.uint64)
    size = np.zeros(pos.shape[0], np.intp)
    active = np.ones(pos.shape[0], np.bool_)
    for k in range(10):
        byte = raw[pos + k]
        part = (byte & np.uint8(0x7F)).astype(np.uint64) << np.uint64(7 * k)
        value |= np.where(active, part, np.uint64(0))
        size[active] = k + 1
        active &= byte >= 0x80
        if not active.any():
            break
    size[active] = 0
    return value.view(np.int64), size


def decode(buf: Buf, offsets: Idx, lengths: Idx) -> Columns:
    """Decode the records at ``offsets`` (their data lengths given) where they fit the shape.

    ``buf`` must hold every record entirely, followed by at least ``PAD`` bytes.
    """
    raw = np.frombuffer(buf, np.uint8)
    u32 = u32_at(buf)
    u64 = u64_at(buf)
    n = offsets.shape[0]
    end = offsets + HEADER + lengths
    c = offsets + HEADER

    has = raw[c] == 0x09
    wall_time = np.where(has, u64[c + 1].view(np.float64), 0.0)
    c += has * 9
    has = raw[c] == 0x10
    step, step_size = _varint64(raw, c + 1)
    ok = ~has | (step_size > 0)
    step = np.where(has, step, 0)
    c += has * (1 + step_size)

    # Summary, then exactly one Value: both must run to the end of the record.
    for key in (0x2A, 0x0A):
        ok &= raw[c] == key
        inner, size = _varint2(raw, c + 1)
        ok &= size > 0
        c += 1 + size
        ok &= c + inner == end
        np.minimum(c, end, out=c)

    ok &= raw[c] == 0x0A
    tag_len, size = _varint2(raw, c + 1)
    ok &= (size > 0) & (tag_len <= MAX_TAG)
    tag_off = c + 1 + size
    c = tag_off + tag_len
    ok &= c < end  # a value must follow the tag
    np.minimum(c, end, out=c)

    kind = raw[c]
    simple = kind == 0x15
    tensor = kind == 0x42
    ok &= simple | tensor
    value = np.zeros(n, np.float64)
    if simple.any():
        value[simple] = u32[c[simple] + 1].view(np.float32)
    c_after = c + 5
    if tensor.any():
        where = np.flatnonzero(tensor & ok)
        t_ok, t_value, t_end = _decode_tensors(raw, u64, c[where], end[where])
        ok[where] &= t_ok
        value[where] = t_value
        c_after[where] = t_end
    ok &= c_after <= end
    c = np.minimum(c_after, end)

    metadata = (c < end) & (raw[c] == 0x4A)
    meta_len, size = _varint2(raw, c + 1)
    ok &= ~metadata | (size > 0)
    c = np.where(metadata, c + 1 + size + meta_len, c)
    ok &= c == end
    return Columns(ok, wall_time, step, value, tag_off, tag_len, tensor, metadata)


def _decode_tensors(
    raw: npt.NDArray[np.uint8], u64: npt.NDArray[np.uint64], at: Idx, end: Idx
) -> tuple[Mask, F64, Idx]:
    """Decode the scalar TensorProto fields whose key byte (0x42) is at ``at``."""
    size_len, size = _varint2(raw, at + 1)
    t = at + 1 + size
    t_end = t + size_len
    ok = t_end <= end
    ok &= size > 0
    t = np.minimum(t, end)  # fixed steps from here stay within the buffer's padding

    ok &= raw[t] == 0x08
    dtype = raw[t + 1].astype(np.intp)
    t += 2
    shape = raw[t] == 0x12
    ok &= ~shape | (raw[t + 1] == 0)  # only an empty shape (a scalar) here
    t += shape * 2

    key = raw[t]
    width = raw[t + 1].astype(np.intp)
    itemsize = _ITEMSIZE[dtype]
    content = (key == 0x22) & (width == itemsize) & (itemsize > 0)
    packed_f = (key == 0x2A) & (width == 4) & (dtype == 1)
    packed_d = (key == 0x32) & (width == 8) & (dtype == 2)
    loose_f = (key == 0x2D) & (dtype == 1)
    loose_d = (key == 0x31) & (dtype == 2)
    loose = loose_f | loose_d
    ok &= content | packed_f | packed_d | loose
    start = np.where(loose, t + 1, t + 2)
    stop = start + np.where(loose_f, 4, np.where(loose_d, 8, width))
    ok &= stop == t_end

    word = u64[np.minimum(start, end)]
    low32 = word.astype(np.uint32)  # the low 4 bytes
    value = np.zeros(at.shape[0], np.float64)
    for code in (1, 2, 3, 9, 19):
        sel = dtype == code
        if sel.any():
            value[sel] = _as_dtype(code, word[sel], low32[sel])
    return ok, value, np.minimum(t_end, end)


def _as_dtype(code: int, word: npt.NDArray[np.uint64], low32: npt.NDArray[np.uint32]) -> F64:
    """Reinterpret little-endian element bytes (in ``word``) as dtype ``code``, as float64."""
    if code == 1:
        return low32.view(np.float32).astype(np.float64)
    if code == 2:
        return word.view(np.float64)
    if code == 3:
        return low32.view(np.int32).astype(np.float64)
    if code == 9:
        return word.view(np.int64).astype(np.float64)
    return low32.astype(np.uint16).view(np.float16).astype(np.float64)
