"""Sessions own a temporary folder each, removed when they end; the job queue is bounded."""

import os
import threading
import time

import pytest

from medseg_r.serve.sessions import Busy, JobQueue, SessionStore


def test_sessions_live_in_their_own_folders_and_are_removed(tmp_path):
    store = SessionStore(parent=str(tmp_path))
    a, b = store.create(), store.create()
    assert a.id != b.id and a.folder != b.folder
    assert os.path.dirname(a.folder) == store.root and store.root.startswith(str(tmp_path))
    with open(os.path.join(a.stage_folder(), "x.png"), "wb") as handle:
        handle.write(b"data")
    assert store.get(a.id) is a and len(store) == 2
    assert store.end(a.id) and not os.path.exists(a.folder) and store.get(a.id) is None
    assert not store.end(a.id)  # ending twice is harmless
    store.close()
    assert not os.path.exists(b.folder) and not os.path.exists(store.root)


def test_idle_sessions_expire_but_not_while_segmenting(tmp_path):
    store = SessionStore(parent=str(tmp_path), idle_minutes=0.001)  # 60 ms
    idle, working = store.create(), store.create()
    working.lock.acquire()
    time.sleep(0.1)
    assert store.expire() == [idle.id]
    assert not os.path.exists(idle.folder) and os.path.exists(working.folder)
    working.lock.release()
    store.close()


def test_too_many_sessions_is_busy(tmp_path):
    store = SessionStore(parent=str(tmp_path), max_sessions=2)
    store.create(), store.create()
    with pytest.raises(Busy, match="2 open sessions"):
        store.create()
    store.close()


def test_the_queue_refuses_beyond_workers_plus_waiting_and_recovers():
    queue = JobQueue(workers=2, waiting=1)
    release = threading.Event()
    futures = [queue.submit(lambda i=i: (release.wait(10), i)[1]) for i in range(3)]
    with pytest.raises(Busy, match="2 segmentation\\(s\\) running and 1 waiting") as caught:
        queue.submit(lambda: None)
    assert caught.value.status == 503 and queue.in_flight == 3
    release.set()
    assert [f.result(10) for f in futures] == [0, 1, 2]
    assert queue.submit(lambda: "again").result(10) == "again" and queue.in_flight == 0
    queue.close()


def test_a_failing_job_frees_its_slot():
    queue = JobQueue(workers=1, waiting=0)
    with pytest.raises(ZeroDivisionError):
        queue.submit(lambda: 1 / 0).result(10)
    assert queue.submit(lambda: 7).result(10) == 7
    queue.close()


def test_cancelling_the_waiting_jobs_frees_their_slots_and_spares_the_running_one():
    queue = JobQueue(workers=1, waiting=2)
    release = threading.Event()
    running = queue.submit(lambda: release.wait(10) and "ran")
    time.sleep(0.05)
    waiting = [queue.submit(lambda: "never") for _ in range(2)]
    assert queue.cancel_waiting() == 2 and all(f.cancelled() for f in waiting)
    assert queue.in_flight == 1 and not running.cancelled()
    release.set()
    assert running.result(10) == "ran"
    assert [queue.submit(lambda i=i: i) for i in range(3)][-1].result(10) == 2  # every slot is back
    queue.close()
