"""Driving the web app from outside: start ``medseg-r serve`` as a process, and launch a headless
Chromium (Debian's ``chromium`` package, through Playwright) with the flags this needs on a machine
without network. Used by the browser test and by :mod:`medseg_r.serve.benchmark`."""

from __future__ import annotations

import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
from typing import List, Optional

CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
INSTALL_HINT = (
    "headless Chromium not found: install it (Debian/Ubuntu: apt-get install chromium) or set "
    "MEDSEG_R_CHROMIUM=/path/to/chromium"
)


def find_chromium() -> Optional[str]:
    """``MEDSEG_R_CHROMIUM``, else the first Chromium/Chrome on the PATH, else ``None``."""
    given = os.environ.get("MEDSEG_R_CHROMIUM")
    if given:
        return given if os.path.isfile(given) else None
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def launch_chromium(playwright, executable: str):
    """A headless Chromium browser (Playwright's ``Browser``)."""
    return playwright.chromium.launch(
        executable_path=executable, headless=True, args=CHROMIUM_FLAGS
    )


class ServerProcess:
    """``medseg-r serve ARGS --port 0`` in a child process; ``url`` once it listens. ``stop()``
    sends Ctrl-C (SIGINT) and returns the exit status. ``env``: extra environment (``TMPDIR``)."""

    def __init__(
        self, args: List[str], *, env: Optional[dict] = None, startup_s: float = 180.0
    ) -> None:
        command = [sys.executable, "-m", "medseg_r.cli", "serve", *args, "--port", "0"]
        self.process = subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.lines: List[str] = []
        found: "queue.Queue[Optional[str]]" = queue.Queue()

        def read() -> None:
            for line in self.process.stdout:
                self.lines.append(line.rstrip())
                match = re.search(r"serving on (http://\S+)", line)
                if match:
                    found.put(match.group(1))
            found.put(None)

        threading.Thread(target=read, daemon=True).start()
        try:
            self.url = found.get(timeout=startup_s)
        except queue.Empty:
            self.url = None
        if self.url is None:
            self.stop()
            raise RuntimeError("medseg-r serve did not start:\n" + "\n".join(self.lines[-20:]))

    def stop(self, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def __enter__(self) -> "ServerProcess":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
