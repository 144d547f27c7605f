import os

import pytest

from medseg_r.benchmarks.tables import aggregate, fmt, margins, mean_std, table


def test_one_seed_has_no_spread_and_prints_the_mean_alone():
    one = mean_std([0.25])
    assert one == {"mean": 0.25, "std": None} and fmt(one) == "0.250"
    two = mean_std([0.2, 0.4, None])  # a missing value (e.g. no small lesion) is left out
    assert two["mean"] == pytest.approx(0.3) and two["std"] == pytest.approx(0.1414, abs=1e-4)
    assert fmt(two) == "0.300±0.141" and fmt(mean_std([])) == "-"


def _seed(dice, by_location):
    subsets = {"by_location": {"dice": by_location, "n": 3}}
    return {"overall": {"dice": dice, "iou": dice / 2, "hd95": 10.0, "small_sensitivity": 0.5},
            "subsets": subsets, "negative_fp_rate": 0.0}


def test_margins_are_per_seed_differences_with_their_median():
    per_seed = {"medseg_r": [_seed(0.6, 0.7), _seed(0.5, 0.6), _seed(0.55, 0.8)],
                "none": [_seed(0.3, 0.2), _seed(0.35, 0.3), _seed(0.4, 0.1)]}
    text = margins(per_seed, ("none", "text_token"), ("overall", "by_location"))
    assert text == ("MedSeg-R - none, Dice per seed: overall seed 0 +0.300, seed 1 +0.150, seed 2 +0.150 "
                    "(median +0.150); by_location seed 0 +0.500, seed 1 +0.300, seed 2 +0.700 "
                    "(median +0.500)")
    family = {f"{k}_attr": v for k, v in per_seed.items()}
    assert margins(family, ("none_attr",), ("overall",), medseg="medseg_r_attr") == (
        "medseg_r_attr - none_attr, Dice per seed: overall seed 0 +0.300, seed 1 +0.150, seed 2 +0.150 "
        "(median +0.150)")
    assert margins(family, ("none_attr",), ("overall",)) == ""  # no medseg_r row: nothing
    agg = aggregate(per_seed["medseg_r"])
    assert agg["dice_median"] == pytest.approx(0.55) and agg["subset_n"]["by_location"] == 3


def test_margins_pair_runs_by_their_seed_and_show_what_is_missing():
    """A baseline trained with seed 0 only (``--one-seed``), or listed in another order, is compared
    with MedSeg-R's run of the same seed; a subset without a score on one side is shown as ``-``."""
    medseg = [dict(_seed(0.6, 0.7), seed=1), dict(_seed(0.5, None), seed=0)]
    none = [dict(_seed(0.3, 0.2), seed=0)]
    text = margins({"medseg_r": medseg, "none": none}, ("none",), ("overall", "by_location"))
    assert text == ("MedSeg-R - none, Dice per seed: overall seed 0 +0.200 (median +0.200); "
                    "by_location seed 0 -")
    both = [dict(_seed(0.3, 0.2), seed=1), dict(_seed(0.2, 0.1), seed=0)]
    text = margins({"medseg_r": medseg, "none": both}, ("none",), ("overall", "by_location"))
    assert text == ("MedSeg-R - none, Dice per seed: overall seed 1 +0.300, seed 0 +0.300 (median +0.300); "
                    "by_location seed 1 +0.500, seed 0 - (median +0.500)")


def test_margins_add_the_interval_over_the_test_cases_when_the_runs_name_their_cases(tmp_path):
    header = "id,tags,dice,iou,hd95,false_positive\n"
    runs = {}
    for row, values in (("medseg_r", (0.9, 0.7)), ("none", (0.6, 0.4))):
        runs[row] = []
        for seed in (0, 1):
            path = tmp_path / f"{row}_{seed}.csv"
            path.write_text(header + f"c1,by_location,{values[0]},,,\nc2,small,{values[1]},,,\n")
            runs[row].append(dict(_seed(values[0], values[1]), seed=seed, cases_csv=str(path)))
    text = margins(runs, ("none",), ("overall", "by_location"))
    assert text == ("MedSeg-R - none, Dice per seed: overall seed 0 +0.300, seed 1 +0.300 (median "
                    "+0.300, 95 % interval over the 2 test cases [+0.300, +0.300]); by_location seed 0 "
                    "+0.300, seed 1 +0.300 (median +0.300, 95 % interval over the 1 test cases "
                    "[+0.300, +0.300])")
    runs["none"][1]["cases_csv"] = str(tmp_path / "gone.csv")  # a run without its cases: no interval
    assert "interval" not in margins(runs, ("none",), ("overall",))


def test_aggregate_keeps_each_seed_s_own_subset_dice():
    runs = [dict(_seed(0.6, 0.7), seed=1), dict(_seed(0.5, None), seed=2)]
    agg = aggregate(runs)
    assert agg["seeds"] == [1, 2] and agg["dice_per_seed"] == [0.6, 0.5]
    assert agg["subsets_per_seed"]["by_location"] == [0.7, None]  # no score: None, not 0
    assert agg["subsets_per_seed"]["small"] == [None, None]
    assert agg["subsets"]["by_location"] == {"mean": 0.7, "std": None}


def test_render_prints_each_ablation_s_loss_seed_by_seed():
    from argparse import Namespace

    from medseg_r.benchmarks.accuracy import render

    per_seed = {"medseg_r_attr": [dict(_seed(0.6, 0.7), seed=s) for s in (1, 2)],
                "medseg_r_attr_no_spatial_attention": [dict(_seed(0.5, 0.4), seed=1),
                                                       dict(_seed(0.55, 0.6), seed=2)]}
    results = {name: aggregate(runs) for name, runs in per_seed.items()}
    args = Namespace(epochs=6, sam_tiny_epochs=6, n=2000, seeds=[1, 2])
    text = render(results, per_seed, args)
    assert ("medseg_r_attr - medseg_r_attr_no_spatial_attention, Dice per seed: overall seed 1 "
            "+0.100, seed 2 +0.050 (median +0.075); by_location seed 1 +0.300, seed 2 +0.100 "
            "(median +0.200); by_texture seed 1 -, seed 2 -") in text
    # the ablation's row names the subset its module is built for and marks its cell there
    assert ("| medseg_r_attr_no_spatial_attention (built for by_location) | **0.500±0.141 (+0.200)** "
            "| - |") in text


def test_render_compares_each_family_with_its_own_baselines():
    from argparse import Namespace

    from medseg_r.benchmarks.accuracy import FAMILIES, render

    per_seed = {"sam_tiny_medseg_r": [dict(_seed(0.3, 0.4), seed=0)],
                "sam_tiny_none": [dict(_seed(0.2, 0.1), seed=0)],
                "none_attr": [dict(_seed(0.1, 0.1), seed=0)]}
    results = {name: aggregate(runs) for name, runs in per_seed.items()}
    text = render(results, per_seed, Namespace(epochs=6, sam_tiny_epochs=6, n=2000, seeds=[0]))
    assert ("sam_tiny_medseg_r - sam_tiny_none, Dice per seed: overall seed 0 +0.100 (median "
            "+0.100); by_location seed 0 +0.300") in text
    assert "- none_attr" not in text  # a baseline is compared with its own family's MedSeg-R only
    assert all(m.replace("medseg_r", "none") == b[0] for m, b in FAMILIES.items())


def test_table_prints_the_training_fit_beside_the_test_dice():
    seeds = [dict(_seed(0.3, 0.2), train_fit={"n": 4, "dice": d}) for d in (0.5, 0.7)]
    agg = aggregate(seeds)
    assert agg["train_fit_dice"]["mean"] == pytest.approx(0.6) and agg["train_fit_n"] == 4
    text = table({"medseg_r": agg, "zone_box": aggregate([_seed(0.1, 0.1)])}, subsets=())
    head, _, fitted, untrained = text.splitlines()
    assert head.endswith("| train Dice |") and fitted.endswith("| 0.600±0.141 |")
    assert untrained.endswith("| - |")  # never fitted: no figure, not a zero


class _Loaded:
    """A loaded model as :func:`scored` sees it (its options)."""

    def __init__(self, **options):
        from medseg_r.model.options import ModelOptions

        self.config = ModelOptions(**options)


def test_scored_adds_a_missing_training_fit_without_scoring_the_test_split_again(tmp_path, monkeypatch):
    import json
    import os

    from medseg_r.benchmarks import accuracy

    run = tmp_path / "run"
    (run / "eval").mkdir(parents=True)
    (run / "model.ckpt").write_bytes(b"x")
    stamp = os.path.getmtime(run / "model.ckpt")
    old = {"overall": {"dice": 0.3}, "params": {"trainable": 1}}
    model = _Loaded()
    (run / "eval" / "scored.json").write_text(json.dumps(
        {"model_mtime": stamp, "predictions_saved": True, "summary": old,
         "options": accuracy.scoring_options(model), "cases": accuracy.cases_key(["t"]),
         "code": accuracy.inference_code_key()}))
    calls = []

    def fake_evaluate(model, records, **kwargs):
        calls.append((list(records), kwargs.get("out_dir")))
        return {"overall": {"dice": 0.8}}

    monkeypatch.setattr(accuracy, "evaluate", fake_evaluate)
    monkeypatch.setattr(accuracy, "attach_cache", lambda model, cache, name: model)
    fit = (["a", "b"], "root")
    summary = accuracy.scored({"loaded": model}, "none", str(run), "cache", (["t"], "root"),
                              None, fit)
    assert calls == [(["a", "b"], None)]  # the training cases only, nothing written as predictions
    assert summary["overall"]["dice"] == 0.3 and summary["train_fit"] == {"n": 2, "dice": 0.8}
    saved = json.loads((run / "eval" / "scored.json").read_text())
    assert saved["summary"]["train_fit"] == {"n": 2, "dice": 0.8} and saved["model_mtime"] == stamp
    calls.clear()
    assert accuracy.scored({"loaded": model}, "none", str(run), "cache", (["t"], "root"), None,
                           fit) == summary
    assert calls == []  # now complete: reused as it is
    assert accuracy.scored({"loaded": model}, "none", str(run), "cache", (["t"], "root"), None,
                           (["a", "b", "c"], "root"))["train_fit"]["n"] == 3  # another --fit-n
    assert calls == [(["a", "b", "c"], None)]


@pytest.fixture
def scoring(tmp_path, monkeypatch):
    """A finished run folder (a checkpoint, no score yet) and the cases :func:`scored` evaluates,
    call by call; the fake evaluation's Dice is ``dice(model, calls so far)``."""
    from medseg_r.benchmarks import accuracy

    run = tmp_path / "run"
    (run / "eval").mkdir(parents=True)
    (run / "model.ckpt").write_bytes(b"x")
    calls, dice = [], {"of": None}

    def fake_evaluate(model, records, **kwargs):
        calls.append([getattr(r, "id", r) for r in records])
        return {"overall": {"dice": dice["of"](model, len(calls))}}

    monkeypatch.setattr(accuracy, "evaluate", fake_evaluate)
    monkeypatch.setattr(accuracy, "attach_cache", lambda model, cache, name: model)
    monkeypatch.setattr(accuracy, "parameters", lambda model: {"trainable": 1})
    return run, calls, dice


def test_a_saved_score_is_not_reused_for_other_model_options(scoring):
    import json

    from medseg_r.benchmarks import accuracy

    run, calls, dice = scoring
    dice["of"] = lambda model, n: 0.1 + model.config.box_hedge
    first = accuracy.scored({"loaded": _Loaded(box_hedge=0.0)}, "none", str(run), "cache",
                            (["t"], "root"), None)
    assert calls == [["t"]] and first["overall"]["dice"] == pytest.approx(0.1)
    again = accuracy.scored({"loaded": _Loaded(box_hedge=0.0)}, "none", str(run), "cache",
                            (["t"], "root"), None)
    assert calls == [["t"]] and again == first  # same checkpoint, same options: reused
    other = accuracy.scored({"loaded": _Loaded(box_hedge=0.7)}, "none", str(run), "cache",
                            (["t"], "root"), None)
    assert calls == [["t"], ["t"]] and other["overall"]["dice"] == pytest.approx(0.8)
    assert json.loads((run / "eval" / "scored.json").read_text())["options"]["box_hedge"] == 0.7


def test_a_saved_score_is_not_reused_for_other_test_cases(scoring):
    from medseg_r.benchmarks import accuracy
    from medseg_r.data.datasets import Record

    run, calls, dice = scoring
    dice["of"] = lambda model, n: 0.1 * n

    def case(report):
        return Record(id="c1", image="images/c1.png", mask="masks/c1.png", report=report)

    first = [case("Nodule in the right upper lobe.")]
    accuracy.scored({"loaded": _Loaded()}, "none", str(run), "cache", (first, "root"), None)
    accuracy.scored({"loaded": _Loaded()}, "none", str(run), "cache", (first, "root"), None)
    assert calls == [["c1"]]  # the same cases: reused
    other = [case("Nodule in the left lower lobe.")]  # same id, another generation's report
    again = accuracy.scored({"loaded": _Loaded()}, "none", str(run), "cache", (other, "root"), None)
    assert calls == [["c1"], ["c1"]] and again["overall"]["dice"] == pytest.approx(0.2)
    assert accuracy.cases_key(first) != accuracy.cases_key(other)
    assert accuracy.cases_key(first) == accuracy.cases_key([case("Nodule in the right upper lobe.")])


def test_a_saved_score_is_not_reused_after_the_inference_code_changed(scoring, monkeypatch):
    from medseg_r.benchmarks import accuracy

    run, calls, dice = scoring
    dice["of"] = lambda model, n: 0.1 * n
    accuracy.scored({"loaded": _Loaded()}, "none", str(run), "cache", (["t"], "root"), None)
    accuracy.scored({"loaded": _Loaded()}, "none", str(run), "cache", (["t"], "root"), None)
    assert calls == [["t"]]  # the same code: reused
    monkeypatch.setattr(accuracy, "inference_code_key", lambda: "edited")
    again = accuracy.scored({"loaded": _Loaded()}, "none", str(run), "cache", (["t"], "root"), None)
    assert calls == [["t"], ["t"]] and again["overall"]["dice"] == pytest.approx(0.2)


def test_the_inference_code_key_follows_scoring_code_and_ignores_the_rest(tmp_path, monkeypatch):
    from medseg_r.benchmarks.accuracy import inference_code_key

    monkeypatch.delenv("MEDSEG_R_VOCAB", raising=False)
    package = tmp_path / "pkg"
    for path in ("model/decoding.py", "engine/evaluate.py", "report/vocab/chest.yaml",
                 "benchmarks/tables.py", "viz/overlay.py", "cli/predict.py", "weights/shipped.pt"):
        (package / path).parent.mkdir(parents=True, exist_ok=True)
        (package / path).write_text(f"# {path}\n")
    key = inference_code_key(str(package))
    assert len(key) == 16 and key == inference_code_key(str(package))
    for untouched in ("benchmarks/tables.py", "viz/overlay.py", "cli/predict.py", "weights/shipped.pt"):
        (package / untouched).write_text("changed = True\n")
        assert inference_code_key(str(package)) == key, untouched
    seen = {key}
    for edit in ("model/decoding.py", "report/vocab/chest.yaml"):  # code and the reader's words
        (package / edit).write_text("edited: 1\n")
        seen.add(inference_code_key(str(package)))
    (package / "model" / "decoding.py").rename(package / "model" / "decode.py")  # same text, renamed
    seen.add(inference_code_key(str(package)))
    (package / "model" / "export.py").write_text("# not the root's export.py\n")
    seen.add(inference_code_key(str(package)))
    pack = tmp_path / "site.yaml"
    pack.write_text("texture: {}\n")
    monkeypatch.setenv("MEDSEG_R_VOCAB", str(pack))
    seen.add(inference_code_key(str(package)))
    pack.write_text("texture: {ggo: [milky]}\n")
    seen.add(inference_code_key(str(package)))
    other = tmp_path / "local.yaml"
    other.write_text("shape: {}\n")
    monkeypatch.setenv("MEDSEG_R_VOCAB", os.pathsep.join([str(pack), str(other)]))
    seen.add(inference_code_key(str(package)))
    monkeypatch.setenv("MEDSEG_R_VOCAB", os.pathsep.join([str(other), str(pack)]))  # merge order
    seen.add(inference_code_key(str(package)))
    assert len(seen) == 9  # every change above gave a new key
    monkeypatch.delenv("MEDSEG_R_VOCAB")
    import medseg_r

    assert inference_code_key() == inference_code_key(os.path.dirname(medseg_r.__file__))


def test_main_keys_scores_on_the_code_it_started_with(monkeypatch, tmp_path):
    from medseg_r.benchmarks import accuracy

    keys = iter(["at start", "edited later"])
    monkeypatch.setattr(accuracy, "inference_code_key", lambda: next(keys))
    seen = []
    monkeypatch.setattr(accuracy, "make_phantom", lambda *a, **k: None)
    monkeypatch.setattr(accuracy, "read_dataset", lambda *a, **k: ([], "root"))
    monkeypatch.setattr(accuracy, "run_row", lambda name, **k: {"loaded": None})
    monkeypatch.setattr(accuracy, "scored", lambda *a, code=None, **k: seen.append(code) or {
        "overall": {"dice": 0.5, "iou": 0.4, "hd95": 3.0, "small_sensitivity": 0.5}, "subsets": {},
        "negative_fp_rate": 0.0})
    monkeypatch.setattr(accuracy, "render", lambda *a, **k: "")
    accuracy.main(["--out", str(tmp_path), "--extra-n", "0", "--seeds", "0", "1",
                   "--rows", "medseg_r_attr"])
    assert seen == ["at start", "at start"]


def test_the_default_rows_are_known_and_hold_the_shipped_architecture_with_its_ablations():
    from medseg_r.benchmarks.accuracy import DEFAULT_ROWS, UNTRAINED
    from medseg_r.engine.comparison import ABLATIONS, ROWS

    assert all(row in ROWS or row in UNTRAINED for row in DEFAULT_ROWS)
    assert len(set(DEFAULT_ROWS)) == len(DEFAULT_ROWS)
    shipped = ["medseg_r_attr", "none_attr", "text_token_attr"] + list(ABLATIONS["medseg_r_attr"])
    assert set(shipped) <= set(DEFAULT_ROWS)


def test_subset_table_diffs_against_the_first_row_only_when_asked():
    from medseg_r.benchmarks.tables import subset_table

    results = {name: aggregate([dict(_seed(d, d), subsets={"phrasing_new": {"dice": d, "n": 5}})])
               for name, d in (("medseg_r_attr", 0.6), ("none", 0.4))}
    compared = subset_table(results, ["medseg_r_attr", "none"], ["phrasing_new"])
    plain = subset_table(results, ["medseg_r_attr", "none"], ["phrasing_new"], compare=False)
    assert "(+0.200)" in compared and "(+" not in plain and "| none | 0.400 |" in plain


def test_render_compares_a_variant_with_the_row_it_adds_to():
    from argparse import Namespace

    from medseg_r.benchmarks.accuracy import render

    per_seed = {"medseg_r_attr": [dict(_seed(0.5, 0.4), seed=1)],
                "medseg_r_attr_positional_keys": [dict(_seed(0.55, 0.6), seed=1)]}
    results = {name: aggregate(runs) for name, runs in per_seed.items()}
    text = render(results, per_seed, Namespace(epochs=6, sam_tiny_epochs=6, n=2000, seeds=[1]))
    assert ("medseg_r_attr_positional_keys - medseg_r_attr, Dice per seed: overall seed 1 +0.050 "
            "(median +0.050); by_location seed 1 +0.200") in text


def test_the_reference_box_score_of_a_decoder_run_is_reused_until_its_checkpoint_changes(
        tmp_path, monkeypatch):
    import os

    from medseg_r.benchmarks import accuracy

    run = tmp_path / "run"
    run.mkdir()
    (run / "model.ckpt").write_bytes(b"x")
    calls = []

    def fake_oracle(records, root, model):
        calls.append(list(records))
        return {"overall": {"dice": 0.1 * len(calls)}}

    monkeypatch.setattr(accuracy, "oracle_box", fake_oracle)
    monkeypatch.setattr(accuracy, "attach_cache", lambda model, cache, name: model)
    monkeypatch.setattr(accuracy, "parameters", lambda model: {"trainable": 1})

    def score(cases=("t",), code="k"):
        return accuracy.oracle_scored({"loaded": _Loaded()}, "decoder_boxes", str(run), "cache",
                                      (list(cases), "root"), code=code)

    first = score()
    assert calls == [["t"]] and first == {"overall": {"dice": pytest.approx(0.1)},
                                          "params": {"trainable": 1}}
    assert score() == first and calls == [["t"]]  # same checkpoint, cases and code: reused
    score(cases=("u",))
    assert calls == [["t"], ["u"]]  # other test cases: scored anew
    score(cases=("u",), code="edited")
    assert len(calls) == 3  # other inference code: scored anew
    accuracy.oracle_scored({"loaded": _Loaded(box_hedge=0.0)}, "decoder_boxes", str(run), "cache",
                           (["u"], "root"), code="edited")
    assert len(calls) == 4  # other model options: scored anew
    score(cases=("u",), code="edited")
    assert len(calls) == 5
    stamp = os.path.getmtime(run / "model.ckpt")
    os.utime(run / "model.ckpt", (stamp + 10, stamp + 10))  # the run trained again
    assert score(cases=("u",), code="edited")["overall"]["dice"] == pytest.approx(0.6)
    assert len(calls) == 6
