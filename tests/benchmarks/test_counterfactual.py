import numpy as np
import pytest
import torch

from medseg_r.benchmarks import counterfactual as cf
from medseg_r.benchmarks.breakdown import _box
from medseg_r.model.attributes import ATTRIBUTE_CHANNELS, N_TEXTURE
from medseg_r.report.schema import SHAPE_CODES, TEXTURE_CODES


@pytest.fixture(scope="module")
def phantom_pairs(tmp_path_factory):
    from medseg_r.data.phantom import make_phantom
    from medseg_r.data.readers import read_dataset

    out = str(tmp_path_factory.mktemp("phantom"))
    make_phantom(out, n=150, seed=4, size=256, splits=("test",), progress=False)
    records, root = read_dataset(out, split="test")
    return cf.probe_cases(records), records, root


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
        # only the target's sentence changed
        at = written.index(target["sentence"])
        assert swapped[:at] == written[:at]
        tail = written[at + len(target["sentence"]):]
        assert swapped.endswith(tail)
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


class _Stub(torch.nn.Module):
    """Marks the boxes a policy picks for each report text (no image reading)."""

    def __init__(self, pairs, policy):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))
        self.pick = {}
        for p in pairs:
            written, swapped = p["reports"]
            self.pick[written] = policy(p, False)
            self.pick[swapped] = policy(p, True)

    def forward(self, images, reports):
        masks = -torch.ones(len(reports), 1, *images.shape[-2:])
        for i, report in enumerate(reports):
            for lesion in self.pick[report.text]:
                masks[i, 0] = torch.where(torch.from_numpy(_box(images.shape[-2:], lesion["bbox"])),
                                          1.0, masks[i, 0])
        return {"masks": masks}


def test_probe_tells_a_reader_from_a_blind_model_and_a_hedger(phantom_pairs):
    pairs, _, root = phantom_pairs
    reader = cf.probe(_Stub(pairs, lambda p, swapped: [p["other"] if swapped else p["target"]]),
                      pairs, root)
    blind = cf.probe(_Stub(pairs, lambda p, swapped: [p["target"]]), pairs, root)
    hedger = cf.probe(_Stub(pairs, lambda p, swapped: [p["target"], p["other"]]), pairs, root)
    for subset in cf.CUES:
        n = sum(p["subset"] == subset for p in pairs)
        assert reader[subset]["n"] == blind[subset]["n"] == n
        assert reader[subset]["follows"] == 1.0 and reader[subset]["same_pick"] == 0.0
        assert blind[subset]["follows"] == 0.0 and blind[subset]["same_pick"] == 1.0
        assert blind[subset]["written_target"] == 1.0
        assert hedger[subset]["follows"] == 0.0 and hedger[subset]["both"] == 1.0
        assert reader[subset]["head_tells_apart"] is None  # no attribute head


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
    logits[N_TEXTURE + SHAPE_CODES.index("round"), 24:, 24:] = 5.0  # the head reads b as round
    logits[N_TEXTURE + SHAPE_CODES.index("spiculated"), :8, :8] = 5.0
    assert not cf.tells_apart(logits, a, b, "shape", 256)


def test_render_gives_means_and_per_seed_values():
    block = {"n": 2, "follows": 0.5, "same_pick": 0.5, "both": 0.0, "head_tells_apart": None}
    results = {"medseg_r_attr": {0: {s: dict(block) for s in cf.CUES},
                                 1: {s: {**block, "follows": 1.0} for s in cf.CUES}}}
    text = cf.render(results, {s: 2 for s in cf.CUES})
    row = text.splitlines()[2]
    assert row.startswith("| medseg_r_attr | 0,1 | 0.75 (0.50, 1.00) |")
    assert row.endswith("| - | - |")
