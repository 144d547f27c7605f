"""The ``medseg-r`` command line: thin wrappers over the library (parse arguments, call, report).

User errors (bad files, bad arguments, unreadable checkpoints) print one line and exit with status 2;
never a traceback.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from typing import List, Optional

from .. import __version__
from ..runtime import keep_freed_memory
from . import predict, reports, serve, training
from .common import UserError
from .training import TRAIN_DEFAULTS

__all__ = ["main", "build_parser", "UserError", "TRAIN_DEFAULTS"]

# Commands that run models: they get the allocator setting of medseg_r.runtime (2x faster CPU steps).
HEAVY_COMMANDS = ("predict", "export", "train", "evaluate", "demo")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="medseg-r", description="Report-guided medical image segmentation.")
    parser.add_argument("--version", action="version", version=f"medseg-r {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    reports.add_parsers(sub)  # parse-report, describe, backbones
    predict.add_parsers(sub)  # predict, export
    serve.add_parsers(sub)
    training.add_parsers(sub)  # make-data, train, evaluate, demo
    return parser


def _check_vocabulary_packs() -> None:
    """The packs of ``$MEDSEG_R_VOCAB`` are read before any command starts: a missing or broken
    pack is the user's error (exit 2), not a failure of each report, image or mask it meets."""
    from ..report.vocab import default_vocabulary, env_packs

    if env_packs():
        try:
            default_vocabulary()
        except (ValueError, OSError) as exc:  # a folder, an unreadable file
            raise UserError(f"MEDSEG_R_VOCAB: {exc}") from None


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command in HEAVY_COMMANDS:
        keep_freed_memory()
    shown = warnings.showwarning
    warnings.showwarning = _one_line_data_warnings(shown)
    try:
        _check_vocabulary_packs()
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"medseg-r: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("medseg-r: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        if not _stdout_closed():
            raise  # another pipe than the output's
        # "medseg-r parse-report --input reports.txt | head": the reader left; no error, and
        # nothing more to flush at exit
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141  # as a shell reports a command ended by SIGPIPE
    except OSError as exc:  # a folder that cannot be written, a path under a file, a full disk
        if exc.filename is None:
            raise
        where = f"{exc.filename}" + (f" -> {exc.filename2}" if exc.filename2 else "")
        print(f"medseg-r: error: {exc.strerror or exc}: {where}", file=sys.stderr)
        return 2
    finally:
        warnings.showwarning = shown


def _stdout_closed() -> bool:
    """Whether standard output's reader has gone: its pipe reports an error to a poll (where there
    is no poll, a broken pipe is taken to be the output's)."""
    import select

    try:
        poll = select.poll()
        poll.register(sys.stdout.fileno(), select.POLLOUT)
        return any(event & (select.POLLERR | select.POLLHUP) for _, event in poll.poll(0))
    except (AttributeError, OSError, ValueError):
        return True


def _one_line_data_warnings(show):
    """``warnings.showwarning`` that prints a :class:`~medseg_r.data.readers.DataWarning` as one
    line for the user and hands every other warning to ``show``."""

    def _show(message, category, filename, lineno, file=None, line=None):
        from ..data.readers import DataWarning

        if issubclass(category, DataWarning):
            print(f"medseg-r: warning: {' '.join(str(message).split())}", file=sys.stderr)
        else:
            show(message, category, filename, lineno, file, line)

    return _show

