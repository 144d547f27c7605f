"""Structured priors: the dataclasses of the prior contract (``docs/PRIORS.md``).

These objects are what the cognitive stage consumes. They are plain dataclasses with no
dependency on torch, so the parser can be used on its own (e.g. to mine a report archive).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

Span = Tuple[int, int]

SIDES = ("left", "right", "bilateral", "midline")
ZONES = ("upper", "middle", "lower", "all")
IMAGE_REGIONS = (
    "top_left", "top_right", "bottom_left", "bottom_right", "center", "left", "right", "top", "bottom",
)
SIZE_CLASSES = ("small", "medium", "large")
TEXTURE_CODES = (
    "ground_glass", "consolidation", "solid", "part_solid", "cystic", "calcified", "fat", "necrotic",
    "cavitary", "hemorrhagic", "heterogeneous", "homogeneous", "hypodense", "isodense", "hyperdense",
    "hypointense", "isointense", "hyperintense", "hypoechoic", "isoechoic", "hyperechoic", "anechoic",
    "enhancing",
)
SHAPE_CODES = (
    "round", "oval", "irregular", "lobulated", "spiculated", "tubular", "linear", "wedge", "nodular",
    "patchy", "diffuse", "well_defined", "ill_defined",
)
TARGETS = (
    "lesion", "nodule", "mass", "opacity", "infection", "consolidation", "effusion", "polyp", "tumor", "cyst",
)
ORGANS = (
    "lung", "liver", "kidney", "breast", "colon", "brain", "heart", "pancreas", "spleen", "image",
)
SPAN_KEYS = ("location", "texture", "shape", "target")


@dataclass
class Location:
    """Where a finding is, in the patient's frame (``side``) or the image's (``image_region``).

    Attributes:
        side: ``left | right | bilateral | midline`` (patient's side) or ``None``.
        zones: any of ``upper | middle | lower | all``; may be empty.
        organ: canonical organ/region (``lung``, ``liver``, ...) or ``None``.
        segment: finer anatomical name (lobe, segment, clock face) or ``None``.
        image_region: image-relative region (``top_left`` ... ``bottom``) or ``None``.
    """

    side: Optional[str] = None
    zones: List[str] = field(default_factory=list)
    organ: Optional[str] = None
    segment: Optional[str] = None
    image_region: Optional[str] = None

    def is_empty(self) -> bool:
        return not (self.side or self.zones or self.organ or self.segment or self.image_region)

    def to_dict(self) -> Dict[str, Any]:
        return {
            "side": self.side,
            "zones": list(self.zones),
            "organ": self.organ,
            "segment": self.segment,
            "image_region": self.image_region,
        }

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Location":
        return cls(
            side=data.get("side"),
            zones=list(data.get("zones") or []),
            organ=data.get("organ"),
            segment=data.get("segment"),
            image_region=data.get("image_region"),
        )


@dataclass
class Finding:
    """One described target with its priors. Field meanings follow ``PRIORS.md``; two optional
    fields go beyond it:

    Attributes:
        diagnosis: what the report says the finding is, as free text ("scarring" in "linear
            opacity, likely scarring"; "abscess versus necrotic tumour"), or ``None``. It never
            makes a finding of its own.
        artefact: the report calls the finding an artefact ("related to overlying soft tissue"):
            it is not a target to segment and is left out of :attr:`Report.positive_findings`.
    """

    target: Optional[str] = None
    location: Location = field(default_factory=Location)
    texture: List[str] = field(default_factory=list)
    shape: List[str] = field(default_factory=list)
    size_mm: Optional[float] = None
    size_class: Optional[str] = None
    count: Optional[int] = None
    negated: bool = False
    uncertain: bool = False
    spans: Dict[str, List[Span]] = field(default_factory=lambda: {k: [] for k in SPAN_KEYS})
    diagnosis: Optional[str] = None
    artefact: bool = False

    def phrase(self, text: str, group: str) -> str:
        """The words of ``text`` that gave this finding's ``group`` prior (``location`` ...)."""
        return " ".join(text[s:e] for s, e in self.spans.get(group, []))

    def to_dict(self) -> Dict[str, Any]:
        return {
            "target": self.target,
            "location": self.location.to_dict(),
            "texture": list(self.texture),
            "shape": list(self.shape),
            "size_mm": self.size_mm,
            "size_class": self.size_class,
            "count": self.count,
            "negated": self.negated,
            "uncertain": self.uncertain,
            "spans": {k: [list(s) for s in self.spans.get(k, [])] for k in SPAN_KEYS},
            "diagnosis": self.diagnosis,
            "artefact": self.artefact,
        }

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Finding":
        spans = data.get("spans") or {}
        return cls(
            target=data.get("target"),
            location=Location.from_dict(data.get("location") or {}),
            texture=list(data.get("texture") or []),
            shape=list(data.get("shape") or []),
            size_mm=data.get("size_mm"),
            size_class=data.get("size_class"),
            count=data.get("count"),
            negated=data.get("negated", False),  # as given: check_report refuses "false"
            uncertain=data.get("uncertain", False),
            spans={k: [tuple(s) for s in spans.get(k, [])] for k in SPAN_KEYS},
            diagnosis=data.get("diagnosis"),
            artefact=data.get("artefact", False),
        )


@dataclass
class Report:
    """A free-text report and the findings read from it, in order of appearance.

    ``normal_statements``: character spans of the sentences that state a normal study without
    naming a finding ("The lungs are clear.", "No acute disease."; the vocabulary's
    ``normal_statements`` patterns, read only in sentences with no finding)."""

    text: str
    findings: List[Finding] = field(default_factory=list)
    normal_statements: List[Span] = field(default_factory=list)

    @property
    def positive_findings(self) -> List[Finding]:
        """Findings that describe a target to segment (neither negated nor an artefact)."""
        return [f for f in self.findings if not f.negated and not f.artefact]

    @property
    def reads_nothing(self) -> bool:
        """True when nothing was read: no finding, positive or negated, and no statement of a
        normal study (an empty report, or one in words the reader does not know). It says neither
        what to look for nor that there is nothing."""
        return not self.findings and not self.normal_statements

    @property
    def all_negative(self) -> bool:
        """True when the report asks for an empty mask: it has findings and none is positive (each
        is negated or an artefact), or it has none and states a normal study."""
        return bool(self.findings or self.normal_statements) and not self.positive_findings

    def to_dict(self) -> Dict[str, Any]:
        """The JSON of ``medseg-r parse-report --json`` (``docs/PRIORS.md`` plus ``diagnosis``,
        ``artefact`` and ``normal_statements``)."""
        return {"report": self.text, "findings": [f.to_dict() for f in self.findings],
                "normal_statements": [list(s) for s in self.normal_statements]}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "Report":
        """The inverse of :meth:`to_dict` (the JSON of ``medseg-r parse-report --json``), checked
        by :func:`check_report`."""
        report = cls(text=data.get("report", ""),
                     findings=[Finding.from_dict(f) for f in data.get("findings", [])],
                     normal_statements=[tuple(s) for s in data.get("normal_statements") or []])
        check_report(report)
        return report


def check_report(report: Report) -> None:
    """A report built by hand or read from JSON must hold the contract's values: ``ValueError``
    naming the finding, the field and the allowed values (an unknown zone or side would place the
    finding nowhere). Texture and shape codes, targets, organs and segments are free text
    (vocabulary packs extend them; an unknown texture or shape code is the prior encoder's "other")."""
    if not isinstance(report, Report) or not isinstance(report.text, str):
        raise ValueError(f"a report must be a Report with text, got {type(report).__name__}")
    for i, f in enumerate(report.findings):
        where = f"finding {i + 1}"

        def refuse(name: str, value: Any, allowed: str) -> None:
            raise ValueError(f"{where}: {name} {value!r} is not {allowed}")

        loc = f.location
        if loc.side is not None and loc.side not in SIDES:
            refuse("side", loc.side, f"one of {', '.join(SIDES)} or None")
        if not isinstance(loc.zones, (list, tuple)) or any(z not in ZONES for z in loc.zones):
            refuse("zones", loc.zones, f"a list of {', '.join(ZONES)}")
        if loc.image_region is not None and loc.image_region not in IMAGE_REGIONS:
            refuse("image_region", loc.image_region, f"one of {', '.join(IMAGE_REGIONS)} or None")
        for name, codes in (("texture", f.texture), ("shape", f.shape)):
            # a vocabulary pack may add codes (the prior encoder gives them its "other" row): text
            if not isinstance(codes, (list, tuple)) or not all(isinstance(c, str) for c in codes):
                refuse(name, codes, "a list of codes (text)")
        for name in ("target", "diagnosis"):
            if getattr(f, name) is not None and not isinstance(getattr(f, name), str):
                refuse(name, getattr(f, name), "text or None")
        for name in ("organ", "segment"):
            if getattr(loc, name) is not None and not isinstance(getattr(loc, name), str):
                refuse(name, getattr(loc, name), "text or None")
        size = f.size_mm
        if size is not None and (isinstance(size, bool) or not isinstance(size, numbers.Real)
                                 or not math.isfinite(size) or size <= 0):
            refuse("size_mm", size, "a positive number of millimetres or None")
        if f.size_class is not None and f.size_class not in SIZE_CLASSES:
            refuse("size_class", f.size_class, f"one of {', '.join(SIZE_CLASSES)} or None")
        if f.count is not None and (isinstance(f.count, bool) or not isinstance(f.count, numbers.Integral)
                                    or f.count < 1):
            refuse("count", f.count, "a whole number >= 1 or None")
        for name in ("negated", "uncertain", "artefact"):
            if not isinstance(getattr(f, name), bool):
                refuse(name, getattr(f, name), "true or false")
