"""CRC-32C and TFRecord masking agree with TensorBoard's reference implementation."""

from __future__ import annotations

import os
import struct

import numpy as np
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c as reference

from advisor.sources import crc32c


def test_known_vector() -> None:
    """The standard check value of CRC-32C."""
    assert crc32c.crc32c(b"123456789") == 0xE3069283
    assert crc32c.crc32c(b"") == 0


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=6000))
def test_masked_matches_reference(data: bytes) -> None:
    """Short (byte loop) and longer (row-combined) buffers match TensorBoard's CRC."""
    assert crc32c.masked_crc32c(data) == reference(data)


def test_long_buffers_and_continuation() -> None:
    """The row-combining path is exact at any length, and a CRC can be continued."""
    for n in (4095, 4096, 4097, 65537, 1 << 20):
        data = os.urandom(n)
        assert crc32c.masked_crc32c(data) == reference(data)
        cut = n // 3
        assert crc32c.crc32c(data[cut:], crc32c.crc32c(data[:cut])) == crc32c.crc32c(data)


@settings(max_examples=40, deadline=None)
@given(st.binary(min_size=1, max_size=400), st.data())
def test_spans_match_scalar(data: bytes, draw: st.DataObject) -> None:
    """The vectorised form equals the one-buffer form for every span."""
    length = draw.draw(st.integers(0, len(data)))
    starts = draw.draw(st.lists(st.integers(0, len(data) - length), max_size=20))
    got = crc32c.masked_crc32c_spans(data + bytes(8), np.array(starts, np.intp), length)
    assert got.tolist() == [crc32c.masked_crc32c(data[s : s + length]) for s in starts]


def test_length_crcs() -> None:
    """Length CRCs, from the table below 64 KiB and computed above, match the reference."""
    lengths = [0, 1, 29, 65535, 65536, 1 << 40, 2**64 - 1]
    got = crc32c.masked_length_crc(np.array(lengths, np.uint64)).tolist()
    assert got == [reference(struct.pack("<Q", n)) for n in lengths]
    small = crc32c.masked_length_crc(np.array([5, 7], np.uint64)).tolist()
    assert small == [reference(struct.pack("<Q", n)) for n in (5, 7)]
