"""Native libraries' chatter kept off the terminal: what TensorFlow and LiteRT print on the process's stdout and
stderr from C++ (their logging starts before any setting can reach it), which Python's redirection misses."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile
from collections.abc import Iterator


class Captured:
    text = ""


@contextlib.contextmanager
def native_output(fds: tuple[int, ...] = (1, 2)) -> Iterator[Captured]:
    """Send file descriptors `fds` to a temporary file while the block runs; what was written there is in the
    yielded object's `text` afterwards (for an error message to quote)."""
    got = Captured()
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = [os.dup(fd) for fd in fds]
    with tempfile.TemporaryFile(mode="w+b") as sink:
        try:
            for fd in fds:
                os.dup2(sink.fileno(), fd)
            yield got
        finally:
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            for fd, keep in zip(fds, saved, strict=True):
                os.dup2(keep, fd)
                os.close(keep)
            sink.seek(0)
            got.text = sink.read().decode(errors="replace")
