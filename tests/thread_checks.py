"""A fixture for the tests that start threads: every test joins every thread it started.

Import it into a test module (``from thread_checks import no_thread_leaks``); being
autouse, it then wraps every test of that module.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def no_thread_leaks() -> Iterator[None]:
    """Every test joins every thread it started."""
    before = threading.active_count()
    yield
    assert threading.active_count() == before, threading.enumerate()
