"""The phantom benchmark's lesion descriptions rewritten in chest radiograph shorthand ("R upper
third", "LLZ", "Lt mid lung", "R apex"): side and zone must be read for every described lesion.
The issue that asked for this measured 85 of 171 with its own rewrite; this one is the project's."""
import numpy as np

from medseg_r import parse_report
from medseg_r.data.phantom.reports import TEST

SHORTHAND = {
    "upper": ["{s} upper zone", "{s} upper third", "{s} apex", "{s} upper field", "{s}UZ",
              "{t} upper lung"],
    "middle": ["{s} mid zone", "{s} middle third", "{s} perihilar region", "{s} mid-zone", "{s}MZ",
               "{t} mid lung"],
    "lower": ["{s} lower zone", "{s} lower third", "{s} base", "{s} lower field", "{s}LZ",
              "{t} lower lung"],
}
SENTENCES = ["{desc}, {loc}.", "{loc}: {desc}.", "{Desc} {loc}.", "{Desc} at the {loc}."]


def shorthand_lesions(n=171, seed=0):
    """``n`` (text, side, zone) triples: one described phantom lesion each, in shorthand."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        side = str(rng.choice(["right", "left"]))
        zone = str(rng.choice(["upper", "middle", "lower"]))
        texture = str(rng.choice([w for words in TEST["texture"].values() for w in words]))
        shape = str(rng.choice([w for words in TEST["shape"].values() for w in words]))
        noun = str(rng.choice(TEST["noun"] + ["nodule", "opacity"]))
        size = f"{int(rng.integers(4, 40))} mm " if rng.random() < 0.5 else ""
        loc = str(rng.choice(SHORTHAND[zone])).format(s=side[0].upper(), t=side[0].upper() + "t")
        desc = f"{size}{texture} {shape} {noun}"
        sentence = str(rng.choice(SENTENCES))
        text = sentence.format(desc=desc, Desc=desc[0].upper() + desc[1:], loc=loc)
        out.append((text, side, zone))
    return out


def recovered(parse=parse_report):
    hits = 0
    for text, side, zone in shorthand_lesions():
        findings = parse(text).findings
        read = [(f.location.side, f.location.zones) for f in findings]
        hits += read == [(side, [zone])]
    return hits


def test_every_shorthand_lesion_keeps_its_side_and_zone():
    lesions = shorthand_lesions()
    assert len(lesions) == 171 and len({t for t, _, _ in lesions}) > 150
    hits = recovered()
    print(f"\nphantom lesions in shorthand: side and zone read for {hits} of {len(lesions)}")
    assert hits == len(lesions)
