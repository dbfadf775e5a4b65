"""Micro benchmark of the TensorBoard event file loader.

Generates, in a temporary directory, a torch-style file (``simple_value``, as
``SummaryWriter.add_scalar`` writes it) and a TF2-style file (DT_FLOAT scalar tensors in
``tensor_content``, plugin metadata on each tag's first event, as Keras writes it):
4 tags interleaved x 250,000 steps = 1,000,000 scalars each. Records are assembled from
byte templates (the real writers need minutes for a million points); the templates are
checked against ``event_pb2`` serialisation first. Then it prints, per file: scalars/s of
a full read (best of 3), the peak traced memory per kept scalar, the time to pick up 1,000
appended scalars (median of 7 appends), and the time of an idle poll (median of 200).

Usage: ``python benchmarks/tfevents_micro.py [--steps N]``
"""

from __future__ import annotations

import argparse
import struct
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import numpy as np

from advisor.sources.crc32c import masked_crc32c_spans
from advisor.sources.crc32c import masked_length_crc
from advisor.sources.tfevents import TfEventsLoader

TAGS = (b"train/loss", b"train/accuracy", b"val/loss", b"lr")
_SCALARS_METADATA = b"\x0a\x09\x0a\x07scalars\x20\x01"  # plugin_data{scalars}, data_class=1


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _delimited(key: int, payload: bytes) -> bytes:
    return bytes([key]) + _varint(len(payload)) + payload


def torch_event(tag: bytes, step: int, wall_time: float, value: float, first: bool) -> bytes:
    """An Event with one ``simple_value``, byte for byte as protobuf serialises it."""
    val = _delimited(0x0A, tag) + b"\x15" + struct.pack("<f", value)
    return _event(step, wall_time, val)


def tf2_event(tag: bytes, step: int, wall_time: float, value: float, first: bool) -> bytes:
    """An Event with one DT_FLOAT scalar tensor in ``tensor_content`` (TF2/Keras)."""
    tensor = b"\x08\x01\x12\x00" + _delimited(0x22, struct.pack("<f", value))
    val = _delimited(0x0A, tag) + _delimited(0x42, tensor)
    if first:
        val += _delimited(0x4A, _SCALARS_METADATA)
    return _event(step, wall_time, val)


def _event(step: int, wall_time: float, value_bytes: bytes) -> bytes:
    head = b"\x09" + struct.pack("<d", wall_time)
    if step:
        head += b"\x10" + _varint(step)
    return head + _delimited(0x2A, _delimited(0x0A, value_bytes))


def _check_templates() -> None:
    from tensorboard.compat.proto import event_pb2
    from tensorboard.compat.proto import summary_pb2
    from tensorboard.compat.proto import tensor_pb2
    from tensorboard.compat.proto import tensor_shape_pb2

    for step in (0, 1, 300, 70000):
        event = event_pb2.Event(wall_time=1.7e9 + step, step=step)
        event.summary.value.add(tag="lr", simple_value=0.5)
        assert event.SerializeToString() == torch_event(b"lr", step, 1.7e9 + step, 0.5, True)
        tensor = tensor_pb2.TensorProto(dtype=1, tensor_content=struct.pack("<f", 0.5))
        tensor.tensor_shape.CopyFrom(tensor_shape_pb2.TensorShapeProto())
        event = event_pb2.Event(wall_time=1.7e9 + step, step=step)
        value = event.summary.value.add(tag="lr", tensor=tensor)
        value.metadata.plugin_data.plugin_name = "scalars"
        value.metadata.data_class = summary_pb2.DATA_CLASS_SCALAR
        assert event.SerializeToString() == tf2_event(b"lr", step, 1.7e9 + step, 0.5, True)


def records(datas: list[bytes]) -> bytes:
    """TFRecord framing of many records (CRCs computed vectorised, by length)."""
    lengths = np.array([len(d) for d in datas], np.uint64)
    blob = b"".join(datas)
    starts = np.concatenate(([0], np.cumsum(lengths[:-1]))).astype(np.intp)
    data_crc = np.empty(len(datas), np.uint32)
    padded = np.frombuffer(blob + bytes(8), np.uint8)
    for length in np.unique(lengths).tolist():
        sel = np.flatnonzero(lengths == length)
        data_crc[sel] = masked_crc32c_spans(padded, starts[sel], int(length))
    length_crc = masked_length_crc(lengths)
    pack = struct.Struct("<QI").pack
    parts = []
    for data, length, lcrc, dcrc in zip(
        datas, lengths.tolist(), length_crc.tolist(), data_crc.tolist(), strict=True
    ):
        parts.append(pack(length, lcrc) + data + struct.pack("<I", dcrc))
    return b"".join(parts)


def write_file(path: Path, make: Callable[..., bytes], steps: range) -> None:
    """Append ``len(TAGS) * len(steps)`` scalars to ``path``."""
    datas = []
    for step in steps:
        for k, tag in enumerate(TAGS):
            value = 1.0 / (1 + step) + k
            datas.append(make(tag, step, 1.7e9 + step * 0.01, value, step == 0))
    with path.open("ab") as f:
        f.write(records(datas))


def measure(path: Path, make: Callable[..., bytes], steps: int) -> None:
    expected = steps * len(TAGS)
    fulls = []
    for _ in range(3):  # the best of three: the machine is shared
        loader = TfEventsLoader(path)
        start = time.perf_counter()
        batch = loader.load()
        fulls.append(time.perf_counter() - start)
        assert len(batch.scalars) == expected, (len(batch.scalars), expected)
        del batch
    full = min(fulls)
    tracemalloc.start()
    batch = TfEventsLoader(path).load()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    del batch
    pickups = []
    for k in range(7):  # the median of a few: the machine is shared
        write_file(path, make, range(steps + 250 * k, steps + 250 * (k + 1)))
        start = time.perf_counter()
        appended = loader.load()
        pickups.append(time.perf_counter() - start)
        assert len(appended.scalars) == 1000
    pickup = float(np.median(pickups))
    polls = []
    for _ in range(200):
        start = time.perf_counter()
        idle = loader.load()
        polls.append(time.perf_counter() - start)
    assert len(idle.scalars) == 0
    print(
        f"{path.name}: {expected / full / 1e6:.2f} M scalars/s ({full:.3f} s), "
        f"peak {peak / expected:.1f} B/scalar, "
        f"1,000 appended in {pickup * 1e3:.2f} ms, idle poll {np.median(polls) * 1e6:.1f} us"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=250_000, help="steps per tag")
    args = parser.parse_args()
    _check_templates()
    with tempfile.TemporaryDirectory() as tmp:
        for name, make in (("torch", torch_event), ("tf2", tf2_event)):
            path = Path(tmp) / f"events.out.tfevents.{name}"
            write_file(path, make, range(args.steps))
            measure(path, make, args.steps)


if __name__ == "__main__":
    main()
