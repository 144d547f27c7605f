"""Describing many cases: a manifest -> a training manifest, a data set -> its described copy,
and the reports a training run lacks.

``describe_manifest`` reads ``.csv`` or ``.jsonl`` rows with ``image`` and ``mask`` (paths relative
to the manifest; optional ``id``, ``split``, ``tags``, ``spacing`` as "0.7" or "0.7 0.7" (two whole
numbers joined by a comma that differ, "1,5", are refused as a likely decimal comma), and any
other fields, which are kept) and writes JSONL that ``medseg-r train --data`` reads directly:
``id``, ``image``, ``mask`` (relative to the output's folder), ``report`` (the described text),
``split``, ``tags``, the row's other fields unchanged, ``report_original`` when the row had a
report, and ``describe``: ``priors`` (the findings), ``lesions`` (measurements), ``style``,
``seed``, ``round_trip``, ``notes``, ``options`` and ``files`` (per image and mask the SHA-256 of
its bytes and a stamp of its sizes and modification time: a rerun hashes only files whose stamp
changed).

Writes are atomic and resumable: finished rows go to ``OUT.partial`` (one flushed line each) and
``OUT`` appears, complete and in manifest order, only at the end (one rename). Running the command
again (after an interruption, or over a finished ``OUT``) skips the cases already there with the
same options, image and mask (their paths and contents), and describes the others again (rows
of an earlier version, which did not record the contents, too); an ``OUT`` that describe did not
write (a user's file) is refused before any work. A case that cannot be described is reported on
one line on stderr and left out; the others go on. Reports that do not read back to their
findings (``round_trip`` false) are counted in one line on stderr.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import sys
from dataclasses import replace
from typing import Dict, List, Optional, Sequence, Tuple

from ..io.jsonl import parse_json_object
from .core import check_options, describe_case, not_read_back
from .inputs import DescribeError

SPECIAL = ("id", "image", "mask", "report", "split", "tags", "spacing")


def read_rows(manifest: str) -> List[Dict[str, object]]:
    """Rows of a ``.jsonl`` or ``.csv`` manifest (raises :class:`DescribeError`)."""
    if not os.path.isfile(manifest):
        raise DescribeError(f"manifest not found: {manifest}")
    from ..io.rows import ROW_FILE_ENDINGS, read_rows as read_manifest_rows

    if not manifest.lower().endswith(ROW_FILE_ENDINGS):
        raise DescribeError(f"{manifest}: expected a .csv or .jsonl manifest")
    try:  # a byte-order mark dropped, a legacy encoding read as such, JSON objects only
        # (the file's line of each row, as predict's manifests count: a CSV's first row is line 2)
        numbered = read_manifest_rows(manifest)
    except ValueError as exc:
        raise DescribeError(str(exc)) from None
    rows: List[Dict[str, object]] = [row for _, row in numbered]
    had_ids = any(row.get("id") not in (None, "") for row in rows)
    for number, row in numbered:
        missing = [k for k in ("image", "mask") if not row.get(k)]
        if missing:
            raise DescribeError(f"{manifest}, line {number}: missing {', '.join(missing)}")
        if row.get("id") in (None, ""):
            row["id"] = os.path.splitext(os.path.basename(str(row["image"])))[0]
    ids = [str(r["id"]) for r in rows]
    if len(set(ids)) != len(ids):
        twice = sorted({i for i in ids if ids.count(i) > 1})
        hint = "give each row its own id" if had_ids else "add an id column"
        raise DescribeError(f"{manifest}: case ids are not unique ({', '.join(twice[:5])}): {hint}")
    return rows


# A spacing written as two whole numbers joined by one comma, without a point or a space ("1,5",
# "0,7"), whose values differ is refused: it is how a spreadsheet of a decimal-comma locale writes
# one number (1.5), and 2-D pixels are (nearly) square, so 1 x 5 mm is not the likely meaning.
# Equal values ("1,1") and any spacing with a point or a space ("1.0,5.0", "1 5") are two axes.
DECIMAL_COMMA = re.compile(r"\s*(\d+),(\d+)\s*")


def _spacing_of(row: Dict[str, object], default) -> Optional[Tuple[float, ...]]:
    value = row.get("spacing")
    if value in (None, ""):
        return default
    if isinstance(value, (int, float)):
        return float(value)
    comma = DECIMAL_COMMA.fullmatch(str(value))
    if comma and float(comma[1]) != float(comma[2]):
        whole, fraction = comma[1], comma[2]
        raise DescribeError(f"spacing {value!r} reads as two axes of {whole} and {fraction} mm, "
                            f"but pixels are (nearly) square: a decimal comma? write "
                            f"{whole}.{fraction} mm as \"{whole}.{fraction}\" (or \"{whole}.{fraction} "
                            f"{whole}.{fraction}\"); two axes of {whole} and {fraction} mm as "
                            f"\"{whole} {fraction}\"")
    try:
        values = tuple(float(v) for v in str(value).replace(",", " ").split())
    except ValueError:
        raise DescribeError(f"spacing {value!r} is not numbers") from None
    return values[0] if len(values) == 1 else values  # one number: every axis


def _done(path: str, options: Dict[str, object], *,
          partial: bool) -> Tuple[Dict[str, Dict], int, List[str]]:
    """Rows already written (by id) in ``path`` with these ``options``, how many were written
    with other options (they are described again), and the ids of every row in ``path``; a torn
    last line of a ``partial`` file (a run stopped while writing) is dropped. Raises
    :class:`DescribeError` when ``path`` holds anything ``describe`` did not write: it is the
    user's file, not an earlier output."""
    done: Dict[str, Dict] = {}
    stale, ids = 0, []
    if not os.path.isfile(path):
        return done, stale, ids
    try:
        with open(path, "r", encoding="utf-8") as handle:
            lines = handle.readlines()
    except UnicodeDecodeError:
        lines = None
    for line in lines or []:
        if partial and not line.endswith("\n"):
            break
        try:
            row = parse_json_object(line)
        except ValueError:
            row = None
        if not (row is not None and "id" in row and isinstance(row.get("describe"), dict)):
            lines = None
            break
        ids.append(str(row["id"]))
        if row["describe"].get("options") == options:
            done[str(row["id"])] = row
        else:  # other options, or a version that did not record them
            stale += 1
    if lines is None:
        raise DescribeError(f"{path} exists and is not an earlier output of medseg-r describe; "
                            f"choose another --out (nothing was written)")
    return done, stale, ids


def _files_of(path: str) -> List[str]:
    if os.path.isdir(path):
        return sorted(os.path.join(folder, name) for folder, _, names in os.walk(path) for name in names)
    return [path]


def _stamp(path: str) -> Optional[List[int]]:
    """Sizes and modification times of a file (a folder's files): while they are unchanged, the
    recorded SHA-256 is taken as it is (a rerun of a finished manifest reads no image again)."""
    try:
        stats = [os.stat(name) for name in _files_of(path)]
    except OSError:
        return None
    return [len(stats), sum(st.st_size for st in stats), max((st.st_mtime_ns for st in stats), default=0)]


def _contents(path: str, earlier: Optional[Dict[str, object]] = None) -> Optional[Dict[str, object]]:
    """``{"sha256", "stamp"}`` of a file's bytes (of a folder, such as a DICOM series: of its files'
    names and bytes, in sorted order), or ``None`` when it cannot be read (describing it says why):
    what a rerun compares to know that an image or mask is still the one described. ``earlier``: the
    record of the last run, reused while the file's :func:`_stamp` is the same."""
    stamp = _stamp(path)
    if stamp is not None and isinstance(earlier, dict) and earlier.get("stamp") == stamp:
        return earlier
    digest = hashlib.sha256()
    try:
        files = _files_of(path)
        for name in files:
            digest.update(os.path.relpath(name, path).encode("utf-8", "surrogateescape") + b"\0")
            with open(name, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
    except OSError:
        return None
    return {"sha256": digest.hexdigest(), "stamp": stamp}


def _sha(record) -> Optional[str]:
    return record.get("sha256") if isinstance(record, dict) else None


def _row_out(row: Dict, description, *, base: str, out_dir: str, options: Dict[str, object],
             files: Dict[str, Optional[str]]) -> Dict[str, object]:
    data = description.to_dict()
    out = {k: v for k, v in row.items() if k not in SPECIAL}
    out.update({"id": str(row["id"]), "image": _rel(base, out_dir, row["image"]),
                "mask": _rel(base, out_dir, row["mask"]), "report": description.report.text,
                "split": row.get("split") or None, "tags": row.get("tags") or [],
                "describe": {"priors": data["findings"], "lesions": data["lesions"],
                             "style": description.style, "seed": description.seed,
                             "round_trip": description.round_trip, "notes": data["notes"],
                             "options": options, "files": files}})
    if row.get("report"):
        out["report_original"] = row["report"]
    return out


def _rel(base: str, out_dir: str, path) -> str:
    """A manifest's path (relative to its folder ``base``, or absolute) relative to ``out_dir``."""
    return os.path.relpath(os.path.abspath(_under(base, path)), os.path.abspath(out_dir))


def _under(base: str, path) -> str:
    return str(path) if os.path.isabs(str(path)) else os.path.join(base, str(path))


def describe_manifest(manifest: str, out: str, *, domain: str = "chest",
                      orientation: str = "radiological", style: str = "radiology", seed: int = 0,
                      spacing=None, target: Optional[str] = None, organ: Optional[str] = None,
                      progress: bool = True) -> Dict[str, object]:
    """Describe every case of ``manifest`` into the JSONL ``out`` (see the module docstring).

    Case ``k`` uses the seed ``seed + k``, so phrasings vary over the data set. ``spacing`` is the
    default for rows without a ``spacing`` field; the other options are :func:`describe`'s. Returns ``{"out", "written", "skipped",
    "failed": [{"id", "error"}]}``; raises :class:`DescribeError` for a bad manifest or option."""
    from tqdm import tqdm

    check_options(domain=domain, orientation=orientation, style=style, organ=organ)
    if os.path.abspath(out) == os.path.abspath(manifest):
        raise DescribeError(f"--out {out} is the manifest itself; choose another file")
    if os.path.isdir(out) or not out.lower().endswith(".jsonl"):
        raise DescribeError(f"--out {out}: give a .jsonl file (the manifest medseg-r train reads)")
    rows = read_rows(manifest)
    base = os.path.dirname(os.path.abspath(manifest))
    out_dir = os.path.dirname(os.path.abspath(out))
    # what a row's description depends on besides its image and mask: a rerun with other options
    # describes again instead of keeping the earlier text
    options = {"domain": domain, "orientation": orientation, "style": style, "seed": seed,
               "spacing": None if spacing is None else (list(spacing) if isinstance(spacing, (list, tuple))
                                                         else float(spacing)),
               "target": target, "organ": organ}
    partial = out + ".partial"
    resumed = os.path.isfile(partial)
    done, stale, held = _done(partial if resumed else out, options, partial=resumed)
    wanted = {str(r["id"]) for r in rows}
    foreign = [i for i in held if i not in wanted]
    if foreign:  # rewriting out for this manifest would drop them
        raise DescribeError(f"{out} holds {len(foreign)} described case(s) that are not in {manifest} "
                            f"(e.g. {', '.join(foreign[:3])}): it is the output of another "
                            f"manifest (or of this one before rows were removed), and rewriting "
                            f"it would drop them; choose another --out")
    if stale:
        print(f"medseg-r: {stale} case(s) of {out} were described with other options (or by an "
              f"earlier version, which did not record them): described again", file=sys.stderr)
    os.makedirs(out_dir, exist_ok=True)
    with open(partial, "w", encoding="utf-8") as handle:  # rewrite: drops a torn last line
        handle.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in done.values())
    failed: List[Dict[str, str]] = []
    written = skipped = changed = unrecorded = 0
    with open(partial, "a", encoding="utf-8") as handle:
        for k, row in enumerate(tqdm(rows, desc="describe", unit="case", disable=not progress)):
            case_id = str(row["id"])
            earlier = done.get(case_id)
            recorded = (earlier or {}).get("describe", {}).get("files") or {}
            files = {key: _contents(_under(base, row[key]), recorded.get(key) if isinstance(recorded, dict)
                                    else None) for key in ("image", "mask")}
            if earlier is not None and (earlier.get("image"), earlier.get("mask")) == (
                    _rel(base, out_dir, row["image"]), _rel(base, out_dir, row["mask"])):
                held = earlier["describe"].get("files")
                if isinstance(held, dict) and all(
                        _sha(held.get(key)) == _sha(files[key]) is not None for key in files):
                    earlier["describe"]["files"] = files  # the same bytes: a new stamp, if any, kept
                    skipped += 1
                    continue
                if "files" in earlier["describe"]:
                    changed += 1  # the same paths, other contents
                else:  # an earlier version, which did not record the contents: they may differ
                    unrecorded += 1
            done.pop(case_id, None)  # another image or mask under this id: described again
            try:
                description = describe_case(_under(base, row["image"]), _under(base, row["mask"]),
                                            spacing=_spacing_of(row, spacing), domain=domain,
                                            orientation=orientation, style=style, seed=seed + k,
                                            target=target, organ=organ)
            except (DescribeError, ValueError, OSError) as exc:
                message = " ".join(str(exc).split())
                print(f"medseg-r: case {case_id}: {message}", file=sys.stderr)
                failed.append({"id": case_id, "error": message})
                continue
            described = _row_out(row, description, base=base, out_dir=out_dir, options=options,
                                 files=files)
            handle.write(json.dumps(described, ensure_ascii=False) + "\n")
            handle.flush()
            done[case_id] = described
            written += 1
    from ..io.atomic import atomic_write

    with atomic_write(out) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.writelines(json.dumps(done[str(r["id"])], ensure_ascii=False) + "\n"
                              for r in rows if str(r["id"]) in done)
    os.unlink(partial)
    if changed:
        print(f"medseg-r: {changed} case(s) of {out} had an image or mask whose contents changed "
              f"since they were described: described again", file=sys.stderr)
    if unrecorded:
        print(f"medseg-r: {unrecorded} case(s) of {out} were described by an earlier version, "
              f"which did not record the image and mask contents: described again",
              file=sys.stderr)
    unread = [r for r in done.values() if not r["describe"].get("round_trip", True)]
    if unread:  # a manifest of them would teach training other priors than the masks'
        notes = [n for n in unread[0]["describe"].get("notes", []) if "does not read back" in n]
        print(f"medseg-r: {len(unread)} case(s) of {out} (e.g. {unread[0]['id']}): "
              f"{notes[0] if notes else not_read_back(target)}", file=sys.stderr)
    return {"out": out, "written": written, "skipped": skipped, "failed": failed}


def _described_info(path: str) -> bool:
    """Whether the ``dataset.json`` at ``path`` is one :func:`describe_dataset` wrote."""
    try:
        with open(path, "r", encoding="utf-8") as handle:
            info = json.load(handle)
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and info.get("reports") == "described" and \
        isinstance(info.get("describe"), dict)


def _dataset_info(data_dir: str) -> Dict[str, object]:
    path = os.path.join(data_dir, "dataset.json")
    if not os.path.isfile(path):
        return {}
    with open(path, "r", encoding="utf-8") as handle:
        return json.load(handle)


def describe_dataset(data_dir: str, out_dir: str, *, style: str = "radiology", seed: int = 0,
                     domain: Optional[str] = None, spacing=None,
                     progress: bool = True) -> Dict[str, object]:
    """A copy of a manifest data set (a folder with ``manifest.jsonl``, e.g. the phantom) whose
    reports are described from the masks: ``OUT/manifest.jsonl`` references the original images
    and masks (nothing is copied) and keeps every other field (the original report as
    ``report_original``); ``OUT/dataset.json`` is the original's with ``"reports":
    "described"``. Spacing: ``spacing``, else the data set's ``mm_per_px``, else pixels; domain:
    ``domain``, else the data set's ``domain``, else chest. ``out_dir`` must be a folder (or not
    exist yet) whose ``manifest.jsonl`` and ``dataset.json``, if any, describe wrote. Returns
    :func:`describe_manifest`'s summary."""
    from ..io.atomic import atomic_write

    if os.path.exists(out_dir) and not os.path.isdir(out_dir):
        raise DescribeError(f"--out {out_dir} is a file: with --data, --out must be a folder "
                            f"(it gets manifest.jsonl and dataset.json)")
    info_path = os.path.join(out_dir, "dataset.json")
    if os.path.lexists(info_path) and not _described_info(info_path):  # as for manifest.jsonl
        raise DescribeError(f"{info_path} exists and is not an earlier output of medseg-r "
                            f"describe; choose another --out (nothing was written)")
    manifest = os.path.join(data_dir, "manifest.jsonl")
    info = _dataset_info(data_dir)
    spacing = spacing if spacing is not None else info.get("mm_per_px")
    domain = domain or str(info.get("domain", "chest"))
    orientation = str(info.get("orientation", "radiological"))
    summary = describe_manifest(manifest, os.path.join(out_dir, "manifest.jsonl"), domain=domain,
                                orientation=orientation, style=style, seed=seed, spacing=spacing,
                                progress=progress)
    info.update({"reports": "described", "described_from": os.path.abspath(data_dir),
                 "describe": {"style": style, "seed": seed, "domain": domain}})
    with atomic_write(info_path) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(info, handle, indent=2)
    return summary


def fill_missing_reports(records: Sequence, *, root: str, seed: int = 0) -> List:
    """Records (``medseg_r.data.datasets.Record``) whose empty reports are described from their
    masks, for ``medseg-r train --describe-missing``. Domain, orientation and spacing come from
    ``ROOT/dataset.json`` (``domain``, ``orientation``, ``mm_per_px``) when present, else chest,
    radiological and pixels. Images and masks may be paths (relative to ``root``) or arrays
    (volume slices). Raises ``ValueError`` naming the case that cannot be described."""
    info = _dataset_info(root)
    options = {"domain": str(info.get("domain", "chest")),
               "orientation": str(info.get("orientation", "radiological")),
               "spacing": info.get("mm_per_px")}
    out = []
    for k, record in enumerate(records):
        if str(record.report or "").strip():
            out.append(record)
            continue
        image, mask = (_under(root, obj) if isinstance(obj, (str, os.PathLike)) else obj
                       for obj in (record.image, record.mask))
        try:
            report = describe_case(image, mask, seed=seed + k, **options).report
        except DescribeError as exc:
            raise ValueError(f"case {record.id}: cannot describe its mask: {exc}") from None
        out.append(replace(record, report=report.text, described=True))
    return out
