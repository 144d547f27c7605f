"""A report built by hand or read from JSON holds the prior contract's values (docs/PRIORS.md)."""
import numpy as np
import pytest
import torch

from medseg_r.report import Finding, Location, Report, parse_report
from medseg_r.report.schema import check_report


def _report(**finding):
    location = finding.pop("location", {})
    finding.setdefault("target", "nodule")
    return Report("x", [Finding(location=Location(**location), **finding)])


@pytest.mark.parametrize("finding, message", [
    ({"location": {"side": "Right"}}, "side 'Right' is not one of left, right"),
    ({"location": {"zones": ["Upper"]}}, r"zones \['Upper'\] is not a list of upper, middle"),
    ({"location": {"zones": "upper"}}, "zones 'upper' is not a list"),
    ({"location": {"image_region": "corner"}}, "image_region 'corner' is not one of"),
    ({"texture": [3]}, r"texture \[3\] is not a list of codes"),
    ({"shape": "round"}, "shape 'round' is not a list"),
    ({"size_mm": -5.0}, "size_mm -5.0 is not a positive number"),
    ({"size_mm": float("nan")}, "size_mm nan"),
    ({"size_class": "huge"}, "size_class 'huge'"),
    ({"count": 0}, "count 0 is not a whole number >= 1"),
    ({"negated": "false"}, "negated 'false' is not true or false"),
])
def test_a_value_outside_the_contract_is_a_value_error_naming_the_field(finding, message):
    # each of these placed the finding nowhere, dropped the code, or failed deep in the prior
    # encoder (size_mm -5: 'math domain error'); "negated": "false" read as negated
    with pytest.raises(ValueError, match=f"finding 1: {message}"):
        check_report(_report(**finding))


def test_from_dict_checks_and_the_parsers_reports_pass():
    with pytest.raises(ValueError, match="negated 'false'"):
        Report.from_dict({"report": "x", "findings": [{"target": "nodule", "negated": "false"}]})
    report = parse_report("Two 12 mm spiculated ground-glass nodules in the right upper lobe, no effusion.")
    check_report(report)
    assert Report.from_dict(report.to_dict()) == report
    check_report(_report(size_mm=np.float32(4.5), count=np.int64(2), target="pneumothorax"))
    # a code a vocabulary pack adds (MEDSEG_R_VOCAB: "texture: {mottled: [mottled]}") is allowed
    check_report(_report(texture=["mottled"], shape=["stellate"]))


def test_the_model_checks_a_report_object_it_is_given():
    from medseg_r import build_model

    model = build_model("sam_tiny", img_size=64)
    with pytest.raises(ValueError, match="zones"):
        model(torch.rand(1, 3, 64, 64), [_report(location={"side": "right", "zones": ["top"]})])
