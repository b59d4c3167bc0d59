"""Photo analysis on several cores, in order, with a bounded number of photos in flight.

Enrolment and evaluation both analyse many photos: each worker thread runs its own copy of the face
model's networks (OpenCV networks must not be shared between threads), and results come back in the
order the photos were given, so the caller can write or cache each one while the workers go on.
"""

from __future__ import annotations

import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

from .errors import NominaError
from .faces import FaceAnalyzer, one_opencv_thread
from .models import FaceModel
from .models.base import Detector, Embedder
from .settings import Settings

__all__ = ["AnalyzerPool", "ordered_map"]

T = TypeVar("T")
R = TypeVar("R")


class _Lent:
    """A worker thread's analyzer; when the thread ends and this goes, its networks go back to the pool."""

    def __init__(self, analyzer: FaceAnalyzer) -> None:
        self.analyzer = analyzer


class AnalyzerPool:
    """One :class:`FaceAnalyzer` per thread; the main thread uses the model's own networks.

    A worker thread's networks are built on its first photo and given back when the thread ends, for the
    next operation's workers: building them (reading and checking the model files, a warm-up run) takes
    about 50 ms, as long as analysing a few photos. At most ``settings.workers`` sets are kept between
    operations.
    """

    def __init__(self, model: FaceModel, settings: Settings) -> None:
        self.model = model
        self.settings = settings
        self._main: FaceAnalyzer | None = None
        self._local = threading.local()
        self._spare: list[tuple[Detector, Embedder]] = []
        self._lock = threading.Lock()

    def get(self) -> FaceAnalyzer:
        if threading.current_thread() is threading.main_thread():
            if self._main is None:
                self._main = FaceAnalyzer(self.model, self.settings)
            return self._main
        lent: _Lent | None = getattr(self._local, "lent", None)
        if lent is None:
            with self._lock:
                parts = self._spare.pop() if self._spare else None
            lent = _Lent(FaceAnalyzer(self.model, self.settings, parts=parts or self.model.make_parts()))
            weakref.finalize(lent, self._give_back, (lent.analyzer.detector, lent.analyzer.embedder))
            self._local.lent = lent
        return lent.analyzer

    def _give_back(self, parts: tuple[Detector, Embedder]) -> None:
        with self._lock:
            if len(self._spare) < max(1, self.settings.workers):
                self._spare.append(parts)


def ordered_map(
    fn: Callable[[T], R],
    items: Sequence[T],
    workers: int,
    ahead: int = 0,
    size: Callable[[R | NominaError], int] | None = None,
    budget: int = 0,
) -> Iterator[R | NominaError]:
    """``fn`` over items on ``workers`` threads, yielded in the given order as they finish.

    A NominaError is yielded in place of a result, so one bad item never stops a batch. At most a few
    items per worker are in flight, plus up to ``ahead`` more: a caller that stops to write a batch of
    ``ahead`` results keeps the workers busy meanwhile. With ``size`` (bytes a result holds) and
    ``budget``, the extra items are as many as ``budget`` holds of the largest result seen so far (none
    before the first), so a batch of very large photos keeps no more in memory than a few. Workers run
    OpenCV single-threaded (two single-threaded workers measured faster than two workers each using
    OpenCV's two threads).
    """

    def guarded(item: T) -> R | NominaError:
        try:
            return fn(item)
        except NominaError as exc:
            return exc

    if workers <= 1 or len(items) <= 1:
        yield from (guarded(i) for i in items)
        return
    largest = 0

    def window() -> int:
        extra = max(0, ahead)
        if size is not None:  # none extra until a result's size is known
            extra = min(extra, budget // largest) if largest > 0 else 0
        return 4 * workers + extra

    with one_opencv_thread(), ThreadPoolExecutor(max_workers=workers) as pool:
        pending: deque[Future[R | NominaError]] = deque()
        try:
            for item in items:
                pending.append(pool.submit(guarded, item))
                while len(pending) >= window():
                    result = pending.popleft().result()
                    if size is not None:
                        largest = max(largest, size(result))
                    yield result
            while pending:
                yield pending.popleft().result()
        finally:  # a caller that stops early (an error while writing) does not wait for work it will not use
            for future in pending:
                future.cancel()
