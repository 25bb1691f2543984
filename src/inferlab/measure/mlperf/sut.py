"""The system under test LoadGen drives: any backend Session behind LoadGen's issue/flush callbacks.

Paths (what is timed is LoadGen's business: from a query's scheduled time to QuerySamplesComplete):
- on the issuing thread (SingleStream, MultiStream, Offline: LoadGen issues the next query only when this
  one is done, or, Offline, issues one query): `issue` cuts the query into requests of the trial's batch;
- dispatched (Server, whose `issue` must return at once to keep LoadGen's arrival schedule): `issue`
  queues the samples; a dispatcher thread forms batches of up to the trial's batch from what is queued
  (optionally waiting `batch_timeout` for one to fill).
Either way, with several requests in flight the runtime is kept busy through the session's async path
(`wait_slot` + `submit`); with one, each request runs with `Session.run` on that thread, as the async
path would do inline, minus its hand-offs.
In AccuracyOnly every request runs synchronously and each sample's outputs are returned to LoadGen as
bytes; response buffers stay referenced until QuerySamplesComplete has returned (LoadGen copies them).
Per-request latencies (submit to completion) are recorded SUT-side, as in inferlab's throughput mode.
With a `time_limit_s` (LoadGen's max_duration, counted from the run's first query), samples still to run
past it are answered at once without inference and counted in `skipped`: LoadGen waits for every sample it
issued, and one Offline or MultiStream query can hold hours of work; such a run is not a measurement.
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
                 dispatched: bool, accuracy: bool, batch_timeout_s: float = 0.0) -> None:
        self.lg = lg
        self.session = session
        self.library = library
        self.batch = batch
        self.depth = depth
        self.dispatched = dispatched
        self._work = self._run_inline if accuracy or depth == 1 else self._submit
        self.accuracy = accuracy
        self.batch_timeout_s = batch_timeout_s
        self.respond: Respond = lg.QuerySamplesComplete
        self.latencies: list[int] = []
        self.errors: list[BaseException] = []
        self.samples_done = 0
        self.requests_done = 0
        self.tracking = False          # count outstanding samples (warm-up, so that `drain` can wait)
        self.time_limit_s: float | None = None  # serve no sample past this, from the first issue on
        self.issued = 0                # samples LoadGen issued since `reset_records`
        self.skipped = 0               # ... of which answered without inference, past the time limit
        self._first_issue_ns: int | None = None
        self._deadline_ns: int | None = None
        self._pending: collections.deque[tuple[int, int]] = collections.deque()
        self._cv = threading.Condition()  # guards _pending
        self._count_lock = threading.Lock()
        self._outstanding = 0          # samples issued and not yet completed
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.layout: list[dict[str, Any]] = []

    # LoadGen's callbacks -------------------------------------------------------------------------------

    def issue(self, query_samples: Sequence[Any]) -> None:
        if self._first_issue_ns is None:
            self._first_issue_ns = time.monotonic_ns()
            if self.time_limit_s is not None:
                self._deadline_ns = self._first_issue_ns + int(self.time_limit_s * 1e9)
        items = [(q.id, q.index) for q in query_samples]
        self.issued += len(items)
        if self.tracking:
            with self._count_lock:
                self._outstanding += len(items)
        if not self.dispatched:
            self._run_batches(items)
            return
        with self._cv:
            self._pending.extend(items)
            self._cv.notify()

    def flush(self) -> None:
        return None

    # lifecycle -----------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._work == self._submit:
            self.session.start_async(self.depth)
        if self.dispatched:
            self._thread = threading.Thread(target=self._dispatch, name="inferlab-sut", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            with self._cv:
                self._stopping = True
                self._cv.notify_all()
            self._thread.join()
            self._thread = None
        if self._work == self._submit:
            self.session.stop_async()
        if self.errors:
            raise self.errors[0]

    def reset_records(self) -> None:
        self.latencies = []
        self.samples_done = self.requests_done = 0
        self.issued = self.skipped = 0
        self._first_issue_ns = self._deadline_ns = None

    def drain(self) -> None:
        """Block until every sample issued while `tracking` has completed (warm-up, before LoadGen)."""
        while self._outstanding and not self.errors:
            time.sleep(0.001)
        if self.errors:
            raise self.errors[0]

    # work ----------------------------------------------------------------------------------------------

    def _run_batches(self, items: list[tuple[int, int]]) -> None:
        """Cut samples into requests of the trial's batch, in order, and run each."""
        work, batch, clock, deadline = self._work, self.batch, time.monotonic_ns, self._deadline_ns
        for start in range(0, len(items), batch):
            if deadline is not None and clock() >= deadline:
                self._skip(items[start:])
                return
            chunk = items[start:start + batch]
            try:
                work(chunk)
            except BaseException as exc:  # a failing runtime must not leave LoadGen waiting forever
                self._fail(chunk, exc)

    def _dispatch(self) -> None:
        pending, cv, batch = self._pending, self._cv, self.batch
        most = batch * 64  # taken from the queue at once, then run batch by batch in arrival order
        while True:
            with cv:
                while not pending and not self._stopping:
                    cv.wait()
                if not pending:
                    return
                n = len(pending)
                if self.batch_timeout_s > 0 and n < batch:
                    cv.wait_for(lambda: len(pending) >= batch or self._stopping, self.batch_timeout_s)
                    n = len(pending)
                elif self.batch_timeout_s > 0:
                    n -= n % batch  # whole batches now; a partial one waits for more samples or its timeout
                take = [pending.popleft() for _ in range(min(n, most))]
            self._run_batches(take)

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
            self._note(t1 - t0, len(take))
            self._complete(take, None)

        self.session.submit(prepared, done)

    def _run_inline(self, take: list[tuple[int, int]]) -> None:
        """One request, run synchronously on this thread."""
        prepared = self.library.batch_of([i for _, i in take])
        clock = time.perf_counter_ns
        t0 = clock()
        raw = self.session.run(prepared)
        self._note(clock() - t0, len(take))
        self._complete(take, self.session.outputs_of(raw) if self.accuracy else None)

    def _note(self, latency_ns: int, samples: int) -> None:
        self.latencies.append(latency_ns)
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
        if self.tracking:
            with self._count_lock:
                self._outstanding -= len(take)

    def _sample_bytes(self, outputs: dict[str, np.ndarray], k: int) -> np.ndarray:
        """Sample k's outputs, each in native layout, concatenated; the layout is kept for the reader."""
        parts = [np.ascontiguousarray(arr[k]) for arr in outputs.values()]
        if not self.layout:
            self.layout = [{"name": name, "dtype": part.dtype.str, "shape": list(part.shape)}
                           for name, part in zip(outputs, parts, strict=True)]
        return np.frombuffer(b"".join(p.tobytes() for p in parts), dtype=np.uint8)

    def _skip(self, items: list[tuple[int, int]]) -> None:
        """Answer samples without running them (past the time limit), in slices: LoadGen must not wait."""
        self.skipped += len(items)
        for start in range(0, len(items), 4096):
            self._complete(items[start:start + 4096], None)

    def _fail(self, take: list[tuple[int, int]], exc: BaseException) -> None:
        """Record the error and complete the samples anyway: LoadGen must not wait forever for them."""
        self.errors.append(exc)
        self._complete(take, None)


def bare_respond(_responses: list[Any]) -> None:
    """Where responses go while the SUT warms up, before LoadGen is involved."""
    return None
