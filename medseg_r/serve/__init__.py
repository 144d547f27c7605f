"""``medseg-r serve``: a local web page to load an image or volume, type the report, see the parsed
findings, segment, correct with box and point prompts, and download what ``predict`` would write.

Layout: :mod:`.engine` (the predictor with exact per-session caches), :mod:`.sessions` (sessions,
their temporary folders, the bounded job queue), :mod:`.cases` (uploads and examples),
:mod:`.views` (what the page shows), :mod:`.service` (the work), :mod:`.app` (HTTP, Starlette) and
``static/`` (the page: plain HTML, CSS and JavaScript, no build step).
"""

from __future__ import annotations

import signal
import socket
import sys
from typing import Callable, Optional, Tuple

from .service import ServeConfig, Service

__all__ = ["ServeConfig", "Service", "is_loopback", "open_socket", "run_server"]


def is_loopback(host: str) -> bool:
    """Whether ``host`` is reachable from this machine only (``localhost``, 127.0.0.0/8, ::1)."""
    import ipaddress

    try:
        return host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def open_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket (``port`` 0: a free port); ``OSError`` when the address is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError:
        sock.close()
        raise
    return sock


def host_names(sock: socket.socket, extra=()) -> Tuple[frozenset, bool]:
    """``(names, ip_hosts)``: the host names a page may use to reach a server on ``sock`` (this
    machine's loopback names, the address it listens on and ``extra``, the ``--allowed-host``
    names of a reverse proxy; for a server opened to other machines also this machine's own
    names), and whether any IP address is a good host too (a server opened to other machines:
    a rebinding attack needs a name, not an address)."""
    from .app import LOOPBACK_NAMES

    host = sock.getsockname()[0]
    names = set(LOOPBACK_NAMES) | {host.lower()} | {e.lower() for e in extra}
    if is_loopback(host):
        return frozenset(names), False
    names |= {socket.gethostname().lower(), socket.getfqdn().lower()}
    return frozenset(names), True


def run_server(
    model,
    config: ServeConfig,
    sock: socket.socket,
    *,
    model_info: Optional[dict] = None,
    device: Optional[str] = None,
    announce: Callable[[str], None] = print,
) -> None:
    """Serve on ``sock`` (see :func:`open_socket`) until interrupted (Ctrl-C, SIGTERM); every
    session folder is removed on the way out."""
    import uvicorn

    from .app import create_app

    stopped_by: list = []  # the signals that stopped the server

    class Server(uvicorn.Server):
        async def shutdown(self, sockets=None) -> None:
            # queued segmentations are cancelled first (their pages get a 503 at once), so the
            # graceful wait is for the running ones alone
            service.queue.cancel_waiting()
            await super().shutdown(sockets)

        def handle_exit(self, sig, frame) -> None:
            stopped_by.append(sig)
            super().handle_exit(sig, frame)

    service = Service(model, config=config, model_info=model_info, device=device)
    names, ip_hosts = host_names(sock, config.allowed_hosts)
    try:
        server = Server(
            uvicorn.Config(
                create_app(service, allowed_hosts=names, ip_hosts=ip_hosts,
                           trusted_origins=config.allowed_hosts),
                log_level="warning",
                access_log=False,
                timeout_graceful_shutdown=5,
            )
        )
        # listening before the address is printed: a page opened at once waits in the backlog
        # until the server runs instead of being refused
        sock.listen(2048)
        host, port = sock.getsockname()[:2]
        shown = f"[{host}]" if ":" in host else host
        announce(
            f"serving on http://{shown}:{port}/ (Ctrl-C stops it and removes its temporary files)"
        )
        sys.stdout.flush()
        server.run(sockets=[sock])
        # uvicorn raises the signal again once it has shut down, but asyncio's own SIGINT handler
        # may take it as a cancel of a task that is already finishing: the command then ended with
        # status 0 after Ctrl-C, now and then; a Ctrl-C ends it as an interrupt, always (130)
        if signal.SIGINT in stopped_by:
            raise KeyboardInterrupt
    finally:
        service.close()
        sock.close()
