"""The small protobuf decoder agrees with the real protobuf messages, and fails cleanly."""

from __future__ import annotations

import contextlib
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from tensorboard.compat.proto import event_pb2
from tensorboard.compat.proto import tensor_pb2
from tensorboard.compat.proto import tensor_shape_pb2
from tensorboard.plugins.hparams import plugin_data_pb2
from tensorboard.util import tensor_util

from advisor.sources import protowire

INT64 = st.integers(-(2**63), 2**63 - 1)


@settings(max_examples=60, deadline=None)
@given(
    wall=st.floats(allow_nan=False),
    step=INT64,
    values=st.lists(st.tuples(st.text(max_size=20), st.floats(width=32)), max_size=4),
    status=st.sampled_from([None, 0, 1, 2]),
)
def test_event_matches_protobuf(
    wall: float, step: int, values: list[tuple[str, float]], status: int | None
) -> None:
    """wall_time, step, simple values and the session status decode as protobuf does."""
    event = event_pb2.Event(wall_time=wall, step=step)
    for tag, value in values:
        event.summary.value.add(tag=tag, simple_value=value)
    if status is not None:  # summary and session_log are one oneof: this drops the values
        event.session_log.status = status
    data = event.SerializeToString()
    truth = event_pb2.Event.FromString(data)
    got = protowire.decode_event(data)
    assert (got.wall_time, got.step, got.session_status) == (wall, step, status or 0)
    bits = struct.Struct("<f").pack
    got_values = [(v.tag.decode(), v.simple_value) for v in got.values]
    assert [tag for tag, _ in got_values] == [v.tag for v in truth.summary.value]
    assert [bits(v) for _, v in got_values if v is not None] == [
        bits(v.simple_value) for v in truth.summary.value
    ]  # the same float32 bits (-0.0 and NaN included)


def test_metadata_and_merged_summaries() -> None:
    """Plugin metadata is read, and a summary field given twice is merged."""
    event = event_pb2.Event(step=3)
    value = event.summary.value.add(tag="a", simple_value=1.0)
    value.metadata.plugin_data.plugin_name = "scalars"
    value.metadata.plugin_data.content = b"\x01"
    second = event_pb2.Event()
    second.summary.value.add(tag="b", simple_value=2.0)
    got = protowire.decode_event(event.SerializeToString() + second.SerializeToString())
    assert [(v.tag, v.plugin_name, v.plugin_content) for v in got.values] == [
        (b"a", "scalars", b"\x01"),
        (b"b", None, b""),
    ]
    merged = event_pb2.Event.FromString(event.SerializeToString() + second.SerializeToString())
    assert [v.tag for v in merged.summary.value] == ["a", "b"]


def tensor(dtype: int, shape: tuple[int, ...] = (), **fields: object) -> tensor_pb2.TensorProto:
    proto = tensor_pb2.TensorProto(dtype=dtype, **fields)
    proto.tensor_shape.CopyFrom(
        tensor_shape_pb2.TensorShapeProto(
            dim=[tensor_shape_pb2.TensorShapeProto.Dim(size=s) for s in shape]
        )
    )
    return proto


CASES = [
    tensor(1, tensor_content=np.float32(1.5).tobytes()),
    tensor(2, (1,), tensor_content=np.float64(-2.25).tobytes()),
    tensor(19, tensor_content=np.float16(0.125).tobytes()),
    tensor(3, tensor_content=np.int32(-7).tobytes()),
    tensor(9, tensor_content=np.int64(-(2**40)).tobytes()),
    tensor(1, float_val=[3.5]),
    tensor(2, (1, 1), double_val=[1e300]),
    tensor(19, half_val=[int(np.float16(-3.0).view(np.uint16))]),
    tensor(3, int_val=[-5]),
    tensor(9, int64_val=[2**62]),
    tensor(6, int_val=[-128]),
    tensor(4, int_val=[255]),
    tensor(10, bool_val=[True]),
    tensor(1, (3,), tensor_content=np.zeros(3, np.float32).tobytes()),
    tensor(1, float_val=[1.0, 2.0]),
    tensor(1, tensor_content=b"\x00\x00"),
    tensor(7, string_val=[b"text"]),
    tensor(1, (0,)),
]


@pytest.mark.parametrize("proto", CASES)
def test_tensor_scalar_matches_make_ndarray(proto: tensor_pb2.TensorProto) -> None:
    """One-element numeric tensors decode to make_ndarray's value; others to None."""
    dtype, value = protowire.tensor_scalar(proto.SerializeToString())
    assert dtype == proto.dtype
    try:
        array = tensor_util.make_ndarray(proto)
    except ValueError:  # TensorBoard cannot build it either
        assert value is None
        return
    if array.size == 1 and array.dtype.kind in "fiub":
        assert value == float(array.reshape(-1)[0])
    else:
        assert value is None


def test_tensor_scalar_beyond_make_ndarray() -> None:
    """Unsigned 32/64-bit and bfloat16 scalars count; a tensor without values does not."""
    assert protowire.tensor_scalar(tensor(22, uint32_val=[2**32 - 1]).SerializeToString()) == (
        22,
        2.0**32 - 1,
    )
    assert protowire.tensor_scalar(tensor(23, uint64_val=[2**64 - 1]).SerializeToString()) == (
        23,
        2.0**64,
    )
    bf16 = tensor(14, tensor_content=np.float32(-1.5).tobytes()[2:])
    assert protowire.tensor_scalar(bf16.SerializeToString()) == (14, -1.5)
    assert protowire.tensor_scalar(tensor(1).SerializeToString()) == (1, None)


def test_unpacked_repeated_fields() -> None:
    """Repeated numbers are read unpacked as well as packed."""
    raw = b"\x08\x01\x2d" + struct.pack("<f", 2.5)  # float_val as a lone fixed32
    assert tensor_pb2.TensorProto.FromString(raw).float_val == [2.5]
    assert protowire.tensor_scalar(raw) == (1, 2.5)
    raw = b"\x08\x09\x50\x07"  # int64_val as a lone varint
    assert protowire.tensor_scalar(raw) == (9, 7.0)


def test_hparams_match_plugin_data() -> None:
    """session_start_info hyper-parameters decode to numbers, strings and booleans."""
    data = plugin_data_pb2.HParamsPluginData()
    info = data.session_start_info
    info.hparams["lr"].number_value = 0.1
    info.hparams["opt"].string_value = "adam"
    info.hparams["bn"].bool_value = False
    info.hparams["none"].null_value = 0
    assert protowire.decode_hparams(data.SerializeToString()) == {
        "lr": 0.1,
        "opt": "adam",
        "bn": False,
    }
    assert protowire.decode_hparams(b"") == {}


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_garbage_raises_only_wire_error(data: bytes) -> None:
    """Arbitrary bytes decode or raise WireError, nothing else."""
    for decode in (protowire.decode_event, protowire.tensor_scalar, protowire.decode_hparams):
        with contextlib.suppress(protowire.WireError):
            decode(data)
