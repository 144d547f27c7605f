"""Sessions of the web app and the bounded queue of segmentation jobs.

Every page that opens gets a session: a random id, its own temporary folder (everything the session
writes goes there: the uploaded or example input, the outputs of ``predict``) and its own caches.
A session ends when the page is closed (the page says so), after ``idle_minutes`` without a request,
or when the server stops; its folder is then removed.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable, Dict, List, Optional

from .engine import LRU, PrefixCache


class Busy(Exception):
    """The server cannot take this job now: ``status`` 503 (queue full, too many sessions) or 409
    (this session is already segmenting)."""

    def __init__(self, message: str, status: int = 503) -> None:
        super().__init__(message)
        self.status = status


class Session:
    """One page's state: ``case`` the loaded input (a :class:`~medseg_r.serve.cases.Case`),
    ``result`` its last segmentation, the caches of :mod:`.engine`, and ``lock``, held while it
    loads or segments. The box and point prompts and their undo history live in the page."""

    def __init__(self, root: str, *, prefix_mb: int = 128, memo_entries: int = 4) -> None:
        self.id = secrets.token_urlsafe(16)
        self.folder = tempfile.mkdtemp(prefix="session-", dir=root)
        self.lock = threading.Lock()  # one segmentation at a time per session
        self.last_seen = time.monotonic()
        self.case: Any = None
        self.result: Any = None
        self.cases_loaded = 0
        self.prefix = PrefixCache(max_bytes=prefix_mb * 2**20)
        self.memo = LRU(memo_entries, max_bytes=128 * 2**20)

    def touch(self) -> None:
        self.last_seen = time.monotonic()

    def stage_folder(self) -> str:
        """A fresh folder for an input being loaded; the current case stays until :meth:`adopt`."""
        self.cases_loaded += 1
        folder = os.path.join(self.folder, f"case-{self.cases_loaded}")
        os.makedirs(folder)
        return folder

    def adopt(self, case: Any) -> None:
        """Make ``case`` current: the previous case's folder, result and caches are dropped."""
        if self.case is not None and self.case.folder != case.folder:
            shutil.rmtree(self.case.folder, ignore_errors=True)
        self.case, self.result = case, None
        self.prefix = PrefixCache(max_bytes=self.prefix.store.max_bytes)
        self.memo = LRU(self.memo.max_entries, self.memo.max_bytes)

    def close(self) -> None:
        self.case = self.result = None
        shutil.rmtree(self.folder, ignore_errors=True)


class SessionStore:
    """All sessions under one server-owned temporary folder (removed by :meth:`close`).

    Args:
        idle_minutes: a session without any request for this long is ended.
        max_sessions: beyond this many open sessions a new page is refused (:class:`Busy`).
    """

    def __init__(
        self,
        *,
        idle_minutes: float = 30.0,
        max_sessions: int = 32,
        parent: Optional[str] = None,
        prefix_mb: int = 128,
    ) -> None:
        self.root = tempfile.mkdtemp(prefix="medseg-r-serve-", dir=parent)
        self.idle_seconds = idle_minutes * 60.0
        self.max_sessions = max_sessions
        self.prefix_mb = prefix_mb
        self._sessions: Dict[str, Session] = {}
        self._lock = threading.Lock()

    def create(self) -> Session:
        self.expire()
        with self._lock:
            if len(self._sessions) >= self.max_sessions:
                raise Busy(
                    f"the server has {self.max_sessions} open sessions; close a page or try later"
                )
            session = Session(self.root, prefix_mb=self.prefix_mb)
            self._sessions[session.id] = session
        return session

    def get(self, session_id: str) -> Optional[Session]:
        """The session (its idle clock restarted), or ``None``. Cheap: idle sessions are ended by
        :meth:`expire`, which the server calls every minute and on each new session."""
        with self._lock:
            session = self._sessions.get(session_id)
        if session is not None:
            session.touch()
        return session

    def end(self, session_id: str) -> bool:
        with self._lock:
            session = self._sessions.pop(session_id, None)
        if session is None:
            return False
        with session.lock:  # wait for a running segmentation to finish writing
            session.close()
        return True

    def expire(self) -> List[str]:
        now = time.monotonic()
        with self._lock:
            stale = [
                s
                for s in self._sessions.values()
                if now - s.last_seen > self.idle_seconds and not s.lock.locked()
            ]
        for session in stale:
            self.end(session.id)
        return [s.id for s in stale]

    def __len__(self) -> int:
        return len(self._sessions)

    def close(self) -> None:
        with self._lock:
            ids = list(self._sessions)
        for session_id in ids:
            self.end(session_id)
        shutil.rmtree(self.root, ignore_errors=True)


class JobQueue:
    """``workers`` threads run segmentations; at most ``waiting`` more jobs wait for them. A job
    beyond that is refused at once with :class:`Busy` (the page shows the message) rather than
    queued without bound."""

    def __init__(self, *, workers: int = 2, waiting: int = 16) -> None:
        if workers < 1 or waiting < 0:
            raise ValueError(f"need workers >= 1 and waiting >= 0, got {workers} and {waiting}")
        self.workers, self.waiting = workers, waiting
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="segment")
        self._slots = threading.BoundedSemaphore(workers + waiting)
        self._lock = threading.Lock()
        self.in_flight = 0
        self._waiting: set = set()  # futures not yet finished (a running one cannot be cancelled)

    def submit(self, job: Callable[[], Any]) -> Future:
        if not self._slots.acquire(blocking=False):
            raise Busy(
                f"the server is busy: {self.workers} segmentation(s) running and {self.waiting} "
                f"waiting; try again in a moment"
            )
        with self._lock:
            self.in_flight += 1

        def free() -> None:
            with self._lock:
                self.in_flight -= 1
            self._slots.release()

        def run() -> Any:
            try:
                return job()
            finally:  # before the result is set: a caller that sees it may submit at once
                free()

        def done(future: Future) -> None:
            with self._lock:
                self._waiting.discard(future)
            if future.cancelled():  # never ran, so never freed its slot
                free()

        future = self._pool.submit(run)
        with self._lock:
            self._waiting.add(future)
        future.add_done_callback(done)
        return future

    def cancel_waiting(self) -> int:
        """Cancel the jobs that have not started (the server is stopping); how many were."""
        with self._lock:
            waiting = list(self._waiting)
        return sum(future.cancel() for future in waiting)

    def close(self) -> None:
        self.cancel_waiting()
        self._pool.shutdown(wait=True, cancel_futures=True)
