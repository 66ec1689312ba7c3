"""Suite-wide strictness: any error an asyncio loop reports fails the test that caused it.

"Task was destroyed but it is pending", "Task exception was never retrieved" and the like
go to the loop's exception handler, not to pytest. The default handler logs them at ERROR
on the ``asyncio`` logger, for every loop (pytest-asyncio's and each ``asyncio.run``), so
the fixture below fails the test on any such record. "coroutine ... was never awaited" is a
RuntimeWarning, which ``filterwarnings = error`` in setup.cfg already turns into a failure.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import Iterator

import pytest


class _Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@pytest.fixture(autouse=True)
def _fail_on_loop_errors() -> Iterator[None]:
    recorder = _Recorder()
    asyncio_logger = logging.getLogger("asyncio")
    asyncio_logger.addHandler(recorder)
    try:
        yield
        gc.collect()  # a pending task is reported only when it is collected
    finally:
        asyncio_logger.removeHandler(recorder)
    assert not recorder.messages, f"event loop reported errors: {recorder.messages}"
