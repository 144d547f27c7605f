"""``medseg-r serve`` as a user runs it, stopped as a user stops it: Ctrl-C (SIGINT) or a
scheduler's SIGTERM ends the process and removes every session folder it made."""

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")


def _start(checkpoint, tmp_path):
    env = dict(os.environ, TMPDIR=str(tmp_path), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "medseg_r.cli", "serve", "--checkpoint", checkpoint, "--port", "0",
         "--device", "cpu"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.monotonic() + 120
    seen = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        seen.append(line)
        if line.startswith("serving on "):
            return proc, line.split()[2]
    proc.kill()
    raise AssertionError("the server did not start:\n" + "".join(seen))


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stopped_server_exits_and_removes_its_session_folders(serve_checkpoint, tmp_path, sig,
                                                                status):
    proc, base = _start(serve_checkpoint, tmp_path)
    try:
        request = urllib.request.Request(base + "api/session", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=60) as response:
            assert response.status == 200
            assert json.loads(response.read())["session"]
        roots = [p for p in tmp_path.iterdir() if p.name.startswith("medseg-r-serve-")]
        assert len(roots) == 1 and any(roots[0].iterdir())  # the session's folder is there
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode in (status, -sig), out  # 128 + n, or killed by the signal itself
    assert "Traceback" not in out, out
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("medseg-r-serve-")]


def test_ctrl_c_ends_the_server_as_an_interrupt_even_when_started_with_sigint_ignored(serve_checkpoint,
                                                                                      tmp_path):
    # a shell's background job starts with SIGINT ignored: uvicorn's re-raised signal was then lost
    # and the command ended with status 0 (asyncio's own handler could lose it the same way)
    env = dict(os.environ, TMPDIR=str(tmp_path), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen(
        [sys.executable, "-m", "medseg_r.cli", "serve", "--checkpoint", serve_checkpoint, "--port", "0",
         "--device", "cpu"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN))
    try:
        line = ""
        while not line.startswith("serving on "):
            line = proc.stdout.readline()
            assert line or proc.poll() is None, "the server did not start"
        request = urllib.request.Request(line.split()[2] + "api/session", data=b"", method="POST")
        with urllib.request.urlopen(request, timeout=60) as response:  # running: its handlers are set
            assert response.status == 200
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130 and out.count("medseg-r: interrupted") == 1, out
