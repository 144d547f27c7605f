"""Does a trained row follow the cue its subset is built on? A counterfactual probe of a finished
accuracy benchmark: the same image read with two reports that differ in that cue alone.

    python -m medseg_r.benchmarks.counterfactual medseg_r_accuracy [--rows medseg_r_attr none_attr]

Each ``by_location``, ``by_texture`` and ``by_shape`` test case with one described lesion has a
*look-alike*: a lesion that is not the target and differs from it in the subset's cue only (another
zone, same texture and shape; the same zone, another texture; the same zone and texture, another
shape). Its report is read twice: as written, and with the cue's words in the target's sentence
replaced by the look-alike's (words of the training bank, so that the parser reads them). A row that
reads the cue marks the target under the first report and the look-alike under the second: it
*follows* the cue. One that ignores the cue marks the same lesion under both, and follows in no case.
A pair is kept only where the parser reads the cue of both reports as intended (one finding, with the
target's cue, then the look-alike's), so that the probe measures the model, not the report reader.
A mask marks a lesion when it covers a tenth of its box; a mask that marks both (a model
that hedges between candidates it cannot tell apart boxes the two) follows in neither case.

What it answers: an ablation that does not lower Dice on its own subset either leaves the row still
following the cue (the cue reaches the choice by another path) or leaves it following as rarely as
the full row (the row hardly uses the cue at all). Rows that read nothing (``none``, ``none_attr``)
cannot follow; a text row can.

Reads ``DIR/data`` (the test split and its manifest) and every ``DIR/runs/ROW_seedS/model.ckpt`` with
its feature cache ``DIR/feature_cache``; writes ``DIR/counterfactual.json`` and ``.md``. Nothing is
trained; each run costs about two test-split passes over the three subsets' cases.
"""
from __future__ import annotations

import argparse
import json
import os
from dataclasses import replace
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..data.phantom.reports import KNOWN
from ..io import atomic_write
from ..report import parse_report
from .breakdown import _box, find_runs

CUES = {"by_location": "location", "by_texture": "texture", "by_shape": "shape"}
# What a look-alike shares with the target in each subset (it differs in the cue)
SAME = {"location": ("texture", "shape"), "texture": ("side", "zone"),
        "shape": ("side", "zone", "texture")}
PICKS = ("target", "look-alike", "both", "none")
TOLD = ("by_texture", "by_shape")  # the subsets whose cue an attribute head reads


def look_alike(lesions: Sequence[Dict], cue: str) -> Optional[Tuple[Dict, Dict]]:
    """``(target, look-alike)`` of a case with one described lesion: the largest non-target lesion
    that shares :data:`SAME`'s attributes with the target and differs in ``cue``; ``None`` if none."""
    targets = [les for les in lesions if les.get("role") == "target"]
    if len(targets) != 1 or not targets[0].get("words") or not targets[0].get("sentence"):
        return None
    target = targets[0]

    def differs(les: Dict) -> bool:
        if cue == "location":
            return (les["side"], les["zone"]) != (target["side"], target["zone"])
        return les[cue] != target[cue]

    others = [les for les in lesions if les is not target and differs(les)
              and all(les[key] == target[key] for key in SAME[cue])]
    if not others:
        return None
    return target, max(others, key=lambda les: float(les.get("area_px", 0)))


def cue_words(lesion: Dict, cue: str) -> str:
    """Training-bank words naming ``lesion``'s ``cue`` (what the parser reads)."""
    if cue == "location":
        return f"in the {lesion['side']} {lesion['zone']} zone"
    return KNOWN[cue][str(lesion[cue])][0]


def swapped_report(report: str, target: Dict, other: Dict, cue: str) -> Optional[str]:
    """``report`` with the cue's words in ``target``'s sentence replaced by ``other``'s; ``None``
    when the sentence or its cue words are not found."""
    sentence, words = str(target["sentence"]), target["words"].get(cue)
    if not words or sentence not in report:
        return None
    at = sentence.lower().find(str(words).lower())
    if at < 0:
        return None
    new = cue_words(other, cue)
    if at == 0:
        new = new[0].upper() + new[1:]
    return report.replace(sentence, sentence[:at] + new + sentence[at + len(words):], 1)


def reads_cue(text: str, lesion: Dict, cue: str) -> bool:
    """Whether the parser reads ``text`` as one positive finding with ``lesion``'s ``cue``."""
    findings = [f for f in parse_report(text).findings if not f.negated]
    if len(findings) != 1:
        return False
    f = findings[0]
    if cue == "location":
        return f.location.side == lesion["side"] and f.location.zones == [lesion["zone"]]
    return getattr(f, cue) == [lesion[cue]]


def probe_cases(records: Sequence) -> List[Dict[str, object]]:
    """The probe's pairs: per usable subset case its subset, record, target, look-alike and the two
    reports (as written, swapped), and the number of subset cases left out as ``skipped``."""
    pairs: List[Dict[str, object]] = []
    for rec in records:
        subset = next((s for s in CUES if s in rec.tags), None)
        if subset is None:
            continue
        cue = CUES[subset]
        found = look_alike(rec.lesions, cue)
        if found is None:
            continue
        target, other = found
        swapped = swapped_report(rec.report, target, other, cue)
        if swapped is None or not reads_cue(rec.report, target, cue) or not reads_cue(swapped, other, cue):
            continue
        pairs.append({"subset": subset, "record": rec, "target": target, "other": other,
                      "reports": (rec.report, swapped)})
    return pairs


MARKED = 0.1  # a lesion is marked when the mask covers this share of its box


def marked(pred: np.ndarray, target: Dict, other: Dict) -> str:
    """Which lesions of :data:`PICKS` a predicted mask marks: those whose box it covers by at least
    :data:`MARKED` (``both``: a hedging model boxed the two)."""
    def covers(lesion: Dict) -> bool:
        box = _box(pred.shape, lesion["bbox"])
        return int((pred & box).sum()) >= MARKED * max(1, int(box.sum()))

    on_target, on_other = covers(target), covers(other)
    return ("both" if on_target and on_other else "target" if on_target
            else "look-alike" if on_other else "none")


@torch.no_grad()
def predict_masks(model: Callable, records: Sequence, root: str, *, batch_size: int = 8,
                  size: int = 256) -> List[np.ndarray]:
    """Binary masks [S, S] of ``model`` (called as ``model(images, reports)``) for ``records``."""
    from torch.utils.data import DataLoader

    from ..data.datasets import SegmentationDataset, collate

    if hasattr(model, "eval"):
        model.eval()
    loader = DataLoader(SegmentationDataset(records, root=root, size=size), batch_size=batch_size,
                        shuffle=False, collate_fn=collate)
    masks: List[np.ndarray] = []
    for batch in loader:
        out = model(batch["image"], batch["report"])
        masks.extend(m for m in (out["masks"] > 0).cpu().numpy()[:, 0])
    return masks


def box_probability(logits: torch.Tensor, lesion: Dict, cue: str, code: str, size: int) -> float:
    """Mean probability of ``code`` (a texture or shape code) over the cells of ``lesion``'s box in
    an attribute head's logits ``[N_TEXTURE + N_SHAPE, h, w]`` of a ``size`` px image (at least the
    cell of the box's centre)."""
    from ..model.attributes import ATTRIBUTE_CHANNELS, N_TEXTURE
    from ..report.schema import SHAPE_CODES, TEXTURE_CODES

    part, codes = ((slice(0, N_TEXTURE), TEXTURE_CODES) if cue == "texture"
                   else (slice(N_TEXTURE, ATTRIBUTE_CHANNELS), SHAPE_CODES))
    probs = torch.softmax(logits[part].float(), dim=0)[codes.index(code)]
    h, w = probs.shape
    x0, y0, x1, y1 = (float(v) for v in lesion["bbox"])
    cy, cx = int((y0 + y1) / 2 * h / size), int((x0 + x1) / 2 * w / size)
    ys = slice(min(int(y0 * h / size), cy), max(int(y1 * h / size), cy) + 1)
    xs = slice(min(int(x0 * w / size), cx), max(int(x1 * w / size), cx) + 1)
    return float(probs[ys, xs].mean())


def tells_apart(logits: torch.Tensor, target: Dict, other: Dict, cue: str, size: int) -> bool:
    """Whether an attribute head's reading can pick either lesion by its ``cue`` code: the target's
    code is likelier at the target's box than at the look-alike's, and the look-alike's code the
    other way round."""
    mine = box_probability(logits, target, cue, str(target[cue]), size)
    theirs = box_probability(logits, other, cue, str(target[cue]), size)
    back = box_probability(logits, other, cue, str(other[cue]), size)
    forth = box_probability(logits, target, cue, str(other[cue]), size)
    return mine > theirs and back > forth


def _share(flags: Sequence[bool]) -> Optional[float]:
    return sum(flags) / len(flags) if flags else None


def probe(model: Callable, pairs: Sequence[Dict[str, object]], root: str, batch_size: int = 8,
          size: int = 256) -> Dict[str, Dict[str, Optional[float]]]:
    """Per subset: ``n`` pairs, the share marking the target as written (``written_target``), the
    look-alike when swapped (``swapped_look_alike``), both (``follows``), the same lesion under
    both reports (``same_pick``), and for a model with an attribute head on the texture and shape
    subsets the share of pairs its reading tells apart (:func:`tells_apart`, ``head_tells_apart``;
    ``None`` otherwise)."""
    from ..model.attributes import AttributeHead

    written = [replace(p["record"], report=p["reports"][0]) for p in pairs]
    swapped = [replace(p["record"], report=p["reports"][1]) for p in pairs]
    heads = [m for m in model.modules() if isinstance(m, AttributeHead)] if hasattr(model, "modules") else []
    readings: List[torch.Tensor] = []
    hooks = [h.register_forward_hook(lambda _m, _i, out: readings.append(out.detach().cpu()))
             for h in heads[:1]]
    try:
        masks = predict_masks(model, written + swapped, root, batch_size=batch_size, size=size)
    finally:
        for hook in hooks:
            hook.remove()
    logits = torch.cat(readings)[:len(pairs)] if readings else None  # the reports as written
    rows: Dict[str, List[Tuple[str, str, Optional[bool]]]] = {}
    for i, p in enumerate(pairs):
        cue = CUES[str(p["subset"])]
        apart = (tells_apart(logits[i], p["target"], p["other"], cue, size)
                 if logits is not None and cue != "location" else None)
        rows.setdefault(str(p["subset"]), []).append(
            (marked(masks[i], p["target"], p["other"]),
             marked(masks[len(pairs) + i], p["target"], p["other"]), apart))
    result = {}
    for subset in CUES:
        got = rows.get(subset, [])
        result[subset] = {
            "n": len(got),
            "written_target": _share([a == "target" for a, _, _ in got]),
            "swapped_look_alike": _share([b == "look-alike" for _, b, _ in got]),
            "follows": _share([a == "target" and b == "look-alike" for a, b, _ in got]),
            "same_pick": _share([a == b and a in ("target", "look-alike") for a, b, _ in got]),
            "both": _share([a == "both" or b == "both" for a, b, _ in got]),
            "head_tells_apart": _share([c for _, _, c in got if c is not None])}
    return result


def render(results: Dict[str, Dict[int, Dict]], subsets_n: Dict[str, int]) -> str:
    """Markdown: per row, per subset the share that follows the cue (mean over seeds, per seed)."""
    def cell(per_seed: Dict[int, Dict], subset: str, key: str) -> str:
        values = [v[subset][key] for _, v in sorted(per_seed.items()) if v[subset].get(key) is not None]
        if not values:
            return "-"
        return f"{np.mean(values):.2f} ({', '.join(f'{x:.2f}' for x in values)})"

    head = ["row", "seeds"] + [f"{s} follows (n={subsets_n.get(s, 0)})" for s in CUES] + \
        [f"{s} same lesion" for s in CUES] + [f"{s} both marked" for s in CUES] + \
        [f"{s}: head tells apart" for s in TOLD]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row, per_seed in results.items():
        cells = [row, ",".join(str(s) for s in sorted(per_seed))]
        cells += [cell(per_seed, s, "follows") for s in CUES]
        cells += [cell(per_seed, s, "same_pick") for s in CUES]
        cells += [cell(per_seed, s, "both") for s in CUES]
        cells += [cell(per_seed, s, "head_tells_apart") for s in TOLD]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="the accuracy benchmark's --out folder")
    parser.add_argument("--rows", nargs="+", default=None, help="rows to probe (default: every run)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args(argv)
    from ..data.readers import read_dataset
    from ..engine.comparison import ROWS, attach_cache
    from ..model import load_model
    from ..runtime import keep_freed_memory

    keep_freed_memory()
    records, root = read_dataset(os.path.join(args.out, "data"), split="test")
    pairs = probe_cases(records)
    subsets_n = {s: sum(p["subset"] == s for p in pairs) for s in CUES}
    print(f"{len(pairs)} pairs the parser reads both ways: {subsets_n}", flush=True)
    runs = find_runs(args.out)
    results: Dict[str, Dict[int, Dict]] = {}
    for row in args.rows or sorted(runs):
        if row not in ROWS or not ROWS[row].cached:
            continue
        for seed, run in sorted(runs.get(row, {}).items()):
            if args.seeds is not None and seed not in args.seeds:
                continue
            path = os.path.join(run, "model.ckpt")
            if not os.path.isfile(path):
                continue
            model = attach_cache(load_model(path), os.path.join(args.out, "feature_cache"), row)
            results.setdefault(row, {})[seed] = probe(model, pairs, root, args.batch_size)
            print(f"{row} seed {seed}: " + ", ".join(
                f"{s} follows {v['follows']:.2f}" for s, v in results[row][seed].items()
                if v["follows"] is not None), flush=True)
    text = ("Counterfactual probe (phantom test split): share of pairs where the row marks the target "
            "as written and the look-alike once the cue's words are swapped; mean over seeds (per "
            "seed). 'same lesion': the same one lesion marked under both reports; 'both marked': the two marked under either report. 'head tells apart': "
            "the attribute head's reading (reports as written) makes the target's code likelier at "
            "the target than at the look-alike and the look-alike's code the other way round.\n\n"
            + render(results, subsets_n))
    print(text)
    payload = {"pairs": subsets_n, "rows": {r: {str(s): v for s, v in per.items()}
                                            for r, per in results.items()}}
    for name, content in (("counterfactual.json", json.dumps(payload, indent=2)),
                          ("counterfactual.md", text + "\n")):
        with atomic_write(os.path.join(args.out, name)) as tmp:
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(content)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
