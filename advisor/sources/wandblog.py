"""Weights & Biases run files (``run-<id>.wandb``), read incrementally.

W&B keeps every run, online or offline, in a local transaction log,
``wandb/run-<date>_<time>-<id>/run-<id>.wandb`` (``offline-run-...`` offline). While the
run goes on, the file is written when a 32 KiB block fills and every 15 s (wandb's
``x_transaction_log_flush_interval``, which exists so that tools can read a running run),
so watching a W&B job needs no change to it.

The file (checked against what wandb 0.31.0 writes): a 7-byte header, ``:W&B``, the
magic 0xBEE1 (u16 LE) and version 0 (u8); then LevelDB's log framing with zlib's CRC-32:
32 KiB blocks of chunks ``crc (u32 LE, over the type byte and the data) | length (u16 LE)
| type (u8: 1 full, 2 first, 3 middle, 4 last) | data``. A chunk never crosses a block;
a block's last bytes, when fewer than a chunk header, are zero padding. A full chunk, or
first + middle... + last chunks joined, is one protobuf ``Record``.

Field numbers (checked against wandb 0.31.0's ``wandb_internal_pb2``): ``Record``:
history=2, config=5, metric=12, run=17. ``HistoryRecord``: item=1, step=2
(``HistoryStep``: num=1). ``HistoryItem``: key=1, nested_key=2 (repeated), integer=5
(sint64), number=6 (double), value_json=16. ``ConfigRecord``: update=1 (``ConfigItem``:
key=1, nested_key=2, value_json=16). ``RunRecord``: config=4. ``MetricRecord``:
glob_name=2, step_metric=4.

What is read:

- Every number of every ``run.log()`` row is a point. Its tag is the logged key; a
  nested dict's keys are joined with ``.`` (``{"val": {"loss": x}}`` is ``val.loss``, as
  W&B names it). NaN and infinity are kept (Python's json writes ``NaN``, ``Infinity``);
  text, booleans and media (histograms, images: JSON objects) are not metrics. Keys that
  start with ``_`` are W&B's own; ``_timestamp`` is the wall time.
- The step is the row's ``_step`` (one per ``log()`` call), unless a step metric is
  declared for every key (``define_metric("*", step_metric="trainer/global_step")``, as
  Lightning's and Hugging Face's W&B integrations do), or the first row with numbers
  holds a step key (``step``, ``global_step``, ``iteration``, ``iter``,
  ``training_iteration``: nanoGPT logs ``iter``), as JSON Lines are stepped: then it is
  that key's value in the row, or its last value before (rows before its first value
  are skipped, and reported once). A planned length in steps (``max_iters``) is then on
  the run's own axis, where ``_step`` counts ``log()`` calls. A step metric for some
  keys only (Keras's ``WandbMetricsLogger`` declares ``batch/*`` against
  ``batch/batch_step``) is not taken: the points of a run share one step axis, and the
  other keys would stay on ``_step``.
- The hyper-parameters are the run's config (``wandb.init(config=...)``,
  ``run.config.update``), nested dicts flattened with ``.`` (``optimizer.lr``), given
  once the first row with numbers is read. On ``_step`` a planned number of steps
  (``max_steps``) is left out: ``_step`` counts ``log()`` calls, not the trainer's steps.

Damage: a chunk whose CRC fails, whose type is unknown or that would cross its block is
reported with its byte offset and reading goes on at the next block (LevelDB's own
recovery); so does a record that does not decode. A record cut short at the end of the
file is waited for (W&B flushes whole blocks and, every 15 s, what it has), and reported
when read as final. A file without the header is reported once and not read.
"""

from __future__ import annotations

import json
import math
import os
import struct
import zlib
from pathlib import Path

from advisor.core.planned import unit_of
from advisor.model import HParamValue
from advisor.sources._text import STEP_KEYS
from advisor.sources._text import as_step
from advisor.sources._text import flatten_hparams
from advisor.sources.protowire import FIXED32
from advisor.sources.protowire import FIXED64
from advisor.sources.protowire import LEN
from advisor.sources.protowire import VARINT
from advisor.sources.protowire import WireError
from advisor.sources.protowire import fields
from advisor.sources.protowire import read_varint
from advisor.sources.tail import BATCH_BYTES
from advisor.sources.tail import TailLoader

__all__ = ["MAGIC", "WandbLoader"]

MAGIC = b":W&B\xe1\xbe\x00"  # ident, 0xBEE1 as u16 LE, version 0
_BLOCK = 32 << 10
_CHUNK_HEADER = struct.Struct("<IHB")  # crc, length, type
_DOUBLE = struct.Struct("<d")
_HEAD = _CHUNK_HEADER.size  # 7, the size of the file header too
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4
_TYPE_CRC = tuple(zlib.crc32(bytes([t])) for t in range(5))
# Bytes read from the file at once (a chunk is at most 32 KiB, a record more).
_READ = 1 << 20
# A record longer than this is skipped unread: W&B's history rows are a few hundred
# bytes; only media or a huge config come near it.
MAX_RECORD = 16 << 20
# Config values and history values longer than this are not parsed (media, tables).
_MAX_JSON = 64 << 10
_NUMBER_START = frozenset("-0123456789NI")  # JSON numbers, NaN, Infinity, -Infinity

_HISTORY, _CONFIG, _METRIC, _RUN = 2, 5, 12, 17


class WandbLoader(TailLoader):
    """Reads one W&B ``.wandb`` run file incrementally (see the module docstring).

    Args:
        path: the ``run-<id>.wandb`` file.
        batch_bytes: about the most one ``load()`` reads.
        max_record: records longer than this are skipped (and reported).
    """

    def __init__(
        self, path: Path | str, *, batch_bytes: int = BATCH_BYTES, max_record: int = MAX_RECORD
    ) -> None:
        if max_record <= 0:
            raise ValueError(f"max_record must be positive: {max_record}")
        super().__init__(path, batch_bytes=batch_bytes)
        self._max_record = max_record
        self._restart()

    def _restart(self) -> None:
        self._unreadable = False  # the header is wrong: nothing in the file is read
        self._skipping = False  # inside a record skipped, looking for its end
        self._resume = 0  # after damage: the block start where reading goes on
        # Points decoded in this call, as tag ids, steps, wall times and values.
        self._pending: tuple[list[int], list[int], list[float], list[float]] = ([], [], [], [])
        self._row = -1  # the last row's _step
        self._config: dict[str, HParamValue] = {}
        self._step_by = ""  # the step metric of every key, if one is declared
        self._implicit = ""  # else a step key of the first row with numbers, if any
        self._rows = 0  # rows with numbers so far
        self._last_step: int | None = None  # the step metric's last value
        self._unstepped = False  # rows before the step metric's first value reported

    def _hparams(self) -> dict[str, HParamValue]:
        if not self._rows:
            return {}  # held until the first row with numbers says what steps the run
        found, self._config = self._config, {}
        if not (self._step_by or self._implicit):
            # The points are at _step, which counts log() calls: a planned number of
            # steps (max_steps) is on the trainer's axis, which _step matches only for
            # a script that logs once per step; twice per step would put the run twice
            # as far into its plan. Planned epochs are placed by the epoch curve.
            found = {k: v for k, v in found.items() if unit_of(k) != "steps"}
        return found

    # -- framing ---------------------------------------------------------------------

    def _read(self, fd: int, final: bool) -> bool:
        try:
            return self._read_records(fd, final)
        finally:
            self._points.add_lists(*self._pending)
            self._pending = ([], [], [], [])

    def _read_records(self, fd: int, final: bool) -> bool:
        if self._unreadable or (self._offset == 0 and not self._header(fd, final)):
            return False
        size = os.fstat(fd).st_size
        if self._resume > self._offset:  # past damage, reading goes on at a block start
            if size < self._resume:
                self._offset = size
                return False
            self._offset, self._resume = self._resume, 0
        start = pos = self._offset
        buf, base = b"", pos  # file bytes [base, base + len(buf))
        parts: list[bytes] = []  # the chunks of the record being joined
        began = pos  # where that record began
        while True:
            if not parts and pos - start >= self._batch_bytes:
                self._offset = pos
                return True
            left = _BLOCK - pos % _BLOCK
            if left < _HEAD:  # a block's zero padding
                pos += left
                if not parts and pos <= size:
                    self._offset = pos
                continue
            if pos + _HEAD > base + len(buf):
                buf, base = os.pread(fd, _READ, pos), pos
            if pos + _HEAD > base + len(buf):
                break  # the end of the file, maybe inside a chunk header
            crc, length, kind = _CHUNK_HEADER.unpack_from(buf, pos - base)
            end = pos + _HEAD + length
            damage = ""
            if kind > _LAST or kind == 0:
                damage = f"bad chunk type {kind}"
            elif length > left - _HEAD:
                damage = "bad chunk length"
            else:
                if end > base + len(buf):
                    buf, base = os.pread(fd, _READ, pos), pos
                    if end > base + len(buf):
                        break  # a chunk cut short: its writer is not done with it
                data = buf[pos + _HEAD - base : end - base]
                if zlib.crc32(data, _TYPE_CRC[kind]) != crc:
                    if end == base + len(buf) and not final:
                        break  # the file's last bytes: may still be being written
                    damage = "checksum mismatch"
            if damage:
                pos = self._skip_block(pos, damage, parts, began)
                parts = []
                if pos > size:  # the damaged block is the last one so far
                    self._resume = pos
                    break
                self._offset = pos
                continue
            if kind in (_FULL, _FIRST):
                if parts:
                    self._problems.add(f"byte {began}", "record without its end; skipped")
                    parts = []
                self._skipping = False
                if kind == _FULL:
                    self._record(data, pos)
                else:
                    parts, began = [data], pos
            elif self._skipping:
                self._skipping = kind != _LAST
            elif not parts:
                self._problems.add(f"byte {pos}", "record part without its start; skipped")
            else:
                parts.append(data)
                if sum(map(len, parts)) > self._max_record:
                    self._problems.add(
                        f"byte {began}", f"record over {self._max_record} bytes; skipped"
                    )
                    parts, self._skipping = [], kind != _LAST
                elif kind == _LAST:
                    self._record(b"".join(parts), began)
                    parts = []
            pos = end
            if not parts:
                self._offset = pos
        if self._resume:
            self._offset = min(self._resume, size)
        elif final and (parts or self._offset < size):
            at = began if parts else self._offset
            self._problems.add(
                f"byte {at}", "last record incomplete (cut off mid-write?); skipped"
            )
        return False

    def _header(self, fd: int, final: bool) -> bool:
        """Check the file header; True when it is W&B's (the offset then moves past it)."""
        head = os.pread(fd, _HEAD, 0)
        if len(head) < _HEAD and MAGIC.startswith(head):
            if final and head:
                self._problems.add("byte 0", "file shorter than its header; skipped")
            return False  # just created: the header comes next
        if head[:6] != MAGIC[:6]:
            self._problems.add("byte 0", "not a W&B run file (no ':W&B' header); skipped")
        elif head[6] != MAGIC[6]:
            self._problems.add("byte 6", f"W&B log version {head[6]}, not 0; not read")
        else:
            self._offset = _HEAD
            return True
        self._unreadable = True
        return False

    def _skip_block(self, pos: int, what: str, parts: list[bytes], began: int) -> int:
        """Report a damaged chunk (and the record it cuts short); the next block's start.

        The rest of a record cut there, at the start of that block, is skipped in silence:
        it is the same damage."""
        after = pos - pos % _BLOCK + _BLOCK
        lost = f" (the record from byte {began} lost)" if parts else ""
        self._problems.add(f"byte {pos}", f"{what}{lost}; skipped to byte {after}")
        self._skipping = True
        return after

    # -- records ---------------------------------------------------------------------

    def _record(self, data: bytes, at: int) -> None:
        try:
            # The whole record is decoded before any of it is taken: one that fails
            # part-way gives nothing, rather than the points before the failure.
            for number, wire, value in list(fields(data)):
                if wire != LEN or not isinstance(value, bytes):
                    continue
                if number == _HISTORY:
                    self._history(value, at)
                elif number == _CONFIG:
                    self._config_record(value)
                elif number == _RUN:
                    for n, w, v in fields(value):
                        if n == 4 and w == LEN and isinstance(v, bytes):
                            self._config_record(v)
                elif number == _METRIC:
                    self._metric(value)
        except (WireError, UnicodeDecodeError):
            self._problems.add(f"byte {at}", "record does not decode; skipped")

    def _history(self, data: bytes, at: int) -> None:
        row: list[tuple[str, float]] = []
        logged: int | None = None  # the _step item
        step: int | None = None  # the HistoryStep, which W&B writes too
        wall = math.nan
        for number, wire, value in fields(data):
            if number == 1 and wire == LEN and isinstance(value, bytes):
                item = _item(value)
                if item is None:
                    continue
                key, number_value = item
                if key == "_step":
                    logged = as_step(number_value)
                elif key == "_timestamp":
                    wall = number_value
                elif not key.startswith("_"):
                    row.append((key, number_value))
            elif number == 2 and wire == LEN and isinstance(value, bytes):
                step = 0  # HistoryStep: a num of 0 is not written
                for n, w, v in fields(value):
                    if n == 1 and w == VARINT and isinstance(v, int):
                        step = as_step(float(v if v < 1 << 63 else v - (1 << 64)))
        if step is None:
            step = logged if logged is not None else self._row + 1
        self._row = step
        if row:
            self._add_row(row, step, wall, at)

    def _add_row(self, row: list[tuple[str, float]], step: int, wall: float, at: int) -> None:
        if not self._rows:
            # The first row with numbers: a step key logged in it (nanoGPT logs "iter")
            # steps the run, as in JSON Lines, unless a step metric is declared.
            logged = {key for key, _ in row}
            self._implicit = next((k for k in STEP_KEYS if k in logged), "")
        self._rows += 1
        metric = self._step_by or self._implicit
        if metric:
            for key, value in row:
                if key == metric:
                    self._last_step = as_step(value)
            if self._last_step is None:
                if not self._unstepped:
                    self._unstepped = True
                    self._problems.add(
                        f"byte {at}",
                        f"row before the step metric {metric} had a value; skipped",
                    )
                return
            step = self._last_step
        tag_id = self._points.tag_id
        tags, steps, walls, values = self._pending
        for key, value in row:
            tags.append(tag_id(key))
            steps.append(step)
            walls.append(wall)
            values.append(value)

    def _config_record(self, data: bytes) -> None:
        for number, wire, value in fields(data):
            if number != 1 or wire != LEN or not isinstance(value, bytes):
                continue  # ``remove`` (2) and ``_info``: a removed key keeps its last value
            key, raw = _named_json(value)
            if not key or key.startswith("_wandb") or raw is None or len(raw) > _MAX_JSON:
                continue
            try:
                parsed = json.loads(raw)
            except (ValueError, RecursionError):
                continue
            flatten_hparams(parsed, key, self._config)

    def _metric(self, data: bytes) -> None:
        """A ``define_metric``: only a step metric for every key (glob ``*``) is taken."""
        glob = step_metric = ""
        for number, wire, value in fields(data):
            if wire != LEN or not isinstance(value, bytes):
                continue
            if number == 2:
                glob = value.decode("utf-8")
            elif number == 4:
                step_metric = value.decode("utf-8")
        if glob == "*" and step_metric:
            if step_metric != self._step_by:
                self._last_step = None
            self._step_by = step_metric


def _named_json(data: bytes) -> tuple[str, str | None]:
    """The name (``key``, or ``nested_key`` joined with ``.``) and ``value_json`` of a
    ``ConfigItem``."""
    key = ""
    nested: list[str] = []
    raw: str | None = None
    for number, wire, value in fields(data):
        if wire != LEN or not isinstance(value, bytes):
            continue
        if number == 1:
            key = value.decode("utf-8")
        elif number == 2:
            nested.append(value.decode("utf-8"))
        elif number == 16:
            raw = value.decode("utf-8", "replace") if len(value) <= _MAX_JSON else None
    return key or ".".join(nested), raw


def _item(data: bytes) -> tuple[str, float] | None:
    """A ``HistoryItem`` as (name, number), or None when its value is not a number.

    Decoded inline rather than with :func:`~advisor.sources.protowire.fields`: a run
    has several items per row and this is where reading a long run spends its time.
    """
    key = ""
    nested: list[str] = []
    number: float | None = None
    pos, end = 0, len(data)
    while pos < end:
        tag = data[pos]
        pos += 1
        if tag & 0x80:
            tag, pos = read_varint(data, pos - 1, end)
        field_number, wire = tag >> 3, tag & 7
        if wire == LEN:
            size = data[pos] if pos < end else 0x80
            pos += 1
            if size & 0x80:
                size, pos = read_varint(data, pos - 1, end)
            if pos + size > end:
                raise WireError("truncated field")
            if field_number == 16:
                number = _json_number(data[pos : pos + size]) if size <= _MAX_JSON else None
            elif field_number == 2:
                nested.append(data[pos : pos + size].decode("utf-8"))
            elif field_number == 1:
                key = data[pos : pos + size].decode("utf-8")
            pos += size
        elif wire == VARINT:
            value, pos = read_varint(data, pos, end)
            if field_number == 5:
                number = float((value >> 1) ^ -(value & 1))  # sint64: zigzag
        elif wire == FIXED64:
            if pos + 8 > end:
                raise WireError("truncated field")
            if field_number == 6:
                number = _DOUBLE.unpack_from(data, pos)[0]
            pos += 8
        elif wire == FIXED32:
            pos += 4
        else:
            raise WireError(f"wire type {wire}")
    if number is None or pos > end:
        return None
    return key or ".".join(nested), number


def _json_number(raw: bytes) -> float | None:
    """A JSON number (or NaN, Infinity, -Infinity as Python's json writes them)."""
    if not raw or chr(raw[0]) not in _NUMBER_START:
        return None  # text, booleans, null, lists and objects (media)
    try:
        return float(raw)
    except (ValueError, OverflowError):
        return None
