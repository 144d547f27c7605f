"""Batch prediction from a manifest, resumable: finished cases (their JSON exists) are skipped, every
output is written atomically, and one bad case is reported without stopping the others.

Manifest (``.csv`` or ``.jsonl``; paths relative to the manifest's folder): ``image`` and ``report`` (or
``report_file``) required; optional ``id`` (output stem), ``reference`` (or ``mask``) for Dice/IoU, and
``box`` as ``"x0 y0 x1 y1"`` (or, in JSON lines, a list of four numbers).
"""
from __future__ import annotations

import json
import os
from typing import Any, Dict, List, Optional

from ..io import atomic_write
from ..io.output_folders import is_plain_file_name
from ..io.rows import ROW_FILE_ENDINGS, read_rows
from ..io.text import first_few, read_text
from .options import check_box
from .pipeline import RESULT_VERSION, PredictOptions, case_stem, output_paths, predict_case
from .predictor import Predictor
from .sources import InputError


COLUMNS = ("id", "image", "report", "report_file", "reference", "mask", "box")


def read_manifest(path: str) -> List[Dict[str, str]]:
    """The cases of a ``.csv`` or ``.jsonl`` manifest (see the module docstring). A manifest that
    cannot be read, or any row without an image or a report, with a bad box or a bad or duplicate
    id, is an :class:`InputError` listing the bad rows, before any case is predicted."""
    if not os.path.isfile(path):
        raise InputError(f"manifest not found: {path}")
    if not path.lower().endswith(ROW_FILE_ENDINGS):
        raise InputError(f"{path}: a manifest must be .csv or .jsonl")
    try:  # a byte-order mark dropped (Excel's "CSV UTF-8"), JSON objects only
        rows = read_rows(path)
    except ValueError as exc:
        raise InputError(f"{path}: unreadable manifest ({exc})") from None
    if not rows:
        raise InputError(f"{path}: the manifest has no rows")
    columns = list(dict.fromkeys(k for _, row in rows for k in row))
    if "image" not in columns:
        raise InputError(f"{path}: no 'image' column (columns: {', '.join(map(repr, columns)) or 'none'}; "
                         f"names are lower case)")
    import difflib

    # a misspelt or capitalised optional column was dropped without a word (no reference, no box)
    near = {c: difflib.get_close_matches(c.lower(), COLUMNS, n=1, cutoff=0.75) for c in columns
            if c not in COLUMNS}
    near = {c: m[0] for c, m in near.items() if m}
    if near:
        raise InputError(f"{path}: column(s) {', '.join(f'{c!r} (did you mean {m!r}?)' for c, m in near.items())} "
                         f"are not read; the columns are {', '.join(COLUMNS)} (lower case)")
    base = os.path.dirname(os.path.abspath(path))
    cases, stems, problems = [], set(), []
    for n, row in rows:
        try:
            case = _case_of_row(row, base, stems)
        except InputError as exc:
            problems.append(f"row {n}: {exc}")
            if row.get("image"):  # its id is taken all the same: a later row of the same id is told
                stems.add(str(row.get("id") or case_stem(str(row["image"]))))
            continue
        stems.add(case["id"])
        cases.append(case)
    if problems:  # every bad row at once, before any work
        raise InputError(f"{path}: {len(problems)} bad row(s), nothing predicted: {first_few(problems, 5)}")
    return cases


def _case_of_row(row: Dict[str, Any], base: str, stems: set) -> Dict[str, Any]:
    """The case of one manifest row (paths joined to ``base``; ``stems``: the ids taken so far); an
    :class:`InputError` saying what is wrong with it."""
    if not row.get("image"):
        raise InputError("empty 'image'")
    if not (row.get("report") or row.get("report_file")):
        raise InputError("neither 'report' nor 'report_file'")
    case = {"image": os.path.join(base, str(row["image"])), "id": str(row.get("id") or case_stem(str(row["image"])))}
    if row.get("report_file"):
        case["report_file"] = os.path.join(base, str(row["report_file"]))
    else:
        case["report"] = str(row["report"])
    ref = row.get("reference") or row.get("mask")
    if ref:
        case["reference"] = os.path.join(base, str(ref))
    if row.get("box"):
        try:
            value = row["box"]
            parts = value if isinstance(value, (list, tuple)) else str(value).replace(",", " ").split()
            box = [float(v) for v in parts]
        except (ValueError, TypeError):
            box = []
        if len(box) != 4:
            raise InputError("box must be four numbers 'x0 y0 x1 y1'")
        try:  # a reversed box too, before the model loads
            check_box(box)
        except ValueError as exc:
            raise InputError(str(exc)) from None
        case["box"] = box
    if not is_plain_file_name(case["id"]):
        raise InputError(f"case id {case['id']!r} must be a plain file name "
                         f"(its outputs are written into the output folder)")
    if case["id"] in stems:
        raise InputError(f"duplicate case id {case['id']!r} " + (
            "(each row's 'id' must be its own)" if row.get("id") else
            "(two images of one file name: add an 'id' column)"))
    return case


def _report_text(case: Dict[str, Any]) -> str:
    if "report_file" not in case:
        return case["report"]
    if not os.path.isfile(case["report_file"]):
        raise InputError(f"report file not found: {case['report_file']}")
    return read_text(case["report_file"])


BATCH_SUMMARY = "batch_summary.json"
_SUMMARY_KEYS = ("manifest", "cases", "done", "skipped", "failed")


def check_batch_summary(out_dir: str) -> None:
    """A ``batch_summary.json`` already in ``out_dir`` must be an earlier batch's (it is replaced):
    an :class:`InputError` for a file of the user's of that name."""
    path = os.path.join(out_dir, BATCH_SUMMARY)
    if not os.path.exists(path):
        return
    try:
        with open(path, encoding="utf-8") as handle:
            held = json.load(handle)
    except (OSError, ValueError):
        held = None
    if not (isinstance(held, dict) and all(k in held for k in _SUMMARY_KEYS)):
        raise InputError(f"{path} exists and is not an earlier batch's summary; choose another --out "
                         f"or move the file")


def _same_as_before(json_path: str, case: Dict[str, Any], report_text: str, options: PredictOptions,
                    model_info: Optional[Dict[str, Any]]) -> bool:
    """Whether the finished prediction in ``json_path`` is of this case as asked now: the same
    image, report, reference, options and model, by this version's reading and outputs
    (``RESULT_VERSION``), its files all there (a resumed batch skips only those)."""
    from dataclasses import asdict

    try:
        with open(json_path, encoding="utf-8") as handle:
            held = json.load(handle)
    except (OSError, ValueError):
        return False
    if not isinstance(held, dict):
        return False
    reference = case.get("reference")
    asked = {"input": os.path.abspath(case["image"]), "report": report_text,
             "reference": os.path.abspath(reference) if reference else None,
             "options": json.loads(json.dumps(asdict(options))),
             "model": json.loads(json.dumps(model_info or {}))}
    before = {"input": held.get("input"), "report": (held.get("report") or {}).get("report"),
              "reference": (held.get("reference") or {}).get("path"),
              "options": held.get("options"), "model": held.get("model")}
    outputs = held.get("outputs")
    whole = isinstance(outputs, dict) and all(
        isinstance(name, str) and os.path.isfile(os.path.join(os.path.dirname(json_path), name))
        for name in outputs.values())
    return asked == before and whole and held.get("result_version") == RESULT_VERSION and \
        not _changed_since(json_path, case)


def _changed_since(json_path: str, case: Dict[str, Any]) -> bool:
    """Whether the case's image, reference or report file (a DICOM folder: any of its files) was
    modified after its prediction was written: the same name, other contents (a replaced or
    flipped image kept its stale mask)."""
    try:
        written = os.stat(json_path).st_mtime_ns
    except OSError:
        return True
    for key in ("image", "reference", "report_file"):
        path = case.get(key)
        if not path:
            continue
        files = ([os.path.join(folder, name) for folder, _, names in os.walk(path) for name in names]
                 if os.path.isdir(path) else [path])
        for name in files:
            try:
                if os.stat(name).st_mtime_ns > written:
                    return True
            except OSError:
                return True
    return False


def predict_manifest(predictor: Predictor, manifest: str, out_dir: str, *, options: Optional[PredictOptions] = None,
                     model_info: Optional[Dict[str, Any]] = None, log=print,
                     cases: Optional[List[Dict[str, Any]]] = None) -> Dict[str, Any]:
    """Predict every case of ``manifest`` (``cases``: its :func:`read_manifest`, when already read);
    returns ``{"done", "skipped", "failed": [{"id", "error"}]}`` and writes it to
    ``out_dir/batch_summary.json``. A case whose finished prediction is of the same image, report,
    reference, options and model is skipped (a resumed batch); one made otherwise is predicted
    again (refused, as ``predict`` refuses it, when it was of another image)."""
    from dataclasses import replace

    from tqdm.auto import tqdm

    options = options or PredictOptions()
    cases = read_manifest(manifest) if cases is None else cases
    check_batch_summary(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    done, skipped, failed = [], [], []
    finished = False
    try:
        for case in tqdm(cases, unit="case", desc="cases", disable=not options.progress):
            try:
                case_options = replace(options, box=tuple(case["box"]) if "box" in case else None,
                                       progress=False)
                report_text = _report_text(case)
                earlier = output_paths(case["image"], out_dir, case["id"])["json"]
                redone = os.path.isfile(earlier)
                if redone and _same_as_before(earlier, case, report_text, case_options, model_info):
                    skipped.append(case["id"])
                    continue
                predict_case(predictor, case["image"], report_text, out_dir, options=case_options,
                             stem=case["id"], reference=case.get("reference"), model_info=model_info)
                done.append(case["id"])
                if redone:
                    log(f"{case['id']}: its earlier prediction was made of another report, reference, "
                        f"options or model, or by an earlier version of medseg-r, or its files "
                        f"changed since or are missing: predicted again")
            except (InputError, ValueError, OSError, RuntimeError) as exc:  # this case only
                failed.append({"id": case["id"], "error": str(exc) or type(exc).__name__})
                log(f"{case['id']}: error: {failed[-1]['error']}")
        finished = True
    finally:  # also when the run is stopped: the summary says how far it got
        summary = {"manifest": os.path.abspath(manifest), "cases": len(cases), "done": done,
                   "skipped": skipped, "failed": failed}
        if not finished:
            summary["interrupted"] = True
        with atomic_write(os.path.join(out_dir, BATCH_SUMMARY)) as tmp:
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump(summary, handle, indent=2)
    return summary
