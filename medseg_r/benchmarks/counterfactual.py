"""Does a trained row follow the cue its subset is built on? A counterfactual probe of a finished
accuracy benchmark: the same image read with two reports that differ in that cue alone.

    python -m medseg_r.benchmarks.counterfactual medseg_r_accuracy [--rows medseg_r_attr none_attr]

Each ``by_location``, ``by_texture`` and ``by_shape`` test case with one described lesion has a
*look-alike*: a lesion that is not the target and differs from it in the subset's cue only (another
zone, same texture and shape; the same zone, another texture; the same zone and texture, another
shape). Its report is read twice: as written, and with the roles swapped in that cue alone: the
cue's words in the target's sentence become the look-alike's, in the same phrasing bank (the
held-out bank's in-vocabulary words for a held-out phrasing), and for a location the look-alike's
own sentence (a benign mention) names the target's place in turn. A row that reads the cue marks
the target under the first report and the look-alike under the second: it *follows* the cue. A row
that cannot read the report (``none``) marks the same under both and never follows; one whose pick
moves with the text without reading the cue follows about as often as it does the *reverse* (the
look-alike as written, the target once swapped), which the probe reports beside it. A pair is kept
only where the parser reads the cue of both reports as intended (one finding, with the target's
cue, then the look-alike's), so that the probe measures the model, not the report reader; the cases
left out are counted by reason. A mask marks a lesion when it covers a tenth of its box; a mask
that marks both (a model that hedges between candidates it cannot tell apart boxes the two)
follows in neither case.

What it answers: an ablation that does not lower Dice on its own subset either leaves the row still
following the cue (the cue reaches the choice by another path) or leaves it following as rarely as
the full row (the row hardly uses the cue at all).

Reads ``DIR/data`` (the test split and its manifest) and every ``DIR/runs/ROW_seedS/model.ckpt``
with the feature cache ``DIR/feature_cache`` (``--shipped``: the package's shipped weights too);
writes ``DIR/counterfactual.json`` and ``.md``. Nothing is trained; a run costs two passes over the
three subsets' test cases (about 30 s on a free 2-core CPU with the encoded images cached).
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import replace
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch

from ..data.phantom.reports import KNOWN, NEW, TEST, format_location
from ..io import atomic_write
from ..report import parse_report
from .breakdown import CUE_OF as CUES, box_mask, find_runs  # CUES: subset -> its cue
from . import benchmark_parser
from ..cli.common import positive_int, seed_int

# What a look-alike shares with the target in each subset (it differs in the cue)
SAME = {"location": ("texture", "shape"), "texture": ("side", "zone"),
        "shape": ("side", "zone", "texture")}
TOLD = ("by_texture", "by_shape")  # the subsets whose cue an attribute head reads
MARKED = 0.1  # a lesion is marked when the mask covers this share of its box
DROPPED = ("no look-alike", "cue words not found", "written cue misread", "swapped cue misread")


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


def _find(words: str, text: str) -> Optional[re.Match]:
    """``words`` in ``text`` as whole words (a hyphen binds: "solid" is not found in "semi-solid"),
    case-insensitive."""
    return re.search(r"(?<![\w-])" + re.escape(words) + r"(?![\w-])", text, flags=re.IGNORECASE)


def _put(text: str, match: re.Match, words: str) -> str:
    if match.start() == 0 or text[match.start()].isupper():
        words = words[0].upper() + words[1:]
    return text[:match.start()] + words + text[match.end():]


def relocated(sentence: str, frm: Dict, to: Dict) -> Optional[str]:
    """``sentence`` with its location phrase for ``frm``'s side and zone rewritten, in the same
    template, for ``to``'s (the training bank's plain template where ``to`` has no such phrase);
    ``None`` when it holds no such phrase."""
    found = []
    for template in KNOWN["location"] + NEW["location"]:
        phrase = format_location(template, str(frm["side"]), str(frm["zone"]))
        match = _find(phrase, sentence) if phrase else None
        if match:
            found.append((len(phrase), template, match))
    if not found:
        return None
    _, template, match = max(found, key=lambda f: f[0])
    new = (format_location(template, str(to["side"]), str(to["zone"]))
           or format_location(KNOWN["location"][0], str(to["side"]), str(to["zone"])))
    return _put(sentence, match, new)


def cue_words(lesion: Dict, cue: str, phrasing: str = "known") -> str:
    """Words naming ``lesion``'s texture or shape that the parser reads, from the bank the report
    was written in (the held-out bank's in-vocabulary words for ``phrasing`` "new")."""
    held_out = TEST.get(cue, {}).get(str(lesion[cue])) if phrasing == "new" else None
    return (held_out or KNOWN[cue][str(lesion[cue])])[0]


def swapped_report(report: str, target: Dict, other: Dict, cue: str,
                   phrasing: str = "known") -> Optional[str]:
    """``report`` with the roles of ``target`` and ``other`` swapped in ``cue`` alone: the cue's words
    in the target's sentence become the look-alike's, in the same phrasing bank; for a location, the
    look-alike's own sentence (a benign mention), when the report has one, names the target's place
    in turn. ``None`` when a sentence or its cue words are not found."""
    sentence = str(target["sentence"])
    if sentence not in report:
        return None
    if cue == "location":
        new = relocated(sentence, target, other)
        mention = other.get("sentence")
        if new is None:
            return None
        if mention and mention != sentence and mention in report:
            moved = relocated(str(mention), other, target)
            if moved is None:
                return None
            report = report.replace(str(mention), moved, 1)
        return report.replace(sentence, new, 1)
    words = target["words"].get(cue)
    match = _find(str(words), sentence) if words else None
    if match is None:
        return None
    return report.replace(sentence, _put(sentence, match, cue_words(other, cue, phrasing)), 1)


def reads_cue(text: str, lesion: Dict, cue: str) -> bool:
    """Whether the parser reads ``text`` as one positive finding with ``lesion``'s ``cue``."""
    findings = [f for f in parse_report(text).findings if not f.negated]
    if len(findings) != 1:
        return False
    f = findings[0]
    if cue == "location":
        return f.location.side == lesion["side"] and f.location.zones == [lesion["zone"]]
    return getattr(f, cue) == [lesion[cue]]


def probe_cases(records: Sequence) -> Tuple[List[Dict[str, object]], Dict[str, Dict[str, int]]]:
    """The probe's pairs (per usable subset case its subset, record, target, look-alike and the two
    reports, as written and swapped) and, per subset, how many cases were left out for each reason
    of :data:`DROPPED`."""
    pairs: List[Dict[str, object]] = []
    dropped = {s: dict.fromkeys(DROPPED, 0) for s in CUES}
    for rec in records:
        subset = next((s for s in CUES if s in rec.tags), None)
        if subset is None:
            continue
        cue = CUES[subset]
        found = look_alike(rec.lesions, cue)
        swapped = None if found is None else swapped_report(
            rec.report, *found, cue, "new" if "phrasing_new" in rec.tags else "known")
        reason = ("no look-alike" if found is None else "cue words not found" if swapped is None
                  else "written cue misread" if not reads_cue(rec.report, found[0], cue)
                  else "swapped cue misread" if not reads_cue(swapped, found[1], cue) else None)
        if reason:
            dropped[subset][reason] += 1
            continue
        pairs.append({"subset": subset, "record": rec, "target": found[0], "other": found[1],
                      "reports": (rec.report, swapped)})
    return pairs, dropped


def marked(pred: np.ndarray, target: Dict, other: Dict) -> str:
    """Which lesions a predicted mask ``[S, S]`` (bool) marks: ``target``, ``look-alike``,
    ``both`` (a hedging model boxed the two) or ``none``; a lesion is marked when the mask covers
    :data:`MARKED` of its box (``bbox``: inclusive pixels)."""
    def covers(lesion: Dict) -> bool:
        box = box_mask(pred.shape, lesion["bbox"])
        return int((pred & box).sum()) >= MARKED * max(1, int(box.sum()))

    on_target, on_other = covers(target), covers(other)
    return ("both" if on_target and on_other else "target" if on_target
            else "look-alike" if on_other else "none")


@torch.no_grad()
def predict(model: Callable, records: Sequence, root: str, *, batch_size: int = 8, size: int = 256,
            attributes_of: int = 0) -> Tuple[List[np.ndarray], Optional[torch.Tensor]]:
    """``model``'s binary masks ``[S, S]`` for ``records`` (called as ``model(images, reports)``, on
    its device) and, for the first ``attributes_of`` records, its attribute head's logits
    ``[n, N_TEXTURE + N_SHAPE, h, w]`` from the ``box_map`` it returns (``None`` without a head)."""
    from torch.utils.data import DataLoader

    from ..data.datasets import SegmentationDataset, collate
    from ..model.box_prompts import ATTRIBUTES

    params = list(model.parameters()) if hasattr(model, "parameters") else []
    device = params[0].device if params else torch.device("cpu")
    if hasattr(model, "eval"):
        model.eval()
    loader = DataLoader(SegmentationDataset(records, root=root, size=size), batch_size=batch_size,
                        shuffle=False, collate_fn=collate)
    masks: List[np.ndarray] = []
    readings: List[torch.Tensor] = []
    for batch in loader:
        out = model(batch["image"].to(device), batch["report"])
        wanted = max(0, min(len(batch["id"]), attributes_of - len(masks)))
        box_map = out.get("box_map")
        if wanted and box_map is not None and box_map.shape[1] >= ATTRIBUTES.stop:
            readings.append(box_map[:wanted, ATTRIBUTES].float().cpu())
        masks.extend(m for m in (out["masks"] > 0).cpu().numpy()[:, 0])
    return masks, (torch.cat(readings) if readings else None)


def box_probability(logits: torch.Tensor, lesion: Dict, cue: str, code: str, size: int) -> float:
    """Mean probability of ``code`` (a texture or shape code) over the cells of ``lesion``'s box
    (inclusive pixels of a ``size`` px image) in an attribute head's logits
    ``[N_TEXTURE + N_SHAPE, h, w]``."""
    from ..model.attributes import ATTRIBUTE_CHANNELS, N_TEXTURE
    from ..report.schema import SHAPE_CODES, TEXTURE_CODES

    part, codes = ((slice(0, N_TEXTURE), TEXTURE_CODES) if cue == "texture"
                   else (slice(N_TEXTURE, ATTRIBUTE_CHANNELS), SHAPE_CODES))
    probs = torch.softmax(logits[part].float(), dim=0)[codes.index(code)]
    h, w = probs.shape
    x0, y0, x1, y1 = (float(v) for v in lesion["bbox"])
    ys = slice(int(y0 * h / size), int(y1 * h / size) + 1)
    xs = slice(int(x0 * w / size), int(x1 * w / size) + 1)
    return float(probs[ys, xs].mean())


def picks_either(at_target: Callable[[str], float], at_other: Callable[[str], float],
                 target_code: str, other_code: str) -> bool:
    """Whether a reading (a code's probability at the target, ``at_target(code)``, and at its
    look-alike) can pick either lesion by its code: the target's code is likelier at the target
    than at the look-alike, and the look-alike's code the other way round."""
    return (at_target(target_code) > at_other(target_code)
            and at_other(other_code) > at_target(other_code))


def tells_apart(logits: torch.Tensor, target: Dict, other: Dict, cue: str, size: int) -> bool:
    """Whether an attribute head's reading (logits ``[N_TEXTURE + N_SHAPE, h, w]``) can pick either
    lesion by its ``cue`` code (:func:`picks_either`, on the mean probability over each box)."""
    return picks_either(lambda code: box_probability(logits, target, cue, code, size),
                        lambda code: box_probability(logits, other, cue, code, size),
                        str(target[cue]), str(other[cue]))


def share(flags: Sequence[bool]) -> Optional[float]:
    """The share of true ``flags`` (None without any)."""
    return sum(flags) / len(flags) if flags else None


def probe(model: Callable, pairs: Sequence[Dict[str, object]], root: str, batch_size: int = 8,
          size: int = 256) -> Dict[str, Dict[str, Optional[float]]]:
    """Per subset of :data:`CUES`: ``n`` pairs and the shares of pairs where the mask marks the
    target as written (``written_target``), the look-alike once swapped (``swapped_look_alike``),
    both of these (``follows``), the reverse of both (``reverse``: the look-alike as written, the
    target once swapped; a model blind to the cue whose pick moves with the text anyway scores
    about as much here as in ``follows``), one and the same lesion under both reports
    (``same_pick``), the two lesions under either (``both``); and on the texture and shape subsets,
    for a model with an attribute head, the share its reading of the image under the report as
    written tells apart (:func:`tells_apart`, ``head_tells_apart``; ``None`` otherwise: the head
    reads features the report has modulated, so the written report is the one it is read under)."""
    written = [replace(p["record"], report=p["reports"][0]) for p in pairs]
    swapped = [replace(p["record"], report=p["reports"][1]) for p in pairs]
    masks, logits = predict(model, written + swapped, root, batch_size=batch_size, size=size,
                            attributes_of=len(pairs))
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
            "written_target": share([a == "target" for a, _, _ in got]),
            "swapped_look_alike": share([b == "look-alike" for _, b, _ in got]),
            "follows": share([(a, b) == ("target", "look-alike") for a, b, _ in got]),
            "reverse": share([(a, b) == ("look-alike", "target") for a, b, _ in got]),
            "same_pick": share([a == b and a in ("target", "look-alike") for a, b, _ in got]),
            "both": share([a == "both" or b == "both" for a, b, _ in got]),
            "head_tells_apart": share([c for _, _, c in got if c is not None])}
    return result


COLUMNS = (("follows", CUES), ("reverse", CUES), ("same lesion", CUES), ("both marked", CUES),
           ("head tells apart", TOLD))
KEYS = {"follows": "follows", "reverse": "reverse", "same lesion": "same_pick",
        "both marked": "both", "head tells apart": "head_tells_apart"}


def render(results: Dict[str, Dict[int, Dict]], subsets_n: Dict[str, int]) -> str:
    """Markdown: per row, per subset each share of :func:`probe` (mean over seeds, then per seed)."""
    def cell(per_seed: Dict[int, Dict], subset: str, key: str) -> str:
        values = [v[subset][key] for _, v in sorted(per_seed.items())
                  if v[subset].get(key) is not None]
        if not values:
            return "-"
        return f"{np.mean(values):.2f} ({', '.join(f'{x:.2f}' for x in values)})"

    head = ["row", "seeds"] + [f"{s} {label}" + (f" (n={subsets_n.get(s, 0)})" if label == "follows"
                                                 else "")
                               for label, subsets in COLUMNS for s in subsets]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row, per_seed in results.items():
        cells = [row, ",".join(str(s) for s in sorted(per_seed))]
        cells += [cell(per_seed, s, KEYS[label]) for label, subsets in COLUMNS for s in subsets]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _progress(row: str, seed: int, result: Dict[str, Dict]) -> None:
    print(f"{row} seed {seed}: " + ", ".join(
        f"{s} follows {v['follows']:.2f} (reverse {v['reverse']:.2f})"
        for s, v in result.items() if v["follows"] is not None), flush=True)


def main(argv=None) -> int:
    parser = benchmark_parser("counterfactual", __doc__)
    parser.add_argument("out", help="the accuracy benchmark's --out folder")
    parser.add_argument("--rows", nargs="+", default=None, help="rows to probe (default: every run)")
    parser.add_argument("--seeds", type=seed_int, nargs="+", default=None,
                        help="the benchmark's seeds whose runs are scored (default: every seed found)")
    parser.add_argument("--batch-size", type=positive_int, default=8,
                        help="cases scored at once (default 8)")
    parser.add_argument("--shipped", action="store_true",
                        help="also probe the weights that ship with the package (MedSeg-R and its "
                             "two baselines, trained by the benchmark's recipe)")
    args = parser.parse_args(argv)
    from ..data.readers import read_dataset
    from ..engine.comparison import attach_cache
    from ..model import load_model
    from ..model.feature_cache import FeatureCache
    from ..runtime import keep_freed_memory

    keep_freed_memory()
    data = os.path.join(args.out, "data")
    if not os.path.isfile(os.path.join(data, "dataset.json")):
        parser.error(f"{data} holds no benchmark data: run python -m medseg_r.benchmarks.accuracy "
                     f"--out {args.out} first")
    with open(os.path.join(data, "dataset.json"), encoding="utf-8") as handle:
        size = int(json.load(handle).get("size", 256))
    records, root = read_dataset(data, split="test")
    pairs, dropped = probe_cases(records)
    subsets_n = {s: sum(p["subset"] == s for p in pairs) for s in CUES}
    print(f"{len(pairs)} pairs the parser reads both ways: {subsets_n}; left out: {dropped}",
          flush=True)
    runs = find_runs(args.out)
    if not runs:  # nothing to probe: no empty table, and nothing written into the folder
        parser.error(f"no evaluated run under {os.path.join(args.out, 'runs')}: run python -m "
                     f"medseg_r.benchmarks.accuracy --out {args.out} first")
    unknown = sorted(set(args.rows or []) - set(runs))
    if unknown:
        print(f"no evaluated runs of {unknown} in {args.out}", flush=True)
    cache = os.path.join(args.out, "feature_cache")
    results: Dict[str, Dict[int, Dict]] = {}
    for row in args.rows or sorted(runs):
        for seed, run in sorted(runs.get(row, {}).items()):
            path = os.path.join(run, "model.ckpt")
            if (args.seeds is not None and seed not in args.seeds) or not os.path.isfile(path):
                continue
            model = attach_cache(load_model(path), cache, row)
            results.setdefault(row, {})[seed] = probe(model, pairs, root, args.batch_size, size)
            _progress(row, seed, results[row][seed])
    if args.shipped:
        from ..model.shipped import load_shipped, shipped_names

        for name in shipped_names():
            model, info = load_shipped(name)
            model.feature_cache = FeatureCache(cache)
            recipe = info.get("recipe") or {}
            row, seed = f"{name} (shipped: {recipe.get('row', '?')})", int(recipe.get("seed", 0))
            results[row] = {seed: probe(model, pairs, root, args.batch_size, size)}
            _progress(row, seed, results[row][seed])
    text = "\n".join([
        f"Counterfactual probe on the phantom test split ({len(pairs)} pairs; left out per subset: "
        f"{json.dumps(dropped)}). Shares of pairs, mean over seeds (per seed): 'follows', the target "
        "marked as written and the look-alike once the cue is swapped; 'reverse', the other way "
        "round; 'same lesion', one lesion under both reports; 'both marked', the two under either; "
        "'head tells apart', the attribute head's reading makes the target's code likelier at the "
        "target than at the look-alike and the look-alike's code the other way round.", "",
        render(results, subsets_n)])
    print(text)
    payload = {"pairs": subsets_n, "dropped": dropped,
               "rows": {r: {str(s): v for s, v in per.items()} for r, per in results.items()}}
    for name, content in (("counterfactual.json", json.dumps(payload, indent=2)),
                          ("counterfactual.md", text + "\n")):
        with atomic_write(os.path.join(args.out, name)) as tmp:
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(content)
    return 0


if __name__ == "__main__":
    from . import run_benchmark

    raise SystemExit(run_benchmark(main, "counterfactual"))
