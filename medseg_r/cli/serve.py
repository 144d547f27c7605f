"""``serve``: the local web page."""
from __future__ import annotations

import math
import os
import sys

from ..runtime import keep_freed_memory
from . import common
from .common import UserError, need_extra


def _cmd_serve(args) -> int:
    """The local web app (medseg_r.serve): same model loading as predict, one line per error."""
    need_extra("serve", ["starlette", "uvicorn"], "medseg-r serve")
    from ..serve import ServeConfig, is_loopback, open_socket, run_server

    for name in ("max_upload_mb", "idle_minutes"):
        if not (math.isfinite(getattr(args, name)) and getattr(args, name) > 0):
            raise UserError(f"--{name.replace('_', '-')} must be a positive number")
    if args.workers < 1 or args.queue < 0 or not 0 <= args.port <= 65535:
        raise UserError("need --workers >= 1, --queue >= 0 and --port in 0..65535")
    if not is_loopback(args.host):
        print(f"warning: --host {args.host} lets other machines reach this page; it has no login",
              file=sys.stderr)
    common.check_device(args.device)
    try:  # before the model loads: a taken port is reported at once
        sock = open_socket(args.host, args.port)
    except OSError as exc:
        where = f"{args.host}:{args.port}"
        raise UserError(f"cannot listen on {where}: {exc.strerror or exc}") from None
    keep_freed_memory()
    try:
        model, trained = common.model_from_args(args)
    except BaseException:
        sock.close()
        raise
    if not trained:
        print(f"note: no MedSeg-R checkpoint given: the prior modules are untrained (zero gates), "
              f"so the masks are those of plain {model.backbone_name} (with your box or points, "
              f"if any).", file=sys.stderr)
    config = ServeConfig(max_upload_mb=args.max_upload_mb, workers=args.workers, queue=args.queue,
                         idle_minutes=args.idle_minutes, allowed_hosts=tuple(args.allowed_host or ()))
    checkpoint = os.path.basename(args.checkpoint) if args.checkpoint else None
    info = common.model_info(model, checkpoint, trained)
    try:
        run_server(model, config, sock, model_info=info, device=args.device)
    except (ValueError, RuntimeError) as exc:
        raise UserError(str(exc)) from None
    return 0


def add_parsers(sub) -> None:
    """Add the ``serve`` command to the sub-parsers ``sub``."""
    p = sub.add_parser("serve", help="local web page: load, type a report, segment, correct",
                       description="Start a local web app (open the printed address in a browser).")
    p.add_argument("--checkpoint", help="MedSeg-R checkpoint or backbone weights (as predict)")
    p.add_argument("--backbone", default=None,
                   help="backbone name (default: litemedsam, or the checkpoint's)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default 127.0.0.1: this machine only)")
    p.add_argument("--port", type=int, default=7860, help="port (default 7860; 0 picks a free one)")
    p.add_argument("--max-upload-mb", dest="max_upload_mb", type=float, default=512.0,
                   help="largest accepted upload in MB (default 512)")
    p.add_argument("--workers", type=int, default=2, help="segmentations run at once (default 2)")
    p.add_argument("--queue", type=int, default=16,
                   help="segmentations that may wait beyond those; more are told 'busy' "
                        "(default 16)")
    p.add_argument("--idle-minutes", dest="idle_minutes", type=float, default=30.0,
                   help="a page silent this long loses its session and files (default 30)")
    p.add_argument("--allowed-host", dest="allowed_host", action="append", metavar="NAME",
                   help="another host name pages may reach the server by (a reverse proxy's public "
                        "name; repeat for several): requests for other names, and state changes "
                        "from other sites' pages, are refused")
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when available)")
    p.set_defaults(func=_cmd_serve)
