"""Alerts appended to a JSON Lines file, one line each, on disk before ``send`` returns."""

from __future__ import annotations

import os
from pathlib import Path

from advisor.alertjson import alert_to_dict
from advisor.alertjson import dumps
from advisor.model import Alert
from advisor.sinks.base import SinkError


class JsonlSink:
    """Appends each alert as one line (DESIGN.md section 5) and fsyncs it.

    One ``write`` per line on a file opened with O_APPEND, so concurrent appenders
    (another advisor) never interleave within a line. The file is opened per alert: it
    may be rotated or removed between alerts, and there is no handle to close. A crash
    mid-write can leave a partial last line; the outbox then delivers the alert again,
    so a reader should skip a line that does not parse.

    Args:
        path: the file; it and its directory are created on first use.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"JsonlSink(path={str(self.path)!r})"

    def send(self, alert: Alert) -> None:
        data = (dumps(alert_to_dict(alert)) + "\n").encode("utf-8")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                view = memoryview(data)
                while view:  # a regular file takes it in one write; loop for safety
                    view = view[os.write(fd, view) :]
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise SinkError(f"{self.path}: cannot append: {exc.strerror or exc}") from None
