import numpy as np
import pytest
import torch

from medseg_r.benchmarks import counterfactual as cf
from medseg_r.benchmarks.breakdown import box_mask
from medseg_r.model.attributes import ATTRIBUTE_CHANNELS, N_TEXTURE
from medseg_r.report.schema import SHAPE_CODES, TEXTURE_CODES


@pytest.fixture(scope="module")
def phantom_pairs(tmp_path_factory):
    from medseg_r.data.phantom import make_phantom
    from medseg_r.data.readers import read_dataset

    out = str(tmp_path_factory.mktemp("phantom"))
    make_phantom(out, n=150, seed=4, size=256, splits=("test",), progress=False)
    records, root = read_dataset(out, split="test")
    pairs, dropped = cf.probe_cases(records)
    subset_cases = sum(any(s in r.tags for s in cf.CUES) for r in records)
    assert len(pairs) + sum(sum(d.values()) for d in dropped.values()) == subset_cases
    return pairs, records, root


def test_pairs_differ_in_their_cue_alone_and_the_parser_reads_the_swap(phantom_pairs):
    pairs, records, _ = phantom_pairs
    assert {p["subset"] for p in pairs} == set(cf.CUES)
    for p in pairs:
        cue, target, other = cf.CUES[p["subset"]], p["target"], p["other"]
        assert target["role"] == "target" and other["role"] != "target"
        assert all(target[k] == other[k] for k in cf.SAME[cue])
        if cue == "location":
            assert (target["side"], target["zone"]) != (other["side"], other["zone"])
        else:
            assert target[cue] != other[cue]
        written, swapped = p["reports"]
        assert written == p["record"].report and swapped != written
        if cue != "location":  # only the target's sentence changed
            at = written.index(target["sentence"])
            assert swapped[:at] == written[:at]
            assert swapped.endswith(written[at + len(target["sentence"]):])
        elif other.get("sentence") in written:  # the look-alike's mention names the target's place
            assert other["sentence"] not in swapped
        assert cf.reads_cue(written, target, cue) and not cf.reads_cue(written, other, cue)
        assert cf.reads_cue(swapped, other, cue) and not cf.reads_cue(swapped, target, cue)
    # cases of other kinds never become pairs
    ids = {p["record"].id for p in pairs}
    assert all(any(s in r.tags for s in cf.CUES) for r in records if r.id in ids)


def test_look_alike_and_swap_rules():
    target = {"role": "target", "side": "left", "zone": "upper", "texture": "solid", "shape": "round",
              "area_px": 50, "sentence": "There is a solid round nodule in the left upper zone.",
              "words": {"texture": "solid", "shape": "round", "location": "in the left upper zone"}}
    small = {"role": "mentioned", "side": "left", "zone": "upper", "texture": "calcified",
             "shape": "round", "area_px": 10}
    big = {**small, "area_px": 40}
    elsewhere = {**small, "texture": "solid", "zone": "lower"}
    assert cf.look_alike([target, small, big, elsewhere], "texture") == (target, big)
    assert cf.look_alike([target, small, big, elsewhere], "location") == (target, elsewhere)
    assert cf.look_alike([target, small], "shape") is None  # no lesion of another shape alone
    assert cf.look_alike([target, {**target}], "texture") is None  # two targets: not a probe case
    report = "Heart size is normal. " + target["sentence"]
    assert cf.swapped_report(report, target, big, "texture") == \
        "Heart size is normal. There is a calcified round nodule in the left upper zone."
    assert cf.swapped_report(report, target, elsewhere, "location").endswith("in the left lower zone.")
    assert cf.swapped_report("No nodule.", target, big, "texture") is None
    # an exact role swap of the location: the look-alike's mention names the target's place
    mention = {**elsewhere, "sentence": "Stable post-inflammatory change in the LLL, unchanged from prior."}
    assert cf.swapped_report(mention["sentence"] + " " + target["sentence"], target, mention,
                             "location") == ("Stable post-inflammatory change in the LUL, unchanged "
                                             "from prior. There is a solid round nodule in the left "
                                             "lower zone.")
    lingula = {**elsewhere, "zone": "middle"}  # no abbreviation there: the plain template
    assert cf.relocated("Benign change in the LUL.", target, lingula) == \
        "Benign change in the left middle zone."
    assert cf.relocated("Heart size is normal.", target, lingula) is None


def test_swap_keeps_case_whole_words_and_the_phrasing_bank():
    target = {"role": "target", "side": "right", "zone": "lower", "texture": "ground_glass",
              "shape": "round", "sentence": "Ground-glass round opacity in the RLL.",
              "words": {"texture": "ground-glass", "shape": "round", "location": "in the RLL"}}
    other = {**target, "role": "mentioned", "shape": "spiculated", "texture": "solid"}
    assert cf.swapped_report(target["sentence"], target, other, "shape") == \
        "Ground-glass spiculated opacity in the RLL."  # "round" in "ground-glass" untouched
    assert cf.swapped_report(target["sentence"], target, other, "texture") == \
        "Solid round opacity in the RLL."  # a capital where the sentence starts
    semi = {**target, "texture": "part_solid", "sentence": "A semi-solid nodule in the RLL.",
            "words": {"texture": "solid"}}
    assert cf.swapped_report(semi["sentence"], semi, other, "texture") is None  # not in "semi-solid"
    calcified = {**other, "texture": "calcified"}
    assert cf.cue_words(calcified, "texture", "new") == "calcific"  # the held-out bank's word
    assert cf.cue_words(calcified, "texture") == "calcified"


class _Stub(torch.nn.Module):
    """Marks the boxes a policy picks for each report text (no image reading); with ``head``, also
    returns a ``box_map`` whose attribute logits read each lesion's cue code right under the report
    as written and the wrong way round under the swapped one."""

    def __init__(self, pairs, policy, head=False):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.pick, self.pair = {}, {}
        for p in pairs:
            written, swapped = p["reports"]
            self.pick[written], self.pair[written] = policy(p, False), (p, False)
            self.pick[swapped], self.pair[swapped] = policy(p, True), (p, True)
        self.head = head

    def forward(self, images, reports):
        masks = -torch.ones(len(reports), 1, *images.shape[-2:])
        box_map = torch.zeros(len(reports), 6 + ATTRIBUTE_CHANNELS, 64, 64)
        for i, report in enumerate(reports):
            for lesion in self.pick[report.text]:
                masks[i, 0] = torch.where(torch.from_numpy(box_mask(images.shape[-2:], lesion["bbox"])),
                                          1.0, masks[i, 0])
            p, swapped = self.pair[report.text]
            cue = cf.CUES[p["subset"]]
            if cue == "location":
                continue
            codes, offset = (TEXTURE_CODES, 0) if cue == "texture" else (SHAPE_CODES, N_TEXTURE)
            first, second = (p["other"], p["target"]) if swapped else (p["target"], p["other"])
            for lesion, code in ((first, p["target"][cue]), (second, p["other"][cue])):
                x0, y0, x1, y1 = (int(v) // 4 for v in lesion["bbox"])
                box_map[i, 6 + offset + codes.index(code), y0:y1 + 1, x0:x1 + 1] = 9.0
        out = {"masks": masks}
        if self.head:
            out["box_map"] = box_map
        return out


def test_probe_tells_a_reader_from_a_blind_model_and_a_hedger(phantom_pairs):
    pairs, _, root = phantom_pairs
    reader = cf.probe(_Stub(pairs, lambda p, swapped: [p["other"] if swapped else p["target"]]),
                      pairs, root)
    blind = cf.probe(_Stub(pairs, lambda p, swapped: [p["target"]]), pairs, root)
    hedger = cf.probe(_Stub(pairs, lambda p, swapped: [p["target"], p["other"]]), pairs, root)
    contrary = cf.probe(_Stub(pairs, lambda p, swapped: [p["target"] if swapped else p["other"]],
                              head=True), pairs, root)
    for subset in cf.CUES:
        n = sum(p["subset"] == subset for p in pairs)
        assert reader[subset]["n"] == blind[subset]["n"] == n
        assert reader[subset]["follows"] == 1.0 and reader[subset]["same_pick"] == 0.0
        assert blind[subset]["follows"] == 0.0 and blind[subset]["same_pick"] == 1.0
        assert blind[subset]["written_target"] == 1.0
        assert hedger[subset]["follows"] == 0.0 and hedger[subset]["both"] == 1.0
        assert reader[subset]["head_tells_apart"] is None  # no attribute head
        assert contrary[subset]["follows"] == 0.0 and contrary[subset]["reverse"] == 1.0
        assert reader[subset]["reverse"] == blind[subset]["reverse"] == 0.0
        # the head is read under the reports as written (the stub reads them right), not swapped
        assert contrary[subset]["head_tells_apart"] == (None if subset == "by_location" else 1.0)


def test_marked_needs_a_tenth_of_the_box():
    pred = np.zeros((64, 64), dtype=bool)
    a = {"bbox": [10, 10, 19, 19]}  # 100 px
    b = {"bbox": [30, 30, 39, 39]}
    assert cf.marked(pred, a, b) == "none"
    pred[10:12, 10:14] = True  # 8 px: a spill, not a mark
    assert cf.marked(pred, a, b) == "none"
    pred[10:13, 10:14] = True  # 12 px
    assert cf.marked(pred, a, b) == "target"
    pred[30:40, 30:40] = True
    assert cf.marked(pred, a, b) == "both"


def test_tells_apart_reads_the_head_at_each_box():
    a = {"bbox": [0, 0, 63, 63], "texture": "solid", "shape": "round"}
    b = {"bbox": [192, 192, 255, 255], "texture": "calcified", "shape": "spiculated"}
    logits = torch.zeros(ATTRIBUTE_CHANNELS, 32, 32)
    logits[TEXTURE_CODES.index("solid"), :8, :8] = 5.0
    logits[TEXTURE_CODES.index("calcified"), 24:, 24:] = 5.0
    assert cf.tells_apart(logits, a, b, "texture", 256)
    assert cf.tells_apart(logits, b, a, "texture", 256)
    assert not cf.tells_apart(logits, a, b, "shape", 256)  # shape logits all equal
    logits[TEXTURE_CODES.index("solid"), 24:, 24:] = 9.0  # b now reads as solid too, above all
    assert not cf.tells_apart(logits, a, b, "texture", 256)  # one direction alone is not enough
    logits[TEXTURE_CODES.index("solid"), 24:, 24:] = 0.0
    logits[TEXTURE_CODES.index("calcified"), :8, :8] = 9.0  # a reads as calcified, above solid
    assert not cf.tells_apart(logits, a, b, "texture", 256)  # nor the other direction alone
    logits[N_TEXTURE + SHAPE_CODES.index("round"), 24:, 24:] = 5.0  # the head reads b as round
    logits[N_TEXTURE + SHAPE_CODES.index("spiculated"), :8, :8] = 5.0
    assert not cf.tells_apart(logits, a, b, "shape", 256)


def test_render_gives_means_and_per_seed_values():
    block = {"n": 2, "follows": 0.5, "reverse": 0.0, "same_pick": 0.5, "both": 0.0,
             "head_tells_apart": None}
    results = {"medseg_r_attr": {0: {s: dict(block) for s in cf.CUES},
                                 1: {s: {**block, "follows": 1.0} for s in cf.CUES}}}
    text = cf.render(results, {s: 2 for s in cf.CUES})
    row = text.splitlines()[2]
    assert row.startswith("| medseg_r_attr | 0,1 | 0.75 (0.50, 1.00) |")
    assert row.endswith("| - | - |")


def test_a_folder_without_benchmark_data_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cf.main([str(tmp_path)])
    assert "holds no benchmark data" in capsys.readouterr().err
