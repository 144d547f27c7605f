"""MedSeg-R against its baselines, ablations and variants on the phantom benchmark, over seeds.

    python -m medseg_r.benchmarks.accuracy --out medseg_r_accuracy          # every default row
    python -m medseg_r.benchmarks.accuracy --rows medseg_r none text_token  # the main comparison

Rows (:data:`medseg_r.engine.comparison.ROWS`): MedSeg-R on the pretrained LiteMedSAM (encoder
frozen, its embedding cached once per image and shared by every row; an image localiser of its own,
steered by the priors, places the box prompts), the two capacity-matched baselines (``none``: the
same modules fed a constant; ``text_token``: fed one embedding of the report text), the same three
prompting a decoder fine-tuned on jittered boxes around the reference lesions (``*_tuned``: the
``decoder_boxes`` row, one per seed and shared by the three, as it reads no report; that row itself
is scored with the reference boxes), the module ablations,
early injection, the report-to-prompt variants, and SAM-tiny trained from random weights; plus two
untrained rows: ``litemedsam_oracle_box`` (the reference box of each described lesion, MedSAM's
protocol) and ``zone_box`` (a training-free report-to-box mode: the box of each positive finding's
location prior). Same data, same test split, same epochs, batch and schedule for the trained rows
of one backbone; every run scored with its weights at the end of its budget.

Figures: mean +/- standard deviation over seeds, the per-seed Dice and its median, MedSeg-R minus each
baseline seed by seed, Dice on each subset, parameters per model, the phrasing split of the test
set (phrasings new to every model, with words the parser does not know, vs in-vocabulary ones), and
each trained row's Dice on training cases it was fitted to (without augmentation): next to the test
Dice it says whether a row is limited by what it fits or by what it generalises.
Resumable: a finished run is reused, an interrupted one continues from its last epoch.
"""

from __future__ import annotations

import json
import os
import time
from typing import Dict, List, Optional

import torch

from ..data.phantom import make_phantom
from ..data.readers import read_dataset
from ..engine.comparison import (ABLATIONS, ROWS, VARIANTS, attach_cache, built_for, describe,
                                 parameters, run_row)
from ..engine.evaluate import evaluate
from ..report.vocab import env_packs
from ..io import atomic_write
from ..io.output_folders import CASES_CSV
from ..runtime import keep_freed_memory
from .prompt_rows import oracle_box, zone_box
from .tables import aggregate, margins, subset_table, table
from ..cli.common import non_negative_int, positive_int, seed_int
from . import benchmark_parser

UNTRAINED = {"litemedsam_oracle_box": oracle_box, "zone_box": zone_box}
# the subsets the perceptual modules are built for (and small lesions): each ablation's Dice on
# them, and its loss against its full model seed by seed (overall too); the same margins for each
# MedSeg-R row against its baselines
ABLATION_SUBSETS = ("by_location", "by_texture", "by_shape", "small")
MARGINS = ("overall",) + ABLATION_SUBSETS
# each MedSeg-R row and the baselines of the same architecture it is compared with, seed by seed
FAMILIES = {"medseg_r": ("none", "text_token"), "medseg_r_attr": ("none_attr", "text_token_attr"),
            "medseg_r_attr_tuned": ("none_attr_tuned", "text_token_attr_tuned"),
            "sam_tiny_medseg_r": ("sam_tiny_none", "sam_tiny_text_token")}
EXTRA_SEED = 2  # the generation of the extra training cases (seed 0: the benchmark's; 1: the demo's)
DEFAULT_ROWS = ["medseg_r_attr_tuned", "none_attr_tuned", "text_token_attr_tuned", "decoder_boxes",
                "medseg_r_attr", "none_attr", "text_token_attr", "medseg_r_attr_no_spatial_attention",
                "medseg_r_attr_no_dynamic_conv", "medseg_r_attr_no_deformable",
                "medseg_r_attr_no_location_map",
                "medseg_r", "none", "text_token", "no_spatial_attention", "no_dynamic_conv",
                "no_deformable", "no_location_map", "embedding_head", "early_injection",
                "box_decoder_finetune", "dense_token_prompts",
                "litemedsam_oracle_box", "zone_box", "sam_tiny_medseg_r", "sam_tiny_none",
                "sam_tiny_text_token"]
# Rows whose every step runs SAM's decoder (or a whole SAM-tiny) cost 4-10 times a cached
# localisation step on a CPU: by default they run with the first seed only (--one-seed none: all)
ONE_SEED = ["embedding_head", "box_decoder_finetune", "dense_token_prompts", "early_injection",
            "sam_tiny_medseg_r",
            "sam_tiny_none", "sam_tiny_text_token"]


def main(argv=None) -> int:
    parser = benchmark_parser("accuracy", __doc__)
    parser.add_argument("--out", default="medseg_r_accuracy",
                        help="output folder (default medseg_r_accuracy; a rerun resumes its rows)")
    parser.add_argument("--n", type=positive_int, default=2000,
                        help="generated cases (70/10/20 split; default 2000)")
    parser.add_argument("--extra-n", type=non_negative_int, default=6000,
                        help="cases of a second generation (seed 2) whose training split (70 %%) the "
                             "image-localiser rows also train on (they need no encoder pass); 0: none; "
                             "default 6000")
    parser.add_argument("--epochs", type=positive_int, default=6,
                        help="epochs of the LiteMedSAM rows (default 6)")
    parser.add_argument("--sam-tiny-epochs", type=positive_int, default=6,
                        help="epochs of the sam_tiny rows (default 6)")
    parser.add_argument("--seeds", type=seed_int, nargs="+", default=[0, 1, 2],
                        help="training seeds (default 0 1 2)")
    parser.add_argument("--rows", nargs="+", default=DEFAULT_ROWS,
                        help=f"rows: {', '.join(list(ROWS) + list(UNTRAINED))}")
    parser.add_argument("--one-seed", nargs="+", default=ONE_SEED,
                        help="rows trained with the first seed only ('none': every row all seeds)")
    parser.add_argument("--generalisation-n", type=positive_int, default=None,
                        help="cases of the seed-1 generation whose test split (a fifth) MedSeg-R is also "
                             "scored on (default: max(100, n/5))")
    parser.add_argument("--fit-n", type=non_negative_int, default=100,
                        help="training cases each trained row is also scored on (0: none; default 100)")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="training batch size (default 8)")
    parser.add_argument("--precision", default=None,
                        choices=("32-true", "32", "bf16-mixed", "16-mixed", "bf16-true", "16-true",
                                 "64-true", "64"),
                        help="training precision (default: bf16-mixed on CPUs with bfloat16 "
                             "instructions and 16-mixed on GPUs, else 32-true)")
    args = parser.parse_args(argv)
    keep_freed_memory()
    if args.one_seed == ["none"]:
        args.one_seed = []
    unknown = set(args.rows) - set(ROWS) - set(UNTRAINED)
    if unknown:
        parser.error(f"unknown rows {sorted(unknown)}")
    unknown = set(args.one_seed) - set(ROWS)
    if unknown:
        parser.error(f"--one-seed: unknown rows {sorted(unknown)} (or 'none')")
    start = time.perf_counter()
    code = inference_code_key()
    oracle_code = oracle_code_key(code)
    if os.path.exists(args.out) and not os.path.isdir(args.out):
        parser.error(f"--out {args.out} is a file, not a folder")
    data, other = os.path.join(args.out, "data"), os.path.join(args.out, "data_seed1")
    other_n = max(100, args.n // 5) if args.generalisation_n is None else args.generalisation_n
    extra = os.path.join(args.out, "data_extra")
    try:  # another generation's or a user's folder is refused before a file is written
        make_phantom(data, n=args.n, seed=0, size=256)
        make_phantom(other, n=other_n, seed=1, size=256, splits=("test",))
        if args.extra_n > 0:
            make_phantom(extra, n=args.extra_n, seed=EXTRA_SEED, size=256, splits=("train",))
    except ValueError as exc:
        parser.error(str(exc))
    training = data
    if args.extra_n > 0:
        training = joined_manifest(os.path.join(args.out, "train_data"), data, extra)
    cache = os.path.join(args.out, "feature_cache")
    test, root = read_dataset(data, split="test")
    fit = read_dataset(data, split="train")[0][:max(0, args.fit_n)], root
    other_test, other_root = read_dataset(other, split="test")
    results: Dict[str, Dict[str, object]] = {}
    per_seed_of: Dict[str, List[Dict[str, object]]] = {}

    def write(final: bool) -> None:
        payload = {"rows": results, "config": vars(args), "descriptions": describe(
            [r for r in args.rows if r in ROWS]), "seconds": round(time.perf_counter() - start, 1),
                   "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
                   "complete": final}
        with atomic_write(os.path.join(args.out, "accuracy.json")) as tmp:
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump(payload, handle, indent=2)

    for name in args.rows:
        if name in UNTRAINED:
            summary = UNTRAINED[name](test, root)
            results[name] = aggregate([summary])
            per_seed_of[name] = [summary]
            write(False)
            continue
        epochs = args.sam_tiny_epochs if ROWS[name].backbone == "sam_tiny" else args.epochs
        per_seed = []
        seeds = args.seeds[:1] if name in args.one_seed else args.seeds
        for seed in seeds:
            def run_of(row: str, seed: int = seed) -> str:
                return os.path.join(args.out, "runs", f"{row}_seed{seed}")

            run = run_of(name)
            trained = run_row(name, run_of=run_of, data=data, training=training, seed=seed,
                              epochs=epochs, batch_size=args.batch_size, cache=cache,
                              precision=args.precision)
            if ROWS[name].objective == "reference_boxes":  # a decoder alone: the reference boxes
                summary = oracle_scored(trained, name, run, cache, (test, root), code=oracle_code)
            else:
                summary = scored(trained, name, run, cache, (test, root), (other_test, other_root),
                                 fit, code=code)
            per_seed.append({**summary, "seed": seed,
                             "cases_csv": os.path.join(run, "eval", CASES_CSV)})
            print(f"{name} seed {seed}: Dice {summary['overall']['dice']:.3f}", flush=True)
        results[name] = aggregate(per_seed)
        per_seed_of[name] = per_seed
        write(False)
    report = render(results, per_seed_of, args)
    print(report)
    write(True)
    with atomic_write(os.path.join(args.out, "accuracy.md")) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(report + "\n")
    return 0


def joined_manifest(folder: str, data: str, extra: str) -> str:
    """A manifest in ``folder`` of every case of ``data`` and the training cases of ``extra`` (ids
    prefixed ``extra_``, paths relative to ``folder``), with ``data``'s ``dataset.json`` (so the
    phantom's no-flip rule holds); rewritten only when it changes."""
    from ..io.jsonl import read_jsonl_rows

    rows = []
    for source, prefix, keep in ((data, "", None), (extra, "extra_", "train")):
        for _, row in read_jsonl_rows(os.path.join(source, "manifest.jsonl")):
            if keep is not None and row.get("split") != keep:
                continue
            rel = os.path.relpath(source, folder)
            rows.append({**row, "id": prefix + str(row["id"]),
                         "image": os.path.join(rel, row["image"]),
                         "mask": os.path.join(rel, row["mask"])})
    text = "".join(json.dumps(r) + "\n" for r in rows)
    path = os.path.join(folder, "manifest.jsonl")
    os.makedirs(folder, exist_ok=True)
    if not os.path.isfile(path) or open(path, encoding="utf-8").read() != text:
        with atomic_write(path) as tmp:
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(text)
    with open(os.path.join(data, "dataset.json"), encoding="utf-8") as handle:
        meta = handle.read()
    with atomic_write(os.path.join(folder, "dataset.json")) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(meta)
    return path


def scored(trained, name: str, run: str, cache: str, test, other, fit=None,
           code: Optional[str] = None) -> Dict[str, object]:
    """The test-split summary of a trained run (its parameters, for MedSeg-R the seed-1
    generalisation set too, and with ``fit`` (records, root) its Dice on those training cases as
    ``train_fit``); reused from ``run/eval/scored.json`` when that was written for this very
    checkpoint, model options, test cases (:func:`cases_key`) and inference code
    (:func:`inference_code_key`), with its predicted masks (a resumed benchmark does not score
    finished runs again, only adds a missing ``train_fit``, or one of another number of cases; a run
    scored by an earlier version of the code, with other options or on other cases, or killed while
    scoring, is scored anew). ``code``: the key of the code this process loaded (``main`` takes it
    at its start, so that a file edited while a long benchmark runs does not stamp its scores)."""
    model_path = os.path.join(run, "model.ckpt")
    stamp = os.path.getmtime(model_path) if os.path.isfile(model_path) else None
    options = scoring_options(trained["loaded"])
    cases = cases_key(test[0])
    code = code or inference_code_key()
    saved = os.path.join(run, "eval", "scored.json")
    summary = None
    if stamp is not None and os.path.isfile(saved):
        with open(saved, encoding="utf-8") as handle:
            payload = json.load(handle)
        if (payload.get("model_mtime") == stamp and payload.get("predictions_saved")
                and payload.get("options") == options and payload.get("cases") == cases
                and payload.get("code") == code):
            summary = payload["summary"]
    wants_fit = bool(fit and fit[0])
    if summary is not None and (not wants_fit or summary.get("train_fit", {}).get("n") == len(fit[0])):
        return summary
    model = attach_cache(trained["loaded"], cache, name)
    if summary is None:
        summary = evaluate(model, test[0], root=test[1], size=256, out_dir=os.path.join(run, "eval"),
                           save_predictions=True)
        summary["params"] = parameters(model)
        if name == "medseg_r":
            summary["generalisation"] = evaluate(model, other[0], root=other[1], size=256)
    if wants_fit:
        on_train = evaluate(model, fit[0], root=fit[1], size=256)
        summary["train_fit"] = {"n": len(fit[0]), "dice": on_train["overall"]["dice"]}
    with atomic_write(saved) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump({"model_mtime": stamp, "predictions_saved": True, "options": options,
                       "cases": cases, "code": code, "summary": summary}, handle)
    return summary


def oracle_scored(trained, name: str, run: str, cache: str, test,
                  code: Optional[str] = None) -> Dict[str, object]:
    """A decoder run's summary with the reference boxes (:func:`oracle_box`: the ``decoder_boxes``
    row) and its parameters; reused from ``run/eval/oracle.json`` when that was written for this
    very checkpoint, model options, test cases (``test``: records, root) and code
    (:func:`oracle_code_key`; ``code``: that key taken when the benchmark started), as
    :func:`scored` reuses its scores."""
    model_path = os.path.join(run, "model.ckpt")
    stamp = os.path.getmtime(model_path) if os.path.isfile(model_path) else None
    key = {"model_mtime": stamp, "options": scoring_options(trained["loaded"]),
           "cases": cases_key(test[0]), "code": code or oracle_code_key()}
    saved = os.path.join(run, "eval", "oracle.json")
    if stamp is not None and os.path.isfile(saved):
        with open(saved, encoding="utf-8") as handle:
            payload = json.load(handle)
        if all(payload.get(k) == v for k, v in key.items()):
            return payload["summary"]
    model = attach_cache(trained["loaded"], cache, name)
    summary = {**oracle_box(test[0], test[1], model), "params": parameters(model)}
    os.makedirs(os.path.dirname(saved), exist_ok=True)
    with atomic_write(saved) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump({**key, "summary": summary}, handle)
    return summary


def oracle_code_key(code: Optional[str] = None) -> str:
    """``code`` (default: :func:`inference_code_key`) with the source of the reference-box scoring
    (:mod:`.prompt_rows` and :func:`oracle_scored`)."""
    import hashlib
    import inspect

    from . import prompt_rows

    source = inspect.getsource(prompt_rows) + inspect.getsource(oracle_scored)
    return (code or inference_code_key()) + hashlib.sha1(source.encode()).hexdigest()[:16]


def cases_key(records) -> str:
    """A fingerprint of the cases a run is scored on: each case's id, image path and report (the
    same ``--out`` filled with another generation, or another split, gives another key)."""
    import hashlib

    h = hashlib.sha1()
    for record in records:
        for value in (getattr(record, "id", record), getattr(record, "image", ""),
                      getattr(record, "report", "")):
            h.update(str(value if isinstance(value, (str, int)) else "").encode() + b"\0")
    return h.hexdigest()[:16]


# parts of the package that do not score a model (paths from the package root): editing them keeps
# the saved scores; the benchmarks' own scoring (:func:`scored`) is fingerprinted by its source
NOT_SCORING = ("benchmarks", "serve", "viz", "describe", "weights", "cli", "export.py")


def inference_code_key(package: str = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
                       ) -> str:
    """A fingerprint of what scores a run: every file of the package (path and content: the code
    and the report reader's vocabulary packs) except those under :data:`NOT_SCORING` (the
    benchmarks' tables, the web server, the figures, the describer, the shipped weights, the command
    line, the export), the source of :func:`scored`, the vocabulary packs named in
    ``$MEDSEG_R_VOCAB``, and the versions of torch and MONAI (its metrics). Any edit of these, a
    comment too, makes :func:`scored` score the runs anew."""
    import hashlib
    import inspect

    import monai

    h = hashlib.sha1()

    def add(label: str, path: str) -> None:
        with open(path, "rb") as handle:
            h.update(label.encode() + b"\0" + handle.read() + b"\0")

    for folder, subfolders, files in os.walk(package):
        relative = os.path.relpath(folder, package).replace(os.sep, "/")
        prefix = "" if relative == "." else relative + "/"
        subfolders[:] = sorted(d for d in subfolders
                               if prefix + d not in NOT_SCORING and d != "__pycache__")
        for name in sorted(files):
            if prefix + name not in NOT_SCORING and not name.endswith((".pyc", ".pyo")):
                add(prefix + name, os.path.join(folder, name))
    for pack in env_packs():  # in merge order: a later pack's words override an earlier one's
        if os.path.isfile(pack):
            add("$MEDSEG_R_VOCAB:" + pack, pack)
    h.update(inspect.getsource(scored).encode()
             + f"torch {torch.__version__} monai {monai.__version__}".encode())
    return h.hexdigest()[:16]


def scoring_options(model) -> Dict[str, object]:
    """The loaded model's options as JSON values: a saved score is reused only when they match, so
    that a run whose options changed at inference (``box_hedge`` set on it, or a new default that
    its checkpoint does not record: a checkpoint keeps the options it was saved with) is scored
    anew."""
    from dataclasses import asdict

    return json.loads(json.dumps(asdict(model.config)))


def render(results, per_seed_of, args) -> str:
    """Every table of one run, as Markdown."""
    parts = [f"Phantom test split; LiteMedSAM rows: {args.epochs} epochs, sam_tiny rows: "
             f"{args.sam_tiny_epochs} epochs; {args.n} cases; seeds {args.seeds}; mean±std over seeds.",
             "", table(results), ""]
    for medseg, baselines in FAMILIES.items():  # each MedSeg-R row against its like-for-like baselines
        text = margins(per_seed_of, baselines, MARGINS, medseg=medseg)
        if text:
            parts += [text, ""]
    for variant, base in VARIANTS.items():  # a variant against the row it adds a mechanism to
        if variant in results and base in results:
            parts += [margins(per_seed_of, [base], MARGINS, medseg=variant), ""]
    for variant, own in ABLATIONS.items():
        present = [r for r in own if r in results]
        if variant in results and present:
            parts += [f"Ablations of {variant} ({ROWS[variant].what}), Dice on the subset each module "
                      f"is built for; {variant} minus ablation:",
                      subset_table(results, [variant] + present, ABLATION_SUBSETS,
                                   own={r: built_for(r) for r in present}), "",
                      margins(per_seed_of, present, MARGINS, medseg=variant), ""]
    phrasing = [r for r in results if results[r]["subsets"].get("phrasing_new", {}).get("mean")
                is not None]
    if phrasing:
        parts += ["Phrasing split of the test set:",
                  subset_table(results, phrasing, ["phrasing_new", "phrasing_known"], compare=False),
                  ""]
    g = results.get("medseg_r", {}).get("generalisation_dice")
    if g and g["mean"] is not None:
        base = results["medseg_r"]["overall"]["dice"]["mean"]
        parts.append(f"Generalisation (phantom generated with seed 1): MedSeg-R Dice {g['mean']:.3f} vs "
                     f"{base:.3f} on the seed-0 test split ({g['mean'] - base:+.3f}).")
    return "\n".join(parts)


if __name__ == "__main__":
    from . import run_benchmark

    raise SystemExit(run_benchmark(main, "accuracy"))
