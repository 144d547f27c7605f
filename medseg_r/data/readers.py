"""Data set readers, chosen by file ending or folder layout (as nnU-Net chooses its image readers).

* ``manifest.jsonl`` / ``manifest.csv``: columns ``image``, ``mask``, ``report``, optional ``split``,
  ``target``, ``tags`` (JSONL list or ``;``-separated), ``id``. Paths are relative to the manifest.
* LViT layout (QaTa-COV19, MosMedData+): a folder with ``img/``, ``labelcol/`` and a ``.xlsx``/``.csv``
  whose rows give a mask file name (``mask_`` prefix allowed) and its text.
* medvlsm JSON: a list of ``{"img_name", "mask_name", "prompts": {"p0": ..., "p9": ...}}``; ``prompt``
  picks the key (default ``p0``); image/mask folders ``images/`` and ``masks/`` beside the JSON.
* Volumes (NIfTI, DICOM): see :mod:`medseg_r.data.volumes`.
"""
from __future__ import annotations

import json
import os
import re
import warnings
from typing import Callable, Dict, List, Optional

from ..io.rows import read_rows
from .datasets import Record

DatasetReader = Callable[..., List[Record]]
_READERS: Dict[str, DatasetReader] = {}


def register_reader(*endings: str):
    def wrap(fn: DatasetReader) -> DatasetReader:
        for ending in endings:
            _READERS[ending] = fn
        return fn

    return wrap


def _tags(value) -> List[str]:
    if value is None or value == "":
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    return [t for t in str(value).split(";") if t]


def _from_row(row: Dict[str, object], number: int, source: str) -> Record:
    missing = [k for k in ("image", "mask", "report") if row.get(k) in (None, "")]
    if missing and not (missing == ["report"] and "report" in row):
        absent = [k for k in missing if k not in row]  # no such column at all: a header problem?
        columns = (f" (its columns: {', '.join(map(str, row)) or 'none'}; the manifest's columns "
                   f"are image, mask, report, split, id, tags, target, in lower case)") if absent else ""
        raise ValueError(f"{source}, row {number}: missing {', '.join(missing)}{columns}")
    return Record(id=str(row.get("id") or os.path.splitext(os.path.basename(str(row["image"])))[0]),
                  image=str(row["image"]), mask=str(row["mask"]), report=str(row.get("report") or ""),
                  split=(str(row["split"]) if row.get("split") not in (None, "") else None),
                  tags=_tags(row.get("tags")), target=row.get("target") or None,
                  lesions=[les for les in row.get("lesions") or [] if isinstance(les, dict)])


@register_reader(".jsonl", ".csv")
def read_manifest(path: str, **_: object) -> List[Record]:
    """The records of a ``.jsonl`` or ``.csv`` manifest (:func:`medseg_r.io.rows.read_rows`)."""
    return [_from_row(row, number, path) for number, row in read_rows(path)]


@register_reader(".json")
def read_medvlsm(path: str, *, prompt: str = "p0", **_: object) -> List[Record]:
    with open(path, "r", encoding="utf-8") as handle:
        try:
            items = json.load(handle)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not JSON ({exc.msg})") from None
    if not isinstance(items, list):
        raise ValueError(f"{path}: expected a list of annotations")
    records = []
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise ValueError(f"{path}, item {i}: expected an object with img_name, mask_name, prompts")
        missing = [key for key in ("img_name", "mask_name") if not str(item.get(key) or "").strip()]
        if missing:
            raise ValueError(f"{path}, item {i}: no {' and no '.join(missing)}")
        prompts = item.get("prompts") or {}
        if prompt not in prompts:
            raise ValueError(f"{path}, item {i}: no prompt {prompt!r} (has {', '.join(sorted(prompts)) or 'none'})")
        text = prompts[prompt]
        text = text[0] if isinstance(text, list) else text
        records.append(Record(id=os.path.splitext(item["img_name"])[0], image=os.path.join("images", item["img_name"]),
                              mask=os.path.join("masks", item["mask_name"]), report=str(text),
                              split=item.get("split")))
    return records


def read_lvit(folder: str, *, split: Optional[str] = None, **_: object) -> List[Record]:
    """LViT layout: ``img/``, ``labelcol/``, and one ``.xlsx`` or ``.csv`` of (mask name, text)."""
    import pandas as pd

    tables = [f for f in sorted(os.listdir(folder)) if f.lower().endswith((".xlsx", ".csv"))
              and not f.startswith((".", "~$"))]  # not an editor's lock or hidden file
    if not tables:
        raise ValueError(f"{folder}: no .xlsx/.csv text file (LViT layout)")
    if len(tables) > 1:  # one was taken by name order, without a word
        raise ValueError(f"{folder}: {len(tables)} text tables ({', '.join(tables[:5])}): an LViT "
                         f"folder holds one (mask file name, text); move the others out")
    table = os.path.join(folder, tables[0])
    frame = pd.read_excel(table) if table.lower().endswith(".xlsx") else pd.read_csv(table)
    if frame.shape[1] < 2:
        raise ValueError(f"{table}: expected two columns (mask file name, text)")
    images = {os.path.splitext(f)[0]: f for f in os.listdir(os.path.join(folder, "img"))}
    records, problems = [], []  # every row that names a missing file, listed at once
    for name, text in frame.iloc[:, :2].itertuples(index=False):
        mask_name = str(name).strip()
        stem = os.path.splitext(mask_name)[0]
        image_stem = stem[len("mask_"):] if stem.startswith("mask_") else stem
        mask_file = mask_name if os.path.splitext(mask_name)[1] else mask_name + ".png"
        if image_stem not in images:
            problems.append(f"no image for {mask_name} in img/")
        elif not os.path.exists(os.path.join(folder, "labelcol", mask_file)):
            problems.append(f"mask {mask_file} not found in labelcol/")
        else:
            records.append(Record(id=image_stem, image=os.path.join("img", images[image_stem]),
                                  mask=os.path.join("labelcol", mask_file), report=str(text), split=split))
    if problems:
        from ..io.text import first_few

        raise ValueError(f"{table}: {len(problems)} row(s) name files that are not there: "
                         f"{first_few(problems, 3)}")
    return records


class DataWarning(UserWarning):
    """Something about a data set the user should know before trusting a figure (the command line
    prints it as one line)."""


def has_splits(records) -> bool:
    """Whether any record names its split (without one, every split holds every case)."""
    return any(r.split is not None for r in records)


def split_counts(records) -> str:
    """The cases of each split, for messages: ``"train 30, val 5, (no split) 2"`` (split names
    quoted when they hold spaces or differ from lower case: ``'Val '``)."""
    counts: Dict[Optional[str], int] = {}
    for r in records:
        counts[r.split] = counts.get(r.split, 0) + 1
    shown = [f"{name if name == name.strip().lower() and name else repr(name)} {n}"
             for name, n in counts.items() if name is not None]
    return ", ".join(shown + ([f"(no split) {counts[None]}"] if None in counts else [])) or "no case"


def _reader_of(path: str):
    """The reader function ``read_dataset`` uses for ``path`` and the options it sets itself."""
    if os.path.isdir(path):
        if os.path.isdir(os.path.join(path, "img")) and os.path.isdir(os.path.join(path, "labelcol")):
            return read_lvit, ("split",)
        if os.path.isfile(os.path.join(path, "manifest.jsonl")):
            return read_manifest, ()
        from .volumes import read_volume_folder

        return read_volume_folder, ()
    return _READERS.get(os.path.splitext(path)[1].lower()), ()


def _option_names(reader, internal) -> List[str]:
    """The keyword options ``reader`` takes from the user (not the ``internal`` ones)."""
    import inspect

    if reader is None:
        return []
    return [name for name, p in inspect.signature(reader).parameters.items()
            if p.kind is p.KEYWORD_ONLY and name not in internal]


def dataset_option_names(path: str) -> List[str]:
    """The ``dataset_options`` the reader of ``path`` takes (none for an unknown or missing path)."""
    return _option_names(*_reader_of(path)) if os.path.exists(path) else []


def _check_options(options: Dict[str, object], path: str, known: List[str]) -> None:
    """``dataset_options`` that the reader of ``path`` does not take (``known``: those it does) are
    an error naming them (a misspelt ``promt`` would otherwise be dropped without a word)."""
    unknown = sorted(set(options) - set(known))
    if unknown:
        raise ValueError(f"dataset option(s) {', '.join(unknown)} do not apply to {path} (it reads "
                         f"{', '.join(known) if known else 'no options'})")


def read_dataset(path: str, *, split: Optional[str] = None, **options: object):
    """Records from ``path`` and the root their relative paths start from; ``split`` filters by split."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"data set not found: {path}")
    reader, internal = _reader_of(path)
    if reader is None:
        raise ValueError(f"no reader for {path}; known endings: {', '.join(sorted(_READERS))}, or a folder")
    _check_options(options, path, _option_names(reader, internal))
    folder = os.path.isdir(path)
    source = os.path.join(path, "manifest.jsonl") if folder and reader is read_manifest else path
    extra = {"split": split} if reader is read_lvit else {}
    records = reader(source, **extra, **options)
    root = path if folder else os.path.dirname(os.path.abspath(path))
    if split is not None and has_splits(records):
        # cases, not a volume's slices (each slice record is CASE_zNNNN)
        unsplit = list(dict.fromkeys(re.sub(r"_z\d{4}$", "", r.id) if r.axial else r.id
                                     for r in records if r.split is None))
        if unsplit:  # they were left out of every split without a word
            warnings.warn(f"{path}: {len(unsplit)} case(s) name no split (e.g. "
                          f"{', '.join(unsplit[:3])}): they are in none of the splits "
                          f"({split_counts(records)}); give each row its split", DataWarning)
        records = [r for r in records if r.split == split]
    return records, root
