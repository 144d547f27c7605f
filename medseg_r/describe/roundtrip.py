"""Round trip of the sentence generator: priors -> text -> :func:`parse_report` -> priors.

    python -m medseg_r.describe.roundtrip [--n 5000] [--seed 0]

Cases are drawn at random over everything ``describe`` can state: every domain, 0-4 findings
(0: the negative sentence), chest sides and zones (one, or two neighbouring zones), volume
organs with sides and thirds, image regions, the texture codes of each modality (with
``heterogeneous`` at times), every shape word or none, sizes in mm (with a short axis) or unknown.
A case passes when the priors read back (:func:`.sentences.prior_key`) equal the expected ones,
finding by finding.
"""
from __future__ import annotations

import argparse
import time
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..report import Finding, Location, parse_report
from .core import DEFAULT_ORGAN, DEFAULT_TARGET, DOMAINS, _rounded, size_class
from .sentences import STYLES, prior_key, render

TEXTURES = {"chest": ["ground_glass", "solid", "part_solid", "calcified", "cavitary"],
            "ct": ["hypodense", "isodense", "hyperdense"],
            "mr": ["hypointense", "isointense", "hyperintense"],
            "ultrasound": ["hypoechoic", "isoechoic", "hyperechoic", "anechoic"]}
SHAPES = ["round", "oval", "lobulated", "spiculated", "irregular"]
REGIONS = ["top_left", "top", "top_right", "left", "center", "right", "bottom_left", "bottom",
           "bottom_right"]
ORGANS = ["liver", "kidney", "spleen", "pancreas", None]


def _zones(rng: np.random.Generator) -> List[str]:
    first = int(rng.integers(3))
    if rng.random() < 0.2:
        second = first + 1 if first < 2 else first - 1
        return [["upper", "middle", "lower"][k] for k in sorted((first, second))]
    return [["upper", "middle", "lower"][first]]


def _finding(domain: str, rng: np.random.Generator) -> Tuple[Finding, Optional[float]]:
    volume = domain in ("chest", "abdomen", "brain") and rng.random() < 0.5
    if domain == "chest":
        location = Location(side=str(rng.choice(["left", "right"])), zones=_zones(rng),
                            organ="lung")
        texture = [str(rng.choice(TEXTURES["chest"]))]
    elif domain in ("abdomen", "brain"):
        organ = DEFAULT_ORGAN.get(domain) or ORGANS[int(rng.integers(len(ORGANS)))]
        side = str(rng.choice(["left", "right", "left", "right", "midline"]))
        zones = _zones(rng) if volume or side == "midline" else []
        location = Location(side=side, zones=zones, organ=organ)
        texture = [str(rng.choice(TEXTURES["ct" if domain == "abdomen" else "mr"]))]
    else:
        location = Location(organ="image", image_region=str(rng.choice(REGIONS)))
        texture = [str(rng.choice(TEXTURES["ultrasound" if domain == "breast" else "mr"]))]
        if domain == "colonoscopy":
            texture = []
    if texture and texture[0] not in TEXTURES["chest"] and texture[0] != "anechoic" \
            and rng.random() < 0.3:
        texture.append("heterogeneous")
    if rng.random() < 0.15:
        texture = []
    shape = [str(rng.choice(SHAPES))] if rng.random() < 0.8 else []
    size_mm, short = None, None
    if rng.random() < 0.8:
        size_mm = _rounded(float(np.exp(rng.uniform(np.log(2), np.log(80)))))
        short = _rounded(size_mm * rng.uniform(0.3, 1.0)) if rng.random() < 0.5 else None
    target = DEFAULT_TARGET[domain]
    if domain == "chest" and size_mm is not None and size_mm > 30:
        target = "mass"
    finding = Finding(target=target, location=location, texture=texture, shape=shape,
                      size_mm=size_mm, size_class=None if size_mm is None else size_class(size_mm),
                      count=1)
    return finding, short


def random_case(rng: np.random.Generator) -> Tuple[str, List[Finding], List[Optional[float]]]:
    """(domain, findings, short axes) of one random case."""
    domain = str(rng.choice(DOMAINS))
    n = int(rng.choice([0, 1, 1, 1, 2, 2, 3, 4]))
    pairs = [_finding(domain, rng) for _ in range(n)]
    return domain, [f for f, _ in pairs], [s for _, s in pairs]


def round_trip(n: int, *, style: str, seed: int = 0) -> Dict[str, object]:
    """``{"cases", "passed", "rate", "failures": [(text, expected, read)...] (first 10)}``."""
    rng = np.random.default_rng([seed, STYLES.index(style)])
    passed, failures = 0, []
    for _ in range(n):
        domain, findings, shorts = random_case(rng)
        text, expected = render(findings, style=style, domain=domain, rng=rng, short_axes=shorts)
        read = [prior_key(f) for f in parse_report(text).findings]
        if read == [prior_key(f) for f in expected]:
            passed += 1
        elif len(failures) < 10:
            failures.append((text, [prior_key(f) for f in expected], read))
    return {"cases": n, "passed": passed, "rate": passed / max(n, 1), "failures": failures}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m medseg_r.describe.roundtrip",
                                     description="round trip of describe's sentence styles")
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    worst = 1.0
    for style in STYLES:
        start = time.perf_counter()
        result = round_trip(args.n, style=style, seed=args.seed)
        worst = min(worst, result["rate"])
        print(f"{style:>10}: {result['passed']} / {result['cases']} = {100 * result['rate']:.2f} % "
              f"({time.perf_counter() - start:.1f} s)")
        for text, expected, read in result["failures"][:3]:
            print(f"    {text!r}\n      expected {expected}\n      read     {read}")
    return 0 if worst >= 0.99 else 1


if __name__ == "__main__":
    raise SystemExit(main())
