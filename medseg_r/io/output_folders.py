"""Whose is an output folder: ``make-data`` and ``evaluate`` write into a folder only when it is
new, empty or their own earlier output, never over a user's files (a ``ValueError`` says what the
folder holds)."""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from typing import Optional


def is_plain_file_name(name: str) -> bool:
    """Whether ``name`` can name an output file inside a folder and nothing outside it: not blank,
    not ``.`` or ``..``, no folder separator (``/``, and ``\\`` everywhere: a data set written on
    one system is read on another), no NUL."""
    return bool(name.strip()) and name not in (".", "..") and not any(
        sep and sep in name for sep in ("/", "\\", "\0", os.sep, os.altsep))


def check_phantom_folder(out: str, *, n: int, seed: int, size: int) -> None:
    """``make-data``'s folder must be new, empty, an earlier ``make-data`` with the same settings
    (reused, or extended by more splits) or one that was interrupted (nothing but its case images):
    anything else would be overwritten or mixed with the new cases."""
    if not os.path.exists(out):
        return
    if not os.path.isdir(out):
        raise ValueError(f"--out {out} is a file, not a folder")
    names = set(os.listdir(out))
    meta = os.path.join(out, "dataset.json")
    if os.path.isfile(meta):
        try:
            with open(meta, encoding="utf-8") as handle:
                held = json.load(handle)
        except (OSError, ValueError):
            held = None
        if not isinstance(held, dict) or held.get("kind") != "phantom":
            raise ValueError(f"{out} holds a data set (dataset.json) that make-data did not write: "
                             f"choose another --out")
        if held.get("reports") == "described":  # describe --data's copy: its images are elsewhere
            raise ValueError(f"{out} holds reports that medseg-r describe wrote for a phantom (not "
                             f"the phantom itself): choose another --out")
        if (held.get("n"), held.get("seed"), held.get("size")) != (n, seed, size):
            raise ValueError(f"{out} holds a phantom of --n {held.get('n')} --seed {held.get('seed')} "
                             f"--size {held.get('size')}: writing --n {n} --seed {seed} --size {size} "
                             f"there would replace it; choose another --out (or delete it first)")
        return
    case = re.compile(r"case_\d{5}\.png|\.partial-.*")  # a killed write leaves .partial-*
    names = {n for n in names if not n.startswith(".partial-")}
    if "manifest.jsonl" in names and phantom_manifest(os.path.join(out, "manifest.jsonl")):
        names.discard("manifest.jsonl")  # killed between its manifest and its dataset.json
    foreign = sorted(names - {"images", "masks"}) + sorted(
        f"{sub}/{name}" for sub in ("images", "masks") if sub in names
        for name in (os.listdir(os.path.join(out, sub)) if os.path.isdir(os.path.join(out, sub))
                     else [""]) if not case.fullmatch(name))
    if foreign:
        raise ValueError(f"{out} is not empty and not an earlier make-data's folder (it holds "
                         f"{', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}): choose a "
                         f"new or empty --out")


def phantom_manifest(path: str) -> bool:
    """Whether every row of ``path`` is a phantom case's as make-data writes it (its id and image
    and mask paths), so that a generation killed before its ``dataset.json`` may go on."""
    from .jsonl import read_jsonl_rows

    try:
        rows = [row for _, row in read_jsonl_rows(path)]
    except (OSError, ValueError):
        return False
    return all(isinstance(r.get("id"), str) and re.fullmatch(r"case_\d{5}", r["id"]) and
               r.get("image") == f"images/{r['id']}.png" and r.get("mask") == f"masks/{r['id']}.png"
               for r in rows)


# what ``evaluate`` writes in its folder (medseg_r.engine.evaluate): the names live here alone
CASES_CSV, SUMMARY_JSON, OVERLAYS = "cases.csv", "summary.json", "overlays"
PREDICTIONS = "predictions"  # --save-predictions: each case's predicted mask, ID.png
EVALUATE_TABLES = (CASES_CSV, SUMMARY_JSON)
EVALUATE_PICTURES = (OVERLAYS, PREDICTIONS)  # folders of PNG files
EVALUATE_FILES = {*EVALUATE_TABLES, *EVALUATE_PICTURES}


def check_evaluate_folder(out: str) -> None:
    """``evaluate``'s ``--out`` must be new, empty or an earlier ``evaluate``'s folder (which it
    replaces, overlays included); anything else is refused rather than overwritten."""
    if not os.path.exists(out):
        return
    if not os.path.isdir(out):
        raise ValueError(f"--out {out} is a file, not a folder")
    names = {n for n in os.listdir(out) if not _is_staging(out, n)}
    if not names:
        return
    foreign = sorted(names - EVALUATE_FILES)
    if CASES_CSV in names and not _evaluates_table(os.path.join(out, CASES_CSV)):
        foreign.append(f"a {CASES_CSV} evaluate did not write")
    for folder in EVALUATE_PICTURES:
        pictures = os.path.join(out, folder)
        if os.path.isdir(pictures):
            foreign += [f"{folder}/{n}" for n in sorted(os.listdir(pictures)) if not n.endswith(".png")]
        elif folder in names:
            foreign.append(folder)
    if SUMMARY_JSON in names:  # an interrupted evaluate leaves overlays only: no summary yet
        try:
            with open(os.path.join(out, SUMMARY_JSON), encoding="utf-8") as handle:
                held = json.load(handle)
            ours = isinstance(held, dict) and "overall" in held and "subsets" in held
        except (OSError, ValueError):
            ours = False
        if not ours:
            foreign.append("a summary.json evaluate did not write")
    if foreign:
        raise ValueError(f"--out {out} is not empty and not an earlier evaluate's folder (it holds "
                         f"{', '.join(foreign[:3])}): choose a new or empty folder")


EVALUATE_STAGING = ".evaluate-"  # where a running evaluate writes, moved into place when done
_STAGING_MARK = ".medseg-r-evaluate-staging"  # inside it: no folder of the user's of that name is taken


def _is_staging(out: str, name: str) -> bool:
    return name.startswith(EVALUATE_STAGING) and os.path.isfile(os.path.join(out, name, _STAGING_MARK))


def _evaluates_table(path: str) -> bool:
    """Whether ``path`` is a cases.csv evaluate wrote (its header), not a manifest of that name."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.readline().startswith("id,tags,dice,iou,hd95")
    except (OSError, UnicodeDecodeError):
        return False


def clear_evaluate_folder(out: str, *, keep: Optional[str] = None) -> None:
    """Remove an earlier ``evaluate``'s outputs from ``out`` (a folder :func:`check_evaluate_folder`
    accepted), so that none of its overlays is left beside the new figures; a staging folder an
    evaluate killed outright left behind goes too (not ``keep``, the running one's)."""
    for name in EVALUATE_TABLES:
        if os.path.isfile(os.path.join(out, name)):
            os.remove(os.path.join(out, name))
    for folder in EVALUATE_PICTURES:
        if os.path.isdir(os.path.join(out, folder)):
            shutil.rmtree(os.path.join(out, folder))
    for name in os.listdir(out):
        path = os.path.join(out, name)
        if _is_staging(out, name) and (keep is None or os.path.abspath(path) != os.path.abspath(keep)):
            shutil.rmtree(path, ignore_errors=True)


def start_evaluate_outputs(out: str) -> str:
    """A staging folder inside ``out`` (made if missing) for a new evaluate's outputs: the earlier
    ones stay whole until :func:`finish_evaluate_outputs` (an interrupted or failed run loses
    nothing)."""
    os.makedirs(out, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=EVALUATE_STAGING, dir=out)
    open(os.path.join(staging, _STAGING_MARK), "w").close()
    return staging


def finish_evaluate_outputs(out: str, staging: str) -> None:
    """Replace the earlier outputs in ``out`` by the new ones in ``staging`` (then removed)."""
    clear_evaluate_folder(out, keep=staging)
    os.remove(os.path.join(staging, _STAGING_MARK))
    for name in os.listdir(staging):
        os.replace(os.path.join(staging, name), os.path.join(out, name))
    os.rmdir(staging)


# what ``medseg-r demo`` writes in its folder (medseg_r.engine.demo)
DEMO_RESULTS, DEMO_FIGURE = "results.json", "figure.png"
DEMO_FOLDERS = ("data", "feature_cache", "runs", "eval")
OS_METADATA = (".DS_Store", "Thumbs.db", "desktop.ini")  # files a file browser leaves behind


def check_demo_folder(out: str) -> None:
    """The demo's ``--out`` must be new, empty or an earlier demo's folder (whose data and encodings
    it reuses and whose figure, results and scores it replaces); a folder with anything else, or
    with a ``results.json``, ``figure.png`` or ``eval/`` the demo did not write, is refused rather
    than overwritten. Its ``data`` folder is checked again by make-data's own rule."""
    if not str(out).strip():
        raise ValueError("--out must name a folder (it is empty)")
    if not os.path.exists(out):
        return
    if not os.path.isdir(out):
        raise ValueError(f"--out {out} is a file, not a folder")
    names = {n for n in os.listdir(out) if not n.startswith(".partial-") and n not in OS_METADATA}
    foreign = sorted(names - {DEMO_RESULTS, DEMO_FIGURE, *DEMO_FOLDERS})
    foreign += [n for n in DEMO_FOLDERS if n in names and not os.path.isdir(os.path.join(out, n))]
    if DEMO_RESULTS in names:
        try:
            with open(os.path.join(out, DEMO_RESULTS), encoding="utf-8") as handle:
                held = json.load(handle)
            ours = isinstance(held, dict) and {"models", "config"} <= set(held)
        except (OSError, ValueError):
            ours = False
        if not ours:
            foreign.append(f"a {DEMO_RESULTS} the demo did not write")
    elif DEMO_FIGURE in names and "data" not in names:  # the demo writes its data first
        foreign.append(f"a {DEMO_FIGURE} the demo did not write")
    scores = os.path.join(out, "eval")
    if os.path.isdir(scores):  # one evaluate folder per model
        for name in sorted(os.listdir(scores)):
            if name in OS_METADATA:
                continue
            try:
                if not os.path.isdir(os.path.join(scores, name)):
                    raise ValueError(f"eval/{name} is a file")
                check_evaluate_folder(os.path.join(scores, name))
            except ValueError:
                foreign.append(f"eval/{name}")
    if foreign:
        raise ValueError(f"--out {out} is not empty and not an earlier demo's folder (it holds "
                         f"{', '.join(foreign[:3])}{', ...' if len(foreign) > 3 else ''}): choose a "
                         f"new or empty folder, or the earlier demo's")
