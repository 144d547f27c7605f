"""The web app's work, apart from HTTP: sessions, inputs, parsing, segmentation through
``predict``'s own pipeline (:func:`medseg_r.inference.pipeline.predict_case`), layers and
downloads."""

from __future__ import annotations

import json
import math
import os
import shutil
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..inference.pipeline import PredictOptions, predict_case
from ..inference.sources import InputError, load_source
from ..io import atomic_write
from ..report import parse_report
from ..report.schema import Report
from . import views
from .cases import WINDOWS, Case, UploadError, open_upload, safe_name, upload_kind
from .engine import SessionPredictor
from .examples import build_examples
from .sessions import Busy, JobQueue, Session, SessionStore

DOWNLOADS = ("mask", "json", "overlay", "sheet", "stored_mask")  # what a segmentation writes (sheet:
# volumes only; stored_mask: a one-image DICOM's mask as a PNG in its stored pixel order)

MAX_POINTS = 32
BUSY = "this page is still segmenting; wait for it to finish"  # 409 while a segmentation runs


@dataclass
class ServeConfig:
    """Settings of ``medseg-r serve`` (see its ``--help``)."""

    max_upload_mb: float = 512.0
    workers: int = 2
    queue: int = 16
    idle_minutes: float = 30.0
    max_sessions: int = 32
    prefix_cache_mb: int = 128
    temp_parent: Optional[str] = None
    # Host names a page may reach the server by beyond this machine's (a reverse proxy's public
    # name); pages of those origins may use it too
    allowed_hosts: Tuple[str, ...] = ()


@dataclass
class Result:
    """One segmentation of a session's case: ``mask`` and ``attention`` in display order
    (``[H, W]`` or ``[Z, H, W]``), ``view`` what the page gets, ``outputs`` the files written."""

    rev: int
    mask: np.ndarray
    attention: Optional[np.ndarray]
    view: Dict[str, Any]
    outputs: Dict[str, str]


def _check_unicode(text: str) -> None:
    """JSON lets a request carry lone surrogates (``"\\udc80"``), which no reply can echo."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError("the report holds characters that are not valid Unicode (a lone "
                         "surrogate)") from None


def _box(value: Any, width: int, height: int) -> Optional[Tuple[float, float, float, float]]:
    if value is None:
        return None
    try:
        if isinstance(value, (str, bytes)) or any(isinstance(v, bool) for v in value):
            raise TypeError
        x0, y0, x1, y1 = (float(v) for v in value)
    except (TypeError, ValueError):
        raise InputError("a box is four numbers x0, y0, x1, y1") from None
    if not all(math.isfinite(v) for v in (x0, y0, x1, y1)):
        raise InputError("a box is four finite numbers x0, y0, x1, y1")
    x0, x1 = sorted((min(max(x0, 0.0), width), min(max(x1, 0.0), width)))
    y0, y1 = sorted((min(max(y0, 0.0), height), min(max(y1, 0.0), height)))
    if x1 - x0 < 1 or y1 - y0 < 1:
        raise InputError(
            "the box is empty: drag a rectangle of at least one pixel inside the image"
        )
    return x0, y0, x1, y1


def _points(value: Any, width: int, height: int) -> List[Tuple[float, float, int]]:
    if value is None or value == []:
        return []
    if not isinstance(value, list):
        raise InputError("points are a list of [x, y, label]")
    if len(value) > MAX_POINTS:
        raise InputError(f"at most {MAX_POINTS} point prompts")
    out = []
    for item in value:
        try:
            if isinstance(item, (str, bytes, dict)) or len(item) != 3 or any(
                    isinstance(v, bool) for v in item) or item[2] not in (0, 1):
                raise ValueError
            x, y, label = float(item[0]), float(item[1]), int(item[2])
            if not (math.isfinite(x) and math.isfinite(y)):
                raise ValueError
        except (TypeError, ValueError, IndexError):
            raise InputError(
                "a point is [x, y, label] with finite x, y and label 1 (include) or 0 (exclude)"
            ) from None
        if not (0 <= x <= width and 0 <= y <= height):  # the label was checked above
            raise InputError(
                f"point ({x:g}, {y:g}) with label {label} is outside the image"
            )
        out.append((x, y, label))
    return out


class Service:
    """Everything the HTTP layer calls. ``model`` is shared by every session (read-only)."""

    def __init__(
        self,
        model,
        *,
        config: Optional[ServeConfig] = None,
        model_info: Optional[dict] = None,
        device: Optional[str] = None,
    ) -> None:
        self.config = config or ServeConfig()
        self.predictor = SessionPredictor(model, device=device)
        self.model_info = model_info or {"backbone": model.backbone_name}
        self.store = SessionStore(
            idle_minutes=self.config.idle_minutes,
            max_sessions=self.config.max_sessions,
            parent=self.config.temp_parent,
            prefix_mb=self.config.prefix_cache_mb,
        )
        self.queue = JobQueue(workers=self.config.workers, waiting=self.config.queue)
        self.examples = build_examples()

    @property
    def max_upload_bytes(self) -> int:
        return int(self.config.max_upload_mb * 2**20)

    def close(self) -> None:
        self.queue.close()
        self.store.close()

    # ------------------------------------------------------------------ sessions and inputs
    def describe(self) -> Dict[str, Any]:
        return {
            "examples": [
                {"name": e.name, "title": e.title, "kind": e.kind} for e in self.examples.values()
            ],
            "max_upload_mb": self.config.max_upload_mb,
            "idle_minutes": self.config.idle_minutes,
            "model": self.model_info,
            "windows": {k: list(v) if v else None for k, v in WINDOWS.items()},
        }

    def _claim(self, session: Session) -> None:
        if not session.lock.acquire(blocking=False):
            raise Busy(BUSY, status=409)

    def check_free(self, session: Session) -> None:
        """:class:`Busy` (409) when the page is segmenting (an upload is refused before it is
        saved; :meth:`open_upload` claims the page for good)."""
        if session.lock.locked():
            raise Busy(BUSY, status=409)

    def load_example(self, session: Session, name: str) -> Dict[str, Any]:
        if name not in self.examples:
            raise InputError(f"no example {name!r} (known: {', '.join(self.examples)})")
        example = self.examples[name]
        self._claim(session)
        try:
            folder = session.stage_folder()
            path = example.write(folder)
            case = Case(
                folder=folder,
                path=path,
                name=os.path.basename(path),
                source=load_source(path),
                example_report=example.report,
            )
            session.adopt(case)
        finally:
            session.lock.release()
        return case.info()

    def upload_target(self, session: Session, filename: str) -> str:
        """Where an upload named ``filename`` is saved (a fresh folder); checks its kind first."""
        if not (filename or "").strip():
            raise UploadError("no file name given: upload?name=FILE (its ending tells the kind)")
        name = safe_name(filename)
        upload_kind(name)
        return os.path.join(session.stage_folder(), name)

    def open_upload(self, session: Session, path: str) -> Dict[str, Any]:
        """Read a saved upload; on any error its folder is removed and the current case kept."""
        folder = os.path.dirname(path)
        try:
            self._claim(session)
        except Busy:  # the page began segmenting while the file came in: nothing of it is kept
            shutil.rmtree(folder, ignore_errors=True)
            raise
        try:
            case = open_upload(path, folder, max_bytes=4 * self.max_upload_bytes)
            session.adopt(case)
        except InputError as exc:  # name the user's file, not the server's folder
            shutil.rmtree(folder, ignore_errors=True)
            exc.args = (str(exc).replace(folder + os.sep, ""),)
            raise
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        finally:
            session.lock.release()
        return case.info()

    @staticmethod
    def parse(text: str) -> Dict[str, Any]:
        if text is not None and not isinstance(text, str):
            raise InputError("the report must be text")
        _check_unicode(text or "")
        try:
            return views.report_view(parse_report(text or ""))
        except (TypeError, ValueError) as exc:
            raise InputError(str(exc)) from None

    # ------------------------------------------------------------------ segmentation
    def submit_segment(self, session: Session, request: Dict[str, Any]) -> Future:
        """Check a segmentation request and queue it (:class:`Busy` when the queue is full). The
        session stays claimed (its case cannot change) until the job has finished."""
        self._claim(session)
        try:
            case = session.case
            job = self._segment_job(session, case, request)
            future = self.queue.submit(job)
        except BaseException:
            session.lock.release()
            raise
        # a job cancelled before it ran (the server is stopping) never reaches its own release
        future.add_done_callback(lambda f: f.cancelled() and session.lock.release())
        return future

    def _segment_job(self, session: Session, case: Optional[Case], request: Dict[str, Any]):
        if case is None:
            raise InputError("load an image, a volume or an example first")
        info = case.info()
        box = _box(request.get("box"), info["width"], info["height"])
        points = _points(request.get("points"), info["width"], info["height"])
        volume = case.kind == "volume"
        if volume and info["slices"] > 1 and (box or points):
            raise InputError(
                "box and point prompts are for 2-D images and one-slice volumes (a DICOM "
                "radiograph); a volume of several slices is segmented from the report"
            )
        window = request.get("window") or "auto"
        if not isinstance(window, str) or window not in WINDOWS:
            raise InputError(f"unknown window {window!r} (known: {', '.join(WINDOWS)})")
        text = request.get("report")
        if text is not None and not isinstance(text, str):
            raise InputError("the report must be text")
        if not text or not text.strip():
            if box is None and not points:
                raise InputError(
                    "the report is empty: type what to segment (e.g. 'nodule in the right upper "
                    "lobe') or draw a box or click a point"
                )
            text = ""  # the box or points alone
        _check_unicode(text)
        try:
            report = parse_report(text)
        except (TypeError, ValueError) as exc:
            raise InputError(str(exc)) from None
        if report.reads_nothing and box is None and not points:
            raise InputError(
                "the report names no finding to segment: describe one (e.g. 'round nodule in "
                "the right upper lobe') or draw a box or click a point"
            )
        options = PredictOptions(
            box=box,
            window=WINDOWS[window] if volume else None,
            progress=False,
            no_finding="segment" if points and not report.findings else "error",
        )
        queued = time.perf_counter()
        return lambda: self._segment(session, case, text, report, options, points, queued)

    def _segment(
        self,
        session: Session,
        case: Case,
        text: str,
        report: Report,
        options: PredictOptions,
        points: Sequence[Tuple[float, float, int]],
        queued: float,
    ) -> Dict[str, Any]:
        try:
            start = time.perf_counter()
            hits = (session.prefix.hits, session.memo.hits)
            call = self.predictor.for_call(
                prefix=session.prefix,
                points=points,
                memo=session.memo if case.kind == "image" else None,
            )
            out_dir = os.path.join(case.folder, "out")
            summary = predict_case(
                call,
                case.path,
                text,
                out_dir,
                options=options,
                model_info=self.model_info,
                source=case.source,
                prompted=bool(points),
            )
            outputs = {k: os.path.join(out_dir, v) for k, v in summary["outputs"].items()}
            self._record_prompts(outputs["json"], summary, points)
            pred = call.last
            mask = pred.prob > options.threshold
            view = views.result_view(summary, report, mask)
            rev = (session.result.rev + 1) if session.result is not None else 1
            view.update(
                rev=rev,
                has_attention=pred.attention is not None,
                points=[list(p) for p in points],
                downloads=sorted(outputs),
                timing={
                    "model_seconds": summary["timing"]["seconds"],
                    "server_seconds": round(time.perf_counter() - start, 3),
                    "queue_seconds": round(start - queued, 3),
                    "encoder_runs": call.encoder_runs,
                    "prefix_cache_hits": session.prefix.hits - hits[0],
                    "encoder_memo_hits": session.memo.hits - hits[1],
                },
            )
            if session.case is case:
                session.result = Result(rev, mask, pred.attention, view, outputs)
            return view
        finally:
            session.lock.release()

    @staticmethod
    def _record_prompts(
        path: str, summary: Dict[str, Any], points: Sequence[Tuple[float, float, int]]
    ) -> None:
        """Add the prompts to predict's JSON (``options.box`` is there already; points are not an
        option of ``predict``)."""
        summary["prompts"] = {"box": summary["options"]["box"], "points": [list(p) for p in points]}
        with open(path, "r", encoding="utf-8") as handle:
            data = json.load(handle)
        data["prompts"] = summary["prompts"]
        with atomic_write(path) as tmp:
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump(data, handle, indent=2)

    # ------------------------------------------------------------------ pictures and files
    def picture(self, session: Session, z: int, window: str) -> bytes:
        case = self._case(session)
        if window not in WINDOWS:
            raise InputError(f"unknown window {window!r}")
        return views.png_bytes(views.fit_picture(case.picture(self._slice(case, z), window)))

    def layer(self, session: Session, what: str, z: int) -> bytes:
        if what not in ("mask", "attention"):
            raise InputError(f"unknown layer {what!r}: 'mask' or 'attention'")
        self._case(session)
        result = session.result
        if result is None:
            raise InputError("nothing segmented yet")
        z = self._slice(session.case, z)
        if what == "mask":
            return views.png_bytes(
                views.mask_layer(result.mask[z] if result.mask.ndim == 3 else result.mask)
            )
        if result.attention is None:
            raise InputError("this model has no location attention (no report modules)")
        att = result.attention[z] if result.attention.ndim == 3 else result.attention
        return views.png_bytes(views.attention_layer(att))

    def download(self, session: Session, what: str) -> str:
        case = self._case(session)
        if what not in DOWNLOADS:
            raise InputError(f"unknown download {what!r}: one of {', '.join(DOWNLOADS)}")
        if what == "sheet" and case.kind != "volume":
            raise InputError("a sheet of slices is made for volumes only; this input is a 2-D image")
        if session.result is None or what not in session.result.outputs:
            raise InputError(f"nothing to download as {what!r}: segment first")
        return session.result.outputs[what]

    @staticmethod
    def _case(session: Session) -> Case:
        if session.case is None:
            raise InputError("no input loaded")
        return session.case

    @staticmethod
    def _slice(case: Case, z: int) -> int:
        if case.kind == "image":
            return 0
        if not 0 <= z < case.source.n_slices:
            raise InputError(f"slice {z} is outside 0..{case.source.n_slices - 1}")
        return z
