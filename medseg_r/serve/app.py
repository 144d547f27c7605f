"""The HTTP side of ``medseg-r serve``: a Starlette app serving one static page and a small JSON
API.

Every call but ``/api/parse`` names its session (``/api/session/{id}/...``). Errors come back as
``{"error": "one line"}`` with status 400 (bad input), 403 (a request for another host name, or
from another site's page: see :func:`create_app`), 404 (unknown or ended session, unknown path),
405 (wrong method), 409 (the page is already segmenting), 413 (upload too large), 415 (wrong kind
of file), 503 (queue full, or the server is stopping) or 500 (a bug: the traceback goes to the
server's stderr); the server keeps serving after each.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import traceback
from typing import Any, Callable, Optional
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..inference.sources import InputError
from .cases import UploadError
from .service import Service
from .sessions import Busy

STATIC = os.path.join(os.path.dirname(__file__), "static")
NO_STORE = {"Cache-Control": "no-store"}
REAP_SECONDS = 60.0  # how often idle sessions are looked for (they also expire on any request)
LOOPBACK_NAMES = frozenset(("localhost", "127.0.0.1", "::1"))
# A JSON request holds a report (at most 200,000 characters, up to 6 bytes each when escaped) and
# prompts: anything larger is refused before it is read in full
MAX_JSON_BYTES = 4 * 2**20


def _error(message: str, status: int) -> JSONResponse:
    return JSONResponse(
        {"error": " ".join(str(message).split())}, status_code=status, headers=NO_STORE
    )


def _guarded(handler: Callable) -> Callable:
    """Turn the service's exceptions into one-line JSON errors."""

    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except Busy as exc:
            return _error(str(exc), exc.status)
        except UploadError as exc:
            return _error(str(exc), exc.status)
        except InputError as exc:
            return _error(str(exc), 400)
        except ClientDisconnect:  # the page went away mid-upload: nothing to answer, no bug
            return _error("the upload was interrupted", 400)
        except Exception as exc:  # a bug: keep serving, say so, log the traceback
            traceback.print_exc()
            return _error(f"internal error ({type(exc).__name__}: {exc})", 500)

    return wrapped


def create_app(service: Service, *, allowed_hosts=LOOPBACK_NAMES, ip_hosts: bool = False,
               trusted_origins=()) -> Starlette:
    """The Starlette application for ``service``; its sessions' folders are removed on shutdown.
    Requests whose ``Host`` is not among ``allowed_hosts`` (``None``: any; the default, this
    machine's loopback names, for a server bound to the loopback address; ``ip_hosts``: any IP
    address too) and requests that change state from a page of another origin than the server's
    own or ``trusted_origins`` are refused (403): no other web site, and no DNS rebinding of one,
    can drive the server from a user's browser."""

    def session_of(request: Request):
        session = service.store.get(request.path_params["sid"])
        if session is None:
            raise _Gone()
        return session

    async def index(request: Request) -> Response:
        return FileResponse(os.path.join(STATIC, "index.html"), headers=NO_STORE)

    async def new_session(request: Request) -> Response:
        session = await run_in_threadpool(service.store.create)
        return JSONResponse({"session": session.id, **service.describe()}, headers=NO_STORE)

    async def end_session(request: Request) -> Response:
        ended = await run_in_threadpool(service.store.end, request.path_params["sid"])
        return JSONResponse({"ended": ended}, headers=NO_STORE)

    async def ping(request: Request) -> Response:
        session_of(request)
        return JSONResponse({"ok": True}, headers=NO_STORE)

    async def parse(request: Request) -> Response:
        body = await _json(request)
        return JSONResponse(
            await run_in_threadpool(service.parse, body.get("report", "")), headers=NO_STORE
        )

    async def example(request: Request) -> Response:
        session = session_of(request)
        info = await run_in_threadpool(service.load_example, session, request.path_params["name"])
        return JSONResponse(info, headers=NO_STORE)

    async def upload(request: Request) -> Response:
        session = session_of(request)
        limit = service.max_upload_bytes
        too_large = UploadError(
            f"the upload is larger than the limit of {service.config.max_upload_mb:g} MB "
            f"(medseg-r serve --max-upload-mb)",
            status=413,
        )
        if _declared_over(request, limit):
            raise too_large
        if request.headers.get("content-type", "").lower().startswith("multipart/"):
            raise UploadError("send the file's own bytes as the request body (as the page does: "
                              "curl --data-binary @FILE), not a form upload (curl -F)", status=415)
        service.check_free(session)  # before the body is saved: 409 while the page segments
        path = await run_in_threadpool(
            service.upload_target, session, request.query_params.get("name", "")
        )
        size = 0
        try:
            with open(path, "wb") as handle:
                async for chunk in _body(request, limit, too_large):
                    size += len(chunk)
                    handle.write(chunk)
            if size == 0:
                raise UploadError(f"{os.path.basename(path)}: the file is empty")
        except BaseException:
            await run_in_threadpool(_remove_folder, os.path.dirname(path))
            raise
        info = await run_in_threadpool(service.open_upload, session, path)
        return JSONResponse(info, headers=NO_STORE)

    async def segment(request: Request) -> Response:
        session = session_of(request)
        body = await _json(request)
        future = await run_in_threadpool(service.submit_segment, session, body)
        try:
            view = await asyncio.wrap_future(future)
        except asyncio.CancelledError:  # the server is stopping: the job was cancelled before
            # it ran, or the graceful wait for it ran out (the request's task is cancelled)
            done = "was not run" if future.cancelled() else "did not finish in time"
            return _error(f"the server is stopping: the segmentation {done}", 503)
        return JSONResponse(view, headers=NO_STORE)

    async def picture(request: Request) -> Response:
        session = session_of(request)
        z, window = (
            _int(request.query_params.get("z", "0")),
            request.query_params.get("window", "auto"),
        )
        data = await run_in_threadpool(service.picture, session, z, window)
        return Response(data, media_type="image/png", headers=NO_STORE)

    async def layer(request: Request) -> Response:
        session = session_of(request)
        what = request.path_params["what"]
        z = _int(request.query_params.get("z", "0"))
        data = await run_in_threadpool(service.layer, session, what, z)
        return Response(data, media_type="image/png", headers=NO_STORE)

    async def download(request: Request) -> Response:
        session = session_of(request)
        path = service.download(session, request.path_params["what"])
        return FileResponse(path, filename=os.path.basename(path), headers=NO_STORE)

    def route(path: str, handler: Callable, methods=("GET",)) -> Route:
        return Route(path, _guarded(_with_gone(handler)), methods=list(methods))

    routes = [
        Route("/", index),
        route("/api/session", new_session, ("POST",)),
        route("/api/parse", parse, ("POST",)),
        route("/api/session/{sid}/end", end_session, ("POST",)),
        route("/api/session/{sid}/ping", ping, ("POST",)),
        route("/api/session/{sid}/example/{name}", example, ("POST",)),
        route("/api/session/{sid}/upload", upload, ("POST",)),
        route("/api/session/{sid}/segment", segment, ("POST",)),
        route("/api/session/{sid}/image.png", picture),
        route("/api/session/{sid}/layer/{what:str}.png", layer),
        route("/api/session/{sid}/download/{what}", download),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]

    async def reap_idle_sessions() -> None:
        while True:
            await asyncio.sleep(REAP_SECONDS)
            await run_in_threadpool(service.store.expire)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        reaper = asyncio.get_running_loop().create_task(reap_idle_sessions())
        yield
        reaper.cancel()
        await run_in_threadpool(service.close)

    async def http_error(request: Request, exc: HTTPException) -> Response:
        if request.url.path.startswith("/api/"):  # the API answers JSON, as its docstring says
            response = _error(exc.detail, exc.status_code)
        else:
            response = Response(exc.detail, status_code=exc.status_code, media_type="text/plain")
        response.headers.update(exc.headers or {})  # a 405's Allow
        return response

    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={HTTPException: http_error})
    return _SameOrigin(app, allowed_hosts, ip_hosts=ip_hosts, trusted_origins=trusted_origins)


class _SameOrigin:
    """ASGI middleware: 403 for a ``Host`` outside ``allowed_hosts`` (unless it is an IP address and
    ``ip_hosts``: DNS rebinding needs a name) and for a state-changing request (not GET/HEAD) whose
    ``Origin`` is neither the ``Host`` it was sent to (default ports filled in) nor one of
    ``trusted_origins`` (a reverse proxy's public name)."""

    def __init__(self, app, allowed_hosts, *, ip_hosts: bool = False, trusted_origins=()) -> None:
        self.app = app
        self.allowed = None if allowed_hosts is None else {h.lower() for h in allowed_hosts}
        self.ip_hosts = ip_hosts
        self.trusted = {h.lower() for h in trusted_origins}

    def __getattr__(self, name: str):  # the Starlette app's own attributes (state, routes ...)
        return getattr(self.app, name)

    def _host_allowed(self, name: Optional[str]) -> bool:
        if self.allowed is None or name is None or name in self.allowed:
            return True  # no Host header at all: not a browser, so no rebinding
        if self.ip_hosts:
            try:
                ipaddress.ip_address(name)
                return True
            except ValueError:
                return False
        return False

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            headers = {k.lower(): v.decode("latin-1") for k, v in scope["headers"]}
            host = headers.get(b"host")
            here = urlsplit("//" + host) if host else None  # the Host as parsed once
            name = here.hostname if here else None
            refused = None
            if not self._host_allowed(name):
                refused = (f"this server answers requests to {', '.join(sorted(self.allowed))} only "
                           f"(medseg-r serve --allowed-host NAME for another name)")
            origin = headers.get(b"origin")
            if refused is None and origin and here and scope["method"] not in ("GET", "HEAD"):
                sent = urlsplit(origin)
                default = 443 if sent.scheme == "https" else 80
                same = (sent.hostname, sent.port or default) == (here.hostname, here.port or default)
                if not same and (sent.hostname or "") not in self.trusted:
                    refused = "a page of another site may not use this server"
            if refused is not None:
                await _error(refused, 403)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class _Gone(Exception):
    """The session id is unknown: it ended (page closed, idle, server restarted)."""


def _with_gone(handler: Callable) -> Callable:
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except _Gone:
            return _error(
                "this session has ended (idle too long, or the server restarted): reload the page",
                404,
            )

    return wrapped


def _declared_over(request: Request, limit: int) -> bool:
    """Whether the request's ``Content-Length`` says its body is over ``limit`` bytes."""
    declared = request.headers.get("content-length")
    return declared is not None and declared.isdigit() and int(declared) > limit


async def _body(request: Request, limit: int, too_large: Exception):
    """The request body's chunks, ``too_large`` raised once more than ``limit`` bytes have come
    (a body sent without its length, or longer than it said)."""
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        yield chunk


async def _json(request: Request) -> Any:
    """The request's JSON object, read up to :data:`MAX_JSON_BYTES` (413 beyond, before the rest is
    read); malformed or too deeply nested JSON is a 400."""
    too_large = UploadError(f"the request body is larger than {MAX_JSON_BYTES / 2**20:g} MB", status=413)
    if _declared_over(request, MAX_JSON_BYTES):
        raise too_large
    data = bytearray()
    async for chunk in _body(request, MAX_JSON_BYTES, too_large):
        data += chunk
    try:
        body = json.loads(bytes(data))
    except (ValueError, RecursionError):  # RecursionError: "[[[[..." nested too deep to read
        raise InputError("the request body is not JSON") from None
    if not isinstance(body, dict):
        raise InputError("the request body must be a JSON object")
    return body


def _int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise InputError(f"not a whole number: {text!r}") from None


def _remove_folder(folder: str) -> None:
    import shutil

    shutil.rmtree(folder, ignore_errors=True)
