"""CRC-32C (Castagnoli) as TFRecord files use it, in pure Python and numpy.

TFRecord stores ``masked_crc32c(x) = ((crc >> 15 | crc << 17) + 0xA282EAD8) mod 2**32`` of
each record's 8-byte length and of its data. Three forms are provided:

- :func:`crc32c` for one buffer: a byte loop for short buffers; for long ones the buffer
  is cut into equal rows, the rows are computed at once with numpy and their registers
  are combined (CRC is linear, so ``reg(A + B) = shift_len(B)(reg(A)) ^ reg0(B)``).
- :func:`crc32c_spans` for many equal-length spans of one buffer at once: table-driven,
  two bytes (one column of 16-bit words) per iteration.
- :func:`masked_length_crc` for many record lengths at once (a table for lengths below
  64 KiB, which covers nearly every record, and the vectorised form above it).

No C extension is needed.
"""

from __future__ import annotations

import functools

import numpy as np
import numpy.typing as npt

U32 = npt.NDArray[np.uint32]
U64 = npt.NDArray[np.uint64]
Idx = npt.NDArray[np.intp]
Bytes = bytes | bytearray | memoryview
BufferLike = Bytes | npt.NDArray[np.uint8]

_POLY = 0x82F63B78  # reflected Castagnoli polynomial
_MASK_DELTA = 0xA282EAD8
_SHORT = 4096  # below this many bytes the plain byte loop beats numpy (measured)


def _table8() -> list[int]:
    table = []
    for byte in range(256):
        reg = byte
        for _ in range(8):
            reg = (reg >> 1) ^ (_POLY if reg & 1 else 0)
        table.append(reg)
    return table


_T8_LIST = _table8()
_T8: U32 = np.array(_T8_LIST, dtype=np.uint32)
# Two register steps at once: step(step(v)) == _T16[v & 0xFFFF] ^ (v >> 16), since a step
# is linear and only the low byte feeds the table.
_i16 = np.arange(65536, dtype=np.uint32)
_half = _T8[_i16 & 0xFF] ^ (_i16 >> 8)
_T16: U32 = _T8[_half & 0xFF] ^ (_half >> 8)
del _i16, _half


def mask(crc: int) -> int:
    """TFRecord's masking of a CRC (rotate right by 15, add a constant)."""
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


def mask_array(crc: U32) -> U32:
    """:func:`mask` over an array."""
    rotated = (crc >> np.uint32(15)) | (crc << np.uint32(17))
    return rotated + np.uint32(_MASK_DELTA)  # uint32 addition wraps mod 2**32


def crc32c(data: Bytes, crc: int = 0) -> int:
    """The CRC-32C of ``data``, continuing from ``crc`` (0 for a fresh start)."""
    view = memoryview(data).cast("B")
    reg = crc ^ 0xFFFFFFFF
    if len(view) < _SHORT:
        table = _T8_LIST
        for byte in view:
            reg = table[(reg ^ byte) & 0xFF] ^ (reg >> 8)
    else:
        reg = _long_update(reg, view)
    return reg ^ 0xFFFFFFFF


def masked_crc32c(data: Bytes) -> int:
    """The masked CRC-32C that TFRecord stores after a length and after data."""
    return mask(crc32c(data))


def _registers(buf: BufferLike, starts: Idx, length: int, init: U32 | None = None) -> U32:
    """Raw CRC registers (no final xor) of ``length`` bytes at each of ``starts``.

    One numpy pass per 16-bit column; the caller guarantees ``starts + length`` fit.
    """
    n = int(starts.shape[0])
    reg = np.full(n, 0xFFFFFFFF, np.uint32) if init is None else init.copy()
    if n == 0 or length == 0:
        return reg
    raw = np.frombuffer(buf, np.uint8)
    pairs = length // 2
    if pairs:
        # Unaligned little-endian 16-bit words at every byte offset (a strided view).
        words = np.ndarray((raw.shape[0] - 1,), "<u2", buffer=raw, strides=(1,))
        for j in range(pairs):
            reg ^= words[starts + 2 * j]
            reg = _T16[reg & 0xFFFF] ^ (reg >> np.uint32(16))
    if length % 2:
        reg ^= raw[starts + (length - 1)]
        reg = _T8[reg & 0xFF] ^ (reg >> np.uint32(8))
    return reg


def crc32c_spans(buf: BufferLike, starts: Idx, length: int) -> U32:
    """CRC-32C of ``length`` bytes at each offset in ``starts`` (all within ``buf``)."""
    return _registers(buf, starts, length) ^ np.uint32(0xFFFFFFFF)


def masked_crc32c_spans(buf: BufferLike, starts: Idx, length: int) -> U32:
    """Masked CRC-32C of ``length`` bytes at each offset in ``starts``."""
    return mask_array(crc32c_spans(buf, starts, length))


def _lengths_crc(lengths: U64) -> U32:
    """Masked CRC-32C of each value's 8-byte little-endian encoding."""
    raw = np.ascontiguousarray(lengths, dtype="<u8")
    starts = np.arange(raw.shape[0], dtype=np.intp) * 8
    return masked_crc32c_spans(raw.view(np.uint8), starts, 8)


_LENGTH_TABLE: U32 = _lengths_crc(np.arange(65536, dtype=np.uint64))


def masked_length_crc(lengths: U64) -> U32:
    """The masked CRC that a TFRecord header must carry for each of ``lengths``."""
    small = lengths < np.uint64(65536)
    if bool(small.all()):
        return _LENGTH_TABLE[lengths]
    out = np.empty(lengths.shape[0], np.uint32)
    out[small] = _LENGTH_TABLE[lengths[small]]
    out[~small] = _lengths_crc(lengths[~small])
    return out


@functools.lru_cache(maxsize=8)
def _shift_tables(nbytes: int) -> list[list[int]]:
    """Four byte-indexed tables applying "feed ``nbytes`` zero bytes" to a register.

    Feeding zeros is linear in the register, so it is fixed by the images of the 32 basis
    registers (computed at once over ``nbytes`` zero bytes), combined per byte of input.
    """
    basis = (np.uint32(1) << np.arange(32, dtype=np.uint32)).astype(np.uint32)
    zeros = bytes(nbytes)
    images = _registers(zeros, np.zeros(32, np.intp), nbytes, init=basis)
    values = np.arange(256, dtype=np.uint32)
    tables = []
    for b in range(4):
        table = np.zeros(256, np.uint32)
        for bit in range(8):
            table[(values >> np.uint32(bit)) & np.uint32(1) == 1] ^= images[8 * b + bit]
        tables.append([int(x) for x in table])
    return tables


def _long_update(reg: int, view: memoryview) -> int:
    """Continue register ``reg`` over a long buffer, rows at a time."""
    n = len(view)
    width = max(256, int(n**0.5) & ~1)  # bytes per row; balances numpy and Python work
    rows = n // width
    starts = np.arange(rows, dtype=np.intp) * width
    row_regs = _registers(view, starts, width, init=np.zeros(rows, np.uint32))
    t0, t1, t2, t3 = _shift_tables(width)
    for row_reg in row_regs.tolist():
        reg = (
            t0[reg & 0xFF] ^ t1[(reg >> 8) & 0xFF] ^ t2[(reg >> 16) & 0xFF] ^ t3[reg >> 24]
        ) ^ row_reg
    table = _T8_LIST
    for byte in view[rows * width :]:
        reg = table[(reg ^ byte) & 0xFF] ^ (reg >> 8)
    return reg
