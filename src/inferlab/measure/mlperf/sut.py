"""The system under test LoadGen drives: any backend Session behind LoadGen's issue/flush callbacks.

Paths (what is timed is LoadGen's business: from a query's scheduled time to QuerySamplesComplete):
- inline (SingleStream, and MultiStream with one request in flight): `issue` runs the query's requests
  one after another on LoadGen's issuing thread with `Session.run`, then completes them;
- dispatched (Server, Offline, MultiStream with more in flight): `issue` queues the samples and returns;
  a dispatcher thread forms batches of up to the trial's batch (optionally waiting `batch_timeout` for one
  to fill) and keeps the runtime busy through the session's async path (`wait_slot` + `submit`).
In AccuracyOnly every request runs synchronously and each sample's outputs are returned to LoadGen as
bytes; response buffers stay referenced until QuerySamplesComplete has returned (LoadGen copies them).
Per-request latencies (submit to completion) are recorded SUT-side, as in inferlab's throughput mode.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from inferlab.backends.base import Session
from inferlab.measure.mlperf.library import SampleLibrary

Respond = Callable[[list[Any]], None]


class SystemUnderTest:
    def __init__(self, lg: Any, session: Session, library: SampleLibrary, batch: int, depth: int,
                 inline: bool, accuracy: bool, batch_timeout_s: float = 0.0) -> None:
        self.lg = lg
        self.session = session
        self.library = library
        self.batch = batch
        self.depth = depth
        self.inline = inline
        self.accuracy = accuracy
        self.batch_timeout_s = batch_timeout_s
        self.respond: Respond = lg.QuerySamplesComplete
        self.latencies: list[int] = []
        self.completions: list[int] = []
        self.errors: list[BaseException] = []
        self.samples_done = 0
        self.requests_done = 0
        self.record = True
        self._pending: collections.deque[tuple[int, int]] = collections.deque()
        self._cv = threading.Condition()
        self._outstanding = 0          # samples issued and not yet completed
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.layout: list[dict[str, Any]] = []

    # LoadGen's callbacks -------------------------------------------------------------------------------

    def issue(self, query_samples: Sequence[Any]) -> None:
        items = [(q.id, q.index) for q in query_samples]
        if self.inline:
            for start in range(0, len(items), self.batch):
                self._run_inline(items[start:start + self.batch])
            return
        with self._cv:
            self._pending.extend(items)
            self._outstanding += len(items)
            self._cv.notify()

    def flush(self) -> None:
        return None

    # lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> None:
        if not self.inline:
            if not self.accuracy:
                self.session.start_async(self.depth)
            self._thread = threading.Thread(target=self._dispatch, name="inferlab-sut", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            with self._cv:
                self._stopping = True
                self._cv.notify_all()
            self._thread.join()
            self._thread = None
            if not self.accuracy:
                self.session.stop_async()
        if self.errors:
            raise self.errors[0]

    def reset_records(self) -> None:
        self.latencies, self.completions = [], []
        self.samples_done = self.requests_done = 0

    def drain(self) -> None:
        """Block until every issued sample has completed (used between warm-up and the test)."""
        with self._cv:
            self._cv.wait_for(lambda: self._outstanding == 0 or bool(self.errors))
        if self.errors:
            raise self.errors[0]

    # work ----------------------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        pending, cv, batch = self._pending, self._cv, self.batch
        while True:
            with cv:
                while not pending and not self._stopping:
                    cv.wait()
                if not pending:
                    return
                if self.batch_timeout_s > 0 and len(pending) < batch:
                    cv.wait_for(lambda: len(pending) >= batch or self._stopping, self.batch_timeout_s)
                take = [pending.popleft() for _ in range(min(batch, len(pending)))]
            try:
                if self.accuracy:
                    self._run_inline(take)
                else:
                    self._submit(take)
            except BaseException as exc:  # a failing runtime must not leave LoadGen waiting forever
                self._fail(take, exc)

    def _submit(self, take: list[tuple[int, int]]) -> None:
        prepared = self.library.batch_of([i for _, i in take])
        clock = time.perf_counter_ns
        self.session.wait_slot()
        t0 = clock()

        def done(exc: BaseException | None) -> None:
            t1 = clock()
            if exc is not None:
                self._fail(take, exc)
                return
            self._note(t0, t1, len(take))
            self._complete(take, None)

        self.session.submit(prepared, done)

    def _run_inline(self, take: list[tuple[int, int]]) -> None:
        prepared = self.library.batch_of([i for _, i in take])
        t0 = time.perf_counter_ns()
        raw = self.session.run(prepared)
        t1 = time.perf_counter_ns()
        self._note(t0, t1, len(take))
        outputs = self.session.outputs_of(raw) if self.accuracy else None
        if self.inline:
            with self._cv:
                self._outstanding += len(take)
        self._complete(take, outputs)

    def _note(self, t0: int, t1: int, samples: int) -> None:
        if self.record:
            self.latencies.append(t1 - t0)
            self.completions.append(t1)
        self.samples_done += samples
        self.requests_done += 1

    def _complete(self, take: list[tuple[int, int]], outputs: dict[str, np.ndarray] | None) -> None:
        lg = self.lg
        if outputs is None:
            self.respond([lg.QuerySampleResponse(sid, 0, 0) for sid, _ in take])
        else:
            buffers = [self._sample_bytes(outputs, k) for k in range(len(take))]
            self.respond([lg.QuerySampleResponse(sid, buf.ctypes.data, buf.nbytes)
                          for (sid, _), buf in zip(take, buffers, strict=True)])
            del buffers  # LoadGen has copied them by now
        with self._cv:
            self._outstanding -= len(take)
            if self._outstanding == 0:
                self._cv.notify_all()

    def _sample_bytes(self, outputs: dict[str, np.ndarray], k: int) -> np.ndarray:
        """Sample k's outputs, each in native layout, concatenated; the layout is kept for the reader."""
        parts = [np.ascontiguousarray(arr[k]) for arr in outputs.values()]
        if not self.layout:
            self.layout = [{"name": name, "dtype": part.dtype.str, "shape": list(part.shape)}
                           for name, part in zip(outputs, parts, strict=True)]
        return np.frombuffer(b"".join(p.tobytes() for p in parts), dtype=np.uint8)

    def _fail(self, take: list[tuple[int, int]], exc: BaseException) -> None:
        self.errors.append(exc)
        self._complete(take, None)


def bare_respond(_responses: list[Any]) -> None:
    """Where responses go while the SUT warms up, before LoadGen is involved."""
    return None
