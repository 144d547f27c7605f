"""The page-latency benchmark's runner: Playwright's sync API refuses a thread whose asyncio loop
runs (a notebook, or a test's own browser session), so the benchmark moves off such a thread."""
import asyncio
import threading

import pytest

from medseg_r.serve.benchmark import _off_a_running_loop


def test_work_runs_here_without_a_loop_and_in_a_thread_of_its_own_inside_one():
    here = threading.get_ident()
    assert _off_a_running_loop(threading.get_ident) == here

    async def inside():
        return _off_a_running_loop(threading.get_ident)

    assert asyncio.run(inside()) != here


def test_an_error_of_the_work_reaches_the_caller_inside_a_loop():
    def fail():
        raise ValueError("no chromium")

    async def inside():
        return _off_a_running_loop(fail)

    with pytest.raises(ValueError, match="no chromium"):
        asyncio.run(inside())
