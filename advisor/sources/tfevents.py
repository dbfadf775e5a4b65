"""TensorBoard event files (``events.out.tfevents.*``), read incrementally and fast.

Layers, bottom up: :mod:`~advisor.sources.crc32c` (checksums),
:mod:`~advisor.sources.tfrecord` (framing, resynchronisation),
:mod:`~advisor.sources.event_columns` (vectorised decoding of the common one-scalar
records), :mod:`~advisor.sources.protowire` (the general decoder, for everything else),
and :class:`TfEventsLoader` here: byte offsets, chunks, problems, merging in file order.
"""

from __future__ import annotations

import os
import stat
import struct
from io import FileIO
from pathlib import Path
from types import MappingProxyType

import numpy as np
import numpy.typing as npt

from advisor.errors import InputError
from advisor.model import Batch
from advisor.model import Problem
from advisor.model import Scalars
from advisor.sources import event_columns
from advisor.sources import tfrecord
from advisor.sources.crc32c import masked_crc32c
from advisor.sources.crc32c import masked_crc32c_spans
from advisor.sources.event_points import Points
from advisor.sources.event_points import decode_slow
from advisor.sources.tagtable import NO_PLUGIN
from advisor.sources.tagtable import OTHER
from advisor.sources.tagtable import TagTable
from advisor.sources.tfrecord import HEADER
from advisor.sources.tfrecord import OVERHEAD
from advisor.sources.tfrecord import PAD

Idx = npt.NDArray[np.intp]

# Bytes read and decoded at once: big enough that numpy's per-call costs vanish, small
# enough that the per-record temporaries of a chunk (~20 arrays) stay a few tens of MB.
CHUNK = 2 << 20
# After a corrupt header the next record is usually near: scan small windows first.
_FIRST_SCAN = 64 << 10
# Bytes of the file's start remembered to notice a rewrite in place (same inode, e.g.
# ``cp`` over the file): the first record's header and the first event's wall time.
_HEAD = 24
_MAX_PROBLEMS = 100
_LENGTH = struct.Struct("<Q")
_CRC = struct.Struct("<I")
_NOTHING = Batch(scalars=Scalars.empty(), hparams=MappingProxyType({}))

# What the caller does after a chunk.
_MORE, _WAIT, _RESYNC = 0, 1, 2


class TfEventsLoader:
    """Reads one TensorBoard event file incrementally (the :class:`Loader` protocol).

    Each :meth:`load` returns the points appended since the previous call, in file order:
    ``simple_value`` scalars and one-element numeric tensors whose tag belongs to the
    scalars plugin or to no plugin. The masked CRC of every record's length is checked;
    a record's data CRC when it does not decode, or always with ``check_data_crc``.

    Tailing semantics:

    - An unchanged file (size, inode, mtime) is not opened. A record cut short at the
      end stays unread until complete (reported instead with ``load(final=True)``). A
      file that shrinks, changes inode or whose first bytes change is read again from
      the start, with ``Batch.reset`` set.
    - Corrupt records are reported once each (``Problem(path, "byte N", ...)``) and
      skipped; after a corrupt header the reader resynchronises on the next offset whose
      length and data CRCs both verify, and waits at the bad spot while none follows.
    - A file that vanishes (deleted or rotated away) yields an empty batch, as if it had
      not been written yet; a path that exists but cannot be read raises ``InputError``.

    Args:
        path: the event file.
        tag_prefix: prepended to every tag (e.g. ``"validation/"`` for Keras layouts).
        check_data_crc: verify the data CRC of every record, not only undecodable ones.
        max_record_bytes: records longer than this are skipped unread (and reported).
        batch_bytes: about the most one call reads; ``Batch.more`` says when it
            stopped early, so a caller reading a large file never holds all of it twice.

    Example:
        >>> loader = TfEventsLoader(Path("runs/exp1/events.out.tfevents.1.host"))
        >>> batch = loader.load()  # doctest: +SKIP
    """

    def __init__(
        self,
        path: Path,
        tag_prefix: str = "",
        check_data_crc: bool = False,
        max_record_bytes: int = 16 << 20,
        batch_bytes: int = 4 << 20,
    ) -> None:
        if max_record_bytes < 1:
            raise ValueError(f"max_record_bytes must be positive but got {max_record_bytes}")
        if batch_bytes < 1:
            raise ValueError(f"batch_bytes must be positive but got {batch_bytes}")
        self.batch_bytes = batch_bytes
        self.path = Path(path)
        self.tag_prefix = tag_prefix
        self.check_data_crc = check_data_crc
        self.max_record_bytes = max_record_bytes
        self._signature: tuple[int, int, int] | None = None
        self._inode = -1
        self._size = 0
        self._head = b""
        self._forget()

    def _forget(self) -> None:
        self._offset = 0
        self._tags = TagTable()
        self._stuck = -1  # a reported bad spot the reader waits at (not reported again)
        self._floor = (-1, 0)  # (bad spot, offsets below which resync found nothing)
        self._problem_count = 0
        self._zeros_seen = False

    def load(self, *, final: bool = False) -> Batch:
        """Return what was appended since the previous call.

        Args:
            final: nothing more will be written: a record cut short at the end is
                reported instead of waited for.

        Raises:
            InputError: the path exists but cannot be read.
        """
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return _NOTHING
        except OSError as exc:
            raise InputError(f"{self.path}: cannot read: {exc.strerror or exc}") from None
        if (st.st_size, st.st_ino, st.st_mtime_ns) == self._signature:
            return _NOTHING  # the idle poll: one stat, nothing opened
        if not stat.S_ISREG(st.st_mode):
            raise InputError(f"{self.path}: not a regular file")
        try:
            f = open(self.path, "rb", buffering=0)  # noqa: SIM115 (closed below)
        except FileNotFoundError:
            return _NOTHING  # vanished between stat and open
        except OSError as exc:
            raise InputError(f"{self.path}: cannot read: {exc.strerror or exc}") from None
        with f:
            try:
                return self._load_open(f, final)
            except OSError as exc:
                raise InputError(f"{self.path}: cannot read: {exc.strerror or exc}") from None

    def _load_open(self, f: FileIO, final: bool) -> Batch:
        # fstat, not the earlier stat: the path may have been replaced in between.
        st = os.fstat(f.fileno())
        size = st.st_size
        head = bytes(_read(f, 0, min(size, _HEAD))[0][: min(size, _HEAD)])
        reset = self._inode >= 0 and (
            st.st_ino != self._inode
            or size < self._size
            or head[: len(self._head)] != self._head[: len(head)]
        )
        if reset:
            self._forget()
        self._inode, self._size, self._head = st.st_ino, size, head
        out = Points(self._tags)
        more = self._read_from(f, size, out)
        if final and not more and self._offset < size and self._offset != self._stuck:
            # Not a bad spot reported already: a record the writer never finished (a
            # killed job), or is still writing. Its bytes are left unread.
            self._report_stuck(
                out,
                self._offset,
                f"last record incomplete after {size - self._offset} bytes (cut off "
                "mid-write?); skipped",
            )
        # Recorded last: if reading failed, the next call tries again; and not while
        # more is to be read, or the next call would take the file for unchanged.
        self._signature = None if more else (size, st.st_ino, st.st_mtime_ns)
        return out.batch(self.path, self.tag_prefix, reset, more)

    def _read_from(self, f: FileIO, size: int, out: Points) -> bool:
        """Read complete records from the offset; True when stopped at the byte budget."""
        pos = self._offset
        need = 0
        while pos + HEADER <= size:
            if pos - self._offset >= self.batch_bytes:
                self._offset = pos
                return True
            window = min(size - pos, max(min(CHUNK, self.batch_bytes), need))
            buf, got = _read(f, pos, window)
            if got < window:  # the file shrank under us; the next call resets
                size = pos + got
                if got < HEADER:
                    break
            used, action, need = self._chunk(buf, pos, got, size, out)
            pos += used
            if action == _WAIT or (used == 0 and action == _MORE and need <= got):
                break  # the second case cannot happen; it guards against a busy loop
            if action == _RESYNC:
                found = self._resync(f, pos, size, out, buf[used : used + HEADER])
                if found is None:
                    break
                pos = found
        self._offset = pos
        return False

    def _chunk(
        self, buf: bytearray, base: int, avail: int, size: int, out: Points
    ) -> tuple[int, int, int]:
        """Decode the complete records at the start of ``buf`` (file offset ``base``).

        Returns:
            Bytes consumed, what to do next, and the window needed to hold the next
            record when it does not fit in this one.
        """
        offsets, stop = tfrecord.frame(buf, 0, avail, self.max_record_bytes)
        good = tfrecord.check_lengths(buf, offsets)
        if good < offsets.size:
            stop = int(offsets[good])
            offsets = offsets[:good]
        if offsets.size:
            self._decode(buf, base, offsets, out)
        if stop + HEADER > avail:
            return stop, _MORE if base + stop + HEADER <= size else _WAIT, 0
        if not tfrecord.length_ok(buf, stop):
            return stop, _RESYNC, 0
        length = _LENGTH.unpack_from(buf, stop)[0]
        if length > self.max_record_bytes:
            self._report_stuck(
                out,
                base + stop,
                f"record of {length} bytes is over max_record_bytes "
                f"({self.max_record_bytes}); skipped unread",
            )
            if base + stop + OVERHEAD + length <= size:
                return stop + OVERHEAD + length, _MORE, 0
            return stop, _WAIT, 0
        if base + stop + OVERHEAD + length > size:
            return stop, _WAIT, 0  # a writer is still writing it
        return stop, _MORE, OVERHEAD + length

    def _decode(self, buf: bytearray, base: int, offsets: Idx, out: Points) -> None:
        """Turn framed records (with verified lengths) into points, in file order."""
        lengths = tfrecord.u64_at(buf)[offsets].astype(np.intp)
        keep = np.ones(offsets.size, np.bool_)
        if self.check_data_crc:
            keep = _data_crc_ok(buf, offsets, lengths)
            for j in np.flatnonzero(~keep).tolist():
                self._report(out, base + int(offsets[j]), "bad data checksum; record skipped")
        cols = event_columns.decode(buf, offsets, lengths)
        fast = np.flatnonzero(cols.ok & keep)
        ids = self._tags.lookup(buf, cols.tag_off[fast], cols.tag_len[fast])
        sure = ids >= 0  # not sure: a tag hash collision
        fast, ids = fast[sure], ids[sure]
        # The first metadata of a tag whose plugin is not settled yet is read by the slow
        # path (later metadata of a tag is ignored, as TensorBoard ignores it).
        meta = cols.metadata[fast] & ~self._tags.known()[ids]
        if meta.any():
            picked = np.flatnonzero(meta)
            _, first = np.unique(ids[picked], return_index=True)
            taken = np.ones(fast.size, np.bool_)
            taken[picked[first]] = False
            fast, ids = fast[taken], ids[taken]
        slow_mask = keep.copy()
        slow_mask[fast] = False
        slow = decode_slow(buf, offsets, lengths, np.flatnonzero(slow_mask), self._tags)
        for offset, message in slow.problems:
            self._report(out, base + offset, message)
        codes = self._tags.codes()[ids]
        if slow.settled:
            since = np.full(len(self._tags), -1, np.intp)
            since[list(slow.settled)] = list(slow.settled.values())
            codes = np.where(fast >= since[ids], codes, NO_PLUGIN)
        counts = ~cols.tensor[fast] | (codes != OTHER)
        fast, ids = fast[counts], ids[counts]
        out.add_chunk(
            offsets.size,
            fast,
            ids=ids,
            step=cols.step[fast],
            wall_time=cols.wall_time[fast],
            value=cols.value[fast],
            slow=slow,
        )

    def _resync(
        self, f: FileIO, bad: int, size: int, out: Points, header: bytearray
    ) -> int | None:
        """After a corrupt header at ``bad``: the next offset holding a valid record.

        Only a record whose length and data CRCs both verify is trusted (a length CRC
        alone matches random bytes once in 2**32 offsets). Offsets already ruled out
        while waiting at the same bad spot are not scanned again.
        """
        if any(header):
            self._report_stuck(out, bad, "corrupt record header (length checksum mismatch)")
        elif not self._zeros_seen:  # a preallocated zero tail: said once per file
            self._zeros_seen = True
            self._report_stuck(out, bad, "zero bytes where a record should start")
        lo = max(bad + 1, self._floor[1] if self._floor[0] == bad else 0)
        pending = -1
        step = _FIRST_SCAN
        while lo + HEADER <= size:
            window = min(size - lo, step)
            buf, got = _read(f, lo, window)
            hi = got - HEADER + 1
            for p in map(int, tfrecord.candidates(buf, 0, hi, self.max_record_bytes)):
                length = int(_LENGTH.unpack_from(buf, p)[0])
                if lo + p + OVERHEAD + length > size:
                    pending = lo + p if pending < 0 else pending
                    continue
                if p + OVERHEAD + length <= got:
                    data = bytes(buf[p + HEADER : p + OVERHEAD + length])
                else:
                    data = bytes(_read(f, lo + p + HEADER, length + 4)[0][: length + 4])
                if len(data) == length + 4 and masked_crc32c(data[:-4]) == int(
                    _CRC.unpack_from(data, length)[0]
                ):
                    return lo + p
            lo += max(hi, 1)
            step = min(2 * step, CHUNK)
        self._floor = (bad, lo if pending < 0 else min(lo, pending))
        return None

    def _report(self, out: Points, offset: int, message: str) -> None:
        self._problem_count += 1
        if self._problem_count > _MAX_PROBLEMS:
            return
        if self._problem_count == _MAX_PROBLEMS:
            message = f"{message} (further problems in this file are not reported)"
        out.problems.append(Problem(str(self.path), f"byte {offset}", message))

    def _report_stuck(self, out: Points, offset: int, message: str) -> None:
        """Report a problem the reader may wait at, once however many calls it waits."""
        if offset != self._stuck:
            self._stuck = offset
            self._report(out, offset, message)


def _read(f: FileIO, pos: int, n: int) -> tuple[bytearray, int]:
    """Read up to ``n`` bytes at ``pos`` into a new zero-padded buffer; return it and the count."""
    buf = bytearray(n + PAD)
    view = memoryview(buf)
    got = 0
    f.seek(pos)
    while got < n:
        chunk = f.readinto(view[got:n])
        if not chunk:
            break
        got += chunk
    view.release()
    return buf, got


def _data_crc_ok(buf: bytearray, offsets: Idx, lengths: Idx) -> npt.NDArray[np.bool_]:
    """Per record, whether its data CRC verifies (records of equal length at once)."""
    ok = np.ones(offsets.size, np.bool_)
    u32 = tfrecord.u32_at(buf)
    for length in np.unique(lengths).tolist():
        sel = np.flatnonzero(lengths == length)
        starts = offsets[sel] + HEADER
        if sel.size * 64 >= length:
            crcs = masked_crc32c_spans(buf, starts, length)
        else:  # few long records: the one-buffer form is faster
            crcs = np.array([masked_crc32c(buf[s : s + length]) for s in starts.tolist()])
        ok[sel] = crcs == u32[starts + length]
    return ok
