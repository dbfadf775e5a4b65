"""A tiny protobuf wire-format decoder, and the few TensorBoard messages the advisor reads.

The general part (:func:`read_varint`, :func:`fields`, the ``packed_*`` helpers) knows
only the wire format: varints, fixed 32/64-bit words and length-delimited bytes. The
message part decodes just the fields we need, with proto3 semantics: a scalar field that
occurs twice keeps its last value, a message field that occurs twice is merged (parsing
the concatenation of its occurrences is exactly a merge), a repeated field accepts both
packed and unpacked encodings.

Field numbers (checked against ``tensorboard/compat/proto`` and the hparams plugin):
``Event``: wall_time=1 double, step=2 int64, file_version=3, summary=5, session_log=7
(``SessionLog``: status=1, START=1). ``Summary``: value=1. ``Summary.Value``: tag=1,
simple_value=2 float, node_name=7, tensor=8, metadata=9. ``SummaryMetadata``:
plugin_data=1 (plugin_name=1, content=2). ``TensorProto``: dtype=1, tensor_shape=2
(dim=2 (size=1), unknown_rank=3), tensor_content=4, float_val=5, double_val=6,
int_val=7, int64_val=10, bool_val=11, half_val=13, uint32_val=16, uint64_val=17.
``HParamsPluginData``: session_start_info=3 (hparams=1, a map to
``google.protobuf.Value``: number_value=2, string_value=3, bool_value=4).

Malformed input raises :class:`WireError` and nothing else.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from dataclasses import dataclass
from dataclasses import field

import numpy as np

VARINT, FIXED64, LEN, FIXED32 = 0, 1, 2, 5
SESSION_START = 1

_F32 = struct.Struct("<f")
_F64 = struct.Struct("<d")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")

Wire = int | bytes


class WireError(Exception):
    """The bytes are not a valid encoding of the expected message."""


def read_varint(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """Decode the varint at ``pos``; return it (mod 2**64) and the position after it."""
    result = 0
    shift = 0
    while True:
        if pos >= end:
            raise WireError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if byte < 0x80:
            return result & 0xFFFFFFFFFFFFFFFF, pos
        shift += 7
        if shift >= 70:
            raise WireError("varint longer than 10 bytes")


def fields(buf: bytes) -> Iterator[tuple[int, int, Wire]]:
    """Yield ``(field number, wire type, value)`` for each field of one message.

    A varint or fixed field's value is an unsigned int; a length-delimited one's is its
    bytes. Groups (wire types 3 and 4, unused by TensorBoard) are rejected.
    """
    pos = 0
    end = len(buf)
    while pos < end:
        key, pos = read_varint(buf, pos, end)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise WireError("field number 0")
        if wire == VARINT:
            value, pos = read_varint(buf, pos, end)
            yield number, wire, value
        elif wire == FIXED64:
            if pos + 8 > end:
                raise WireError("truncated fixed64")
            yield number, wire, _U64.unpack_from(buf, pos)[0]
            pos += 8
        elif wire == FIXED32:
            if pos + 4 > end:
                raise WireError("truncated fixed32")
            yield number, wire, _U32.unpack_from(buf, pos)[0]
            pos += 4
        elif wire == LEN:
            size, pos = read_varint(buf, pos, end)
            if size > end - pos:
                raise WireError("length past the end of the message")
            yield number, wire, buf[pos : pos + size]
            pos += size
        else:
            raise WireError(f"unsupported wire type {wire}")


def packed_varints(data: bytes) -> list[int]:
    """Decode a packed repeated varint field."""
    out = []
    pos = 0
    while pos < len(data):
        value, pos = read_varint(data, pos, len(data))
        out.append(value)
    return out


def packed_fixed(data: bytes, width: int) -> list[int]:
    """Decode a packed repeated fixed32 (``width`` 4) or fixed64 (8) field."""
    if len(data) % width:
        raise WireError("packed fixed field of odd length")
    code = f"<{len(data) // width}{'I' if width == 4 else 'Q'}"
    return list(struct.unpack(code, data))


def as_int64(value: int) -> int:
    """Reinterpret an unsigned 64-bit varint as a two's-complement int64."""
    return value - (1 << 64) if value >= 1 << 63 else value


def as_float(value: int) -> float:
    """Reinterpret the bits of a fixed32 as a float32."""
    return float(_F32.unpack(_U32.pack(value))[0])


def as_double(value: int) -> float:
    """Reinterpret the bits of a fixed64 as a float64."""
    return float(_F64.unpack(_U64.pack(value))[0])


def _bytes(value: Wire) -> bytes:
    if not isinstance(value, bytes):
        raise WireError("expected a length-delimited field")
    return value


def _text(value: Wire) -> str:
    return _bytes(value).decode("utf-8", "replace")


@dataclass(slots=True)
class SummaryValue:
    """The parts of one ``Summary.Value`` that matter here."""

    tag: bytes = b""  # raw: the caller decides how to decode it
    simple_value: float | None = None
    tensor: bytes | None = None
    plugin_name: str | None = None  # None when the value carries no metadata
    plugin_content: bytes = b""


@dataclass(slots=True)
class Event:
    """The parts of one ``Event`` that matter here."""

    wall_time: float = 0.0
    step: int = 0
    values: list[SummaryValue] = field(default_factory=list)
    session_status: int = 0


def decode_event(data: bytes) -> Event:
    """Decode an ``Event`` record.

    Raises:
        WireError: the bytes are not a valid Event.
    """
    try:
        event = Event()
        summary = b""
        session_log = b""
        for number, wire, value in fields(data):
            if number == 1 and wire == FIXED64:
                event.wall_time = as_double(int(value))
            elif number == 2 and wire == VARINT:
                event.step = as_int64(int(value))
            elif number == 5:
                summary += _bytes(value)
            elif number == 7:
                session_log += _bytes(value)
        if summary:
            for number, _, value in fields(summary):
                if number == 1:
                    event.values.append(_decode_value(_bytes(value)))
        if session_log:
            for number, wire, value in fields(session_log):
                if number == 1 and wire == VARINT:
                    event.session_status = int(value)
        return event
    except (ValueError, IndexError, OverflowError, struct.error) as err:
        raise WireError(str(err)) from err


def _decode_value(data: bytes) -> SummaryValue:
    out = SummaryValue()
    node_name = b""
    tensor: bytes | None = None
    metadata: bytes | None = None
    for number, wire, value in fields(data):
        if number == 1:
            out.tag = _bytes(value)
        elif number == 2 and wire == FIXED32:
            out.simple_value = as_float(int(value))
        elif number == 7:
            node_name = _bytes(value)
        elif number == 8:
            tensor = (tensor or b"") + _bytes(value)
        elif number == 9:
            metadata = (metadata or b"") + _bytes(value)
    out.tensor = tensor
    if tensor is not None and not out.tag:
        out.tag = node_name  # legacy tensor summaries named by node, as TensorBoard does
    if metadata is not None:
        out.plugin_name, out.plugin_content = _decode_metadata(metadata)
    return out


def _decode_metadata(data: bytes) -> tuple[str, bytes]:
    plugin_data = b""
    for number, _, value in fields(data):
        if number == 1:
            plugin_data += _bytes(value)
    name, content = "", b""
    for number, _, value in fields(plugin_data):
        if number == 1:
            name = _text(value)
        elif number == 2:
            content = _bytes(value)
    return name, content


# dtype code -> (numpy dtype, typed field holding values). bfloat16 (14) is handled apart.
_DTYPES: dict[int, tuple[str, int]] = {
    1: ("<f4", 5),
    2: ("<f8", 6),
    3: ("<i4", 7),
    4: ("u1", 7),
    5: ("<i2", 7),
    6: ("i1", 7),
    9: ("<i8", 10),
    10: ("?", 11),
    17: ("<u2", 7),
    19: ("<f2", 13),
    22: ("<u4", 16),
    23: ("<u8", 17),
}
_BFLOAT16 = 14
NUMERIC_DTYPES = frozenset([*_DTYPES, _BFLOAT16])


def tensor_scalar(data: bytes) -> tuple[int, float | None]:
    """Decode a ``TensorProto``; return its dtype and its value if it is one number.

    The value is None unless the shape has exactly one element and the dtype is numeric.
    Values follow ``tensorboard.util.tensor_util.make_ndarray``: ``tensor_content`` wins
    when present, else the typed field of the dtype. A tensor without any value (which
    TensorFlow would read as zero but ``make_ndarray`` rejects) is not a number here.

    Raises:
        WireError: the bytes are not a valid TensorProto.
    """
    try:
        return _tensor_scalar(data)
    except (ValueError, IndexError, OverflowError, struct.error) as err:
        raise WireError(str(err)) from err


def _tensor_scalar(data: bytes) -> tuple[int, float | None]:
    dtype = 0
    shape = b""
    content = b""
    typed: dict[int, list[tuple[int, Wire]]] = {}  # raw: decoded only for a scalar
    for number, wire, value in fields(data):
        if number == 1 and wire == VARINT:
            dtype = int(value)
        elif number == 2:
            shape += _bytes(value)
        elif number == 4:
            content = _bytes(value)
        elif number in (5, 6, 7, 10, 11, 13, 16, 17):
            typed.setdefault(number, []).append((wire, value))
    if _num_elements(shape) != 1 or dtype not in NUMERIC_DTYPES:
        return dtype, None
    if dtype == _BFLOAT16:
        if content:
            bits = int.from_bytes(content, "little") if len(content) == 2 else None
        else:
            halves = _repeated(13, typed)
            bits = halves[0] & 0xFFFF if len(halves) == 1 else None
        return dtype, None if bits is None else as_float(bits << 16)
    np_dtype, number = _DTYPES[dtype]
    if content:
        if len(content) != np.dtype(np_dtype).itemsize:
            return dtype, None
        return dtype, float(np.frombuffer(content, np_dtype)[0])
    values = _repeated(number, typed)
    if len(values) != 1:
        return dtype, None
    return dtype, _typed_value(np_dtype, number, values[0])


def _repeated(number: int, typed: dict[int, list[tuple[int, Wire]]]) -> list[int]:
    """The values of a repeated numeric field, from its packed and unpacked occurrences."""
    out: list[int] = []
    width = {5: 4, 6: 8}.get(number)
    for wire, value in typed.get(number, []):
        if wire == LEN:
            raw = _bytes(value)
            out.extend(packed_fixed(raw, width) if width else packed_varints(raw))
        else:
            out.append(int(value))
    return out


def _typed_value(np_dtype: str, number: int, raw: int) -> float:
    if number == 5:
        return as_float(raw)
    if number == 6:
        return as_double(raw)
    if number == 13:
        return float(np.array([raw & 0xFFFF], np.uint16).view(np.float16)[0])
    if number == 11:
        return 1.0 if raw else 0.0
    bits = np.dtype(np_dtype).itemsize * 8
    raw &= (1 << bits) - 1
    if np_dtype[-2] == "i" and raw >= 1 << (bits - 1):  # signed: two's complement
        raw -= 1 << bits
    return float(raw)


def _num_elements(shape: bytes) -> int:
    total = 1
    for number, wire, value in fields(shape):
        if number == 3 and wire == VARINT and value:
            return -1  # unknown rank
        if number == 2:
            size = 0
            for sub, sub_wire, sub_value in fields(_bytes(value)):
                if sub == 1 and sub_wire == VARINT:
                    size = as_int64(int(sub_value))
            if size < 0:
                return -1
            total *= size
    return total


def decode_hparams(content: bytes) -> dict[str, float | str | bool]:
    """The hyper-parameters in an hparams plugin's ``session_start_info``, if any.

    Raises:
        WireError: the bytes are not a valid ``HParamsPluginData``.
    """
    try:
        start_info = b""
        for number, _, value in fields(content):
            if number == 3:
                start_info += _bytes(value)
        out: dict[str, float | str | bool] = {}
        for number, _, value in fields(start_info):
            if number != 1:
                continue
            key, item = "", b""
            for sub, _, sub_value in fields(_bytes(value)):
                if sub == 1:
                    key = _text(sub_value)
                elif sub == 2:
                    item += _bytes(sub_value)
            parsed = _struct_value(item)
            if parsed is not None:
                out[key] = parsed
        return out
    except (ValueError, IndexError, OverflowError, struct.error) as err:
        raise WireError(str(err)) from err


def _struct_value(data: bytes) -> float | str | bool | None:
    kind: float | str | bool | None = None
    for number, wire, value in fields(data):
        # ``kind`` is a oneof: the last member present wins.
        if number == 2 and wire == FIXED64:
            kind = as_double(int(value))
        elif number == 3:
            kind = _text(value)
        elif number == 4 and wire == VARINT:
            kind = bool(value)
        elif number in (1, 5, 6):
            kind = None  # null, struct or list: not a usable hyper-parameter
    return kind
