"""Cross-request batching: concurrent encode calls in one worker share one model call.

gunicorn runs several threads per worker and the model runs one call at a time. Without batching,
four requests that each embed one sentence make four model calls in a row; with it, the requests
that queue while the model is busy are encoded together in the next call, which costs little more
than one of them alone (the model's fixed cost per call is paid once, and PyTorch multiplies
larger matrices more efficiently).

Leader/follower: a caller that finds the model idle and nobody queued runs its texts at once (no
added latency for a lone request). A caller that finds the model busy or others queued joins the
queue and sleeps. When the model frees up, the caller at the head of the queue becomes the leader:
it takes every queued request that fits in `max_texts` (its own first, so a leader never works
only for others), runs the model once and hands each caller its rows. Because the head caller has
seen contention, it may hold the batch open for company until `wait_ms` after *its own arrival*
(never longer): a request's wait is thus bounded by what it would have waited for the model anyway
plus at most `wait_ms`. Waiting is on a condition variable (no polling); no thread is started.

An exception raised by the model call reaches every caller whose texts were in that call.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

# run(texts, batch_size) -> one row per text; called by one thread at a time.
RunFn = Callable[[list[str], int], np.ndarray]


@dataclass(eq=False, slots=True)
class _Job:
    texts: list[str]
    batch_size: int
    arrived: float
    contended: bool = False
    done: bool = False
    rows: np.ndarray | None = None
    error: BaseException | None = field(default=None, repr=False)

    def result(self) -> np.ndarray:
        if self.error is not None:
            raise self.error
        assert self.rows is not None
        return self.rows


class Batcher:
    """Merges concurrent `encode` calls into model calls of at most `max_texts` texts.

    `max_texts=1` turns merging off (every request is its own model call, as with a plain lock).
    A single request larger than `max_texts` is never split: it runs alone, chunked by the model.
    """

    def __init__(self, run: RunFn, wait_ms: float = 5.0, max_texts: int = 64) -> None:
        self._run = run
        self.wait_s = max(0.0, wait_ms) / 1000.0
        self.max_texts = max(1, max_texts)
        self._cond = threading.Condition(threading.Lock())
        self._queue: deque[_Job] = deque()
        self._busy = False
        # Plain counters (read without the lock by metrics: an int read is atomic in CPython).
        self.model_calls = 0
        self.merged_requests = 0  # requests that shared their model call with at least one other

    def queued(self) -> int:
        """Requests waiting for the model (for tests and diagnostics)."""
        with self._cond:
            return len(self._queue)

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        job = _Job(list(texts), batch_size, time.monotonic())
        with self._cond:
            job.contended = self._busy or bool(self._queue)
            self._queue.append(job)
            # A leader holding its batch open re-checks whether it is full now.
            self._cond.notify_all()
            leading = False
            try:
                while not job.done and (self._busy or self._queue[0] is not job):
                    self._cond.wait()
                if job.done:  # a leader ran our texts
                    return job.result()
                self._busy = leading = True
                batch = self._collect(job)
            except BaseException:
                # Interrupted while queued or collecting (KeyboardInterrupt in a CLI): leave no job
                # at the head that nobody will lead, and no busy flag that nobody will clear.
                if job in self._queue:
                    self._queue.remove(job)
                if leading:
                    self._busy = False
                self._cond.notify_all()
                raise
        try:
            self._execute(batch)
        finally:
            with self._cond:
                for j in batch:
                    j.done = True
                self._busy = False
                self._cond.notify_all()
        return job.result()

    def _collect(self, leader: _Job) -> list[_Job]:
        """Take the leader's batch off the queue (called with the condition held, `_busy` set)."""
        # Only a caller that met contention waits for company: an idle model means no one is coming.
        deadline = leader.arrived + (self.wait_s if leader.contended else 0.0)
        while True:
            take, total = 0, 0
            for j in self._queue:
                if take and total + len(j.texts) > self.max_texts:
                    break
                take, total = take + 1, total + len(j.texts)
            full = total >= self.max_texts or take < len(self._queue)
            remaining = deadline - time.monotonic()
            if full or remaining <= 0:
                break
            self._cond.wait(remaining)
        return [self._queue.popleft() for _ in range(take)]

    def _execute(self, batch: list[_Job]) -> None:
        """Run the model once for the whole batch and give each job its rows (or the error)."""
        # The same text asked by two callers at once is encoded once.
        unique: dict[str, int] = {}
        for j in batch:
            for t in j.texts:
                unique.setdefault(t, len(unique))
        self.model_calls += 1
        try:
            vectors = self._run(list(unique), max(j.batch_size for j in batch))
        except BaseException as exc:  # every caller of this batch sees the model's failure
            for j in batch:
                # A KeyboardInterrupt or SystemExit belongs to the leader's thread (batch[0]); the
                # others learn that their texts were not encoded.
                ok = isinstance(exc, Exception) or j is batch[0]
                j.error = exc if ok else RuntimeError(f"the model call was interrupted ({type(exc).__name__})")
            return
        if len(batch) > 1:
            self.merged_requests += len(batch)
        for j in batch:
            j.rows = vectors[[unique[t] for t in j.texts]]
