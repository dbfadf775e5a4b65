"""Fast generation of large TensorBoard event files for the benchmarks.

Events are serialised with tensorboard's protos (one reused message per tag, so about
half a microsecond each) and framed as TFRecords, with the CRC-32C of every record
computed with numpy across all records of one length at once: a million records take a
few seconds, none of which is timed by the benchmark.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import numpy.typing as npt

U8 = npt.NDArray[np.uint8]
U32 = npt.NDArray[np.uint32]

TAGS = ("loss/train", "loss/val", "accuracy/val", "lr")
WALL0 = 1_700_000_000.0
_POLY = 0x82F63B78  # CRC-32C (Castagnoli), reflected


def _crc_table() -> U32:
    table = np.zeros(256, np.uint32)
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ _POLY if c & 1 else c >> 1
        table[i] = c
    return table


_TABLE = _crc_table()


def masked_crc32c_rows(rows: U8) -> U32:
    """TFRecord's masked CRC-32C of each row of an (n, length) uint8 array."""
    crc = np.full(rows.shape[0], 0xFFFFFFFF, np.uint32)
    for j in range(rows.shape[1]):
        crc = _TABLE[(crc ^ rows[:, j]) & 0xFF] ^ (crc >> np.uint32(8))
    crc ^= np.uint32(0xFFFFFFFF)
    rotated = (crc >> np.uint32(15)) | (crc << np.uint32(17))
    return (rotated.astype(np.uint64) + 0xA282EAD8).astype(np.uint32)


def frame(records: list[bytes]) -> bytes:
    """TFRecord framing: length, masked CRC of the length, data, masked CRC of the data."""
    lengths = np.fromiter((len(r) for r in records), np.int64, len(records))
    data_crc = np.zeros(len(records), np.uint32)
    headers: dict[int, bytes] = {}
    for length in np.unique(lengths).tolist():
        idx = np.flatnonzero(lengths == length)
        rows = np.frombuffer(b"".join(records[i] for i in idx), np.uint8).reshape(-1, length)
        data_crc[idx] = masked_crc32c_rows(rows)
        head = struct.pack("<Q", length)
        crc = masked_crc32c_rows(np.frombuffer(head, np.uint8).reshape(1, 8))
        headers[length] = head + struct.pack("<I", int(crc[0]))
    footers = data_crc.astype("<u4").tobytes()
    parts: list[bytes] = []
    for i, record in enumerate(records):
        parts += (headers[len(record)], record, footers[4 * i : 4 * i + 4])
    return b"".join(parts)


def _file_version() -> bytes:
    from tensorboard.compat.proto import event_pb2

    event = event_pb2.Event(wall_time=WALL0, file_version="brain.Event:2")
    data: bytes = event.SerializeToString()
    return data


def scalar_records(
    steps: Iterable[int], *, tf2: bool, seed: int = 0, first: bool = True
) -> list[bytes]:
    """One event per (step, tag), as torch (simple_value) or TF2 (tensor scalars) logs them.

    TF2 events hold a DT_FLOAT scalar tensor in ``tensor_content``; each tag's first
    event (when ``first``) carries the scalars plugin metadata.
    """
    from tensorboard.compat.proto import event_pb2
    from tensorboard.compat.proto import types_pb2
    from tensorboard.plugins.scalar import metadata

    steps = list(steps)
    rng = np.random.default_rng(seed)
    values = rng.random((len(steps), len(TAGS)), dtype=np.float32)
    events = []
    for tag in TAGS:
        event = event_pb2.Event()
        value = event.summary.value.add(tag=tag)
        if tf2:
            value.tensor.dtype = types_pb2.DT_FLOAT
            value.tensor.tensor_shape.SetInParent()
        events.append((event, value))
    out: list[bytes] = []
    for i, step in enumerate(steps):
        wall = WALL0 + 0.01 * step
        row = values[i]
        for j, (event, value) in enumerate(events):
            event.wall_time = wall
            event.step = step
            if tf2:
                value.tensor.tensor_content = row[j : j + 1].tobytes()
                if first and i == 0:
                    value.metadata.CopyFrom(metadata.create_summary_metadata("", ""))
                elif value.HasField("metadata"):
                    value.ClearField("metadata")
            else:
                value.simple_value = float(row[j])
            out.append(event.SerializeToString())
    return out


def write_run(directory: Path, steps: int, *, tf2: bool, seed: int = 0) -> Path:
    """One run directory with one event file of ``steps`` x len(TAGS) scalars."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "events.out.tfevents.1700000000.bench-host.1.0"
    records = [_file_version(), *scalar_records(range(steps), tf2=tf2, seed=seed)]
    path.write_bytes(frame(records))
    return path


def append_records(path: Path, first_step: int, steps: int, seed: int = 1) -> int:
    """Append ``steps`` x len(TAGS) torch-style scalars to ``path``; returns the count."""
    records = scalar_records(range(first_step, first_step + steps), tf2=False, seed=seed)
    with path.open("ab") as f:
        f.write(frame(records))
    return len(records)
