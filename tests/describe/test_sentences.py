import numpy as np
import pytest

from medseg_r.describe.roundtrip import round_trip
from medseg_r.describe.sentences import STYLES, _article, prior_key, render
from medseg_r.report import Finding, Location, parse_report


@pytest.mark.parametrize("style", STYLES)
def test_round_trip_500_cases(style):
    result = round_trip(500, style=style, seed=1)
    assert result["rate"] >= 0.99, result["failures"][:3]


@pytest.mark.slow
@pytest.mark.parametrize("style", STYLES)
def test_round_trip_5000_cases(style):
    result = round_trip(5000, style=style, seed=0)
    assert result["rate"] >= 0.99, result["failures"][:3]


@pytest.mark.parametrize("word, article", [("8 mm", "an"), ("11 mm", "an"), ("18.5 mm", "an"),
                                           ("12 mm", "a"), ("oval", "an"), ("round", "a"),
                                           ("irregular", "an"), ("1.2 cm", "a")])
def test_article(word, article):
    assert _article(word) == article


def _nodule(side, zones, **extra):
    return Finding(target="nodule", location=Location(side=side, zones=zones, organ="lung"),
                   count=1, **extra)


def test_qata_merges_chest_findings_into_one_sentence():
    findings = [_nodule("left", ["upper"]), _nodule("right", ["lower"])]
    text, expected = render(findings, style="qata", domain="chest",
                            rng=np.random.default_rng(0))
    assert text == "Bilateral pulmonary nodules, two nodules, upper left lung and lower right lung."
    assert [prior_key(f) for f in parse_report(text).findings] == [prior_key(f) for f in expected]
    assert expected[0].count == 2 and expected[0].location.side == "bilateral"


def test_seed_varies_the_phrasing_not_the_priors():
    finding = _nodule("right", ["middle"], texture=["part_solid"], shape=["lobulated"],
                      size_mm=14.0, size_class="medium")
    texts = {render([finding], style="radiology", domain="chest",
                    rng=np.random.default_rng(seed))[0] for seed in range(12)}
    assert len(texts) >= 6
    for text in texts:
        assert [prior_key(f) for f in parse_report(text).findings] == [prior_key(finding)]


@pytest.mark.parametrize("domain", ["chest", "colonoscopy", "breast", "brain", "image"])
def test_no_lesion_gives_an_all_negative_report(domain):
    text, expected = render([], style="radiology", domain=domain, rng=np.random.default_rng(0))
    report = parse_report(text)
    assert report.all_negative and len(report.findings) == len(expected)


def test_long_adjective_chains_keep_their_count():
    finding = Finding(target="lesion", location=Location(organ="image", image_region="top"),
                      texture=["heterogeneous", "hypoechoic"], shape=["irregular"],
                      size_class="small", count=1)
    for seed in range(20):
        text, expected = render([finding], style="attribute", domain="breast",
                                rng=np.random.default_rng(seed))
        assert parse_report(text).findings[0].count == 1, text


def test_unknown_style_is_refused():
    with pytest.raises(ValueError, match="unknown sentence style"):
        render([], style="haiku", domain="chest", rng=np.random.default_rng(0))
