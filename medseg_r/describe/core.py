"""``describe(image, mask) -> Report``: findings measured from a mask and written as report text.

One finding per lesion (connected component, or label; :mod:`.inputs`), each with a location
(:mod:`.location`), size (:mod:`.measures`), shape (:mod:`.shape`) and texture (:mod:`.texture`).
The findings are written as sentences in a chosen style (:mod:`.sentences`) and read back with
:func:`medseg_r.report.parse_report`; the report returned is the one read back, so its priors,
spans included, are exactly what any consumer of the text gets. If a draw of the sentence
generator does not read back to the measured priors (never seen in 5,000-case tests, but the
reader may change), up to :data:`RETRIES` other draws are tried, then the ``radiology`` style; the
``round_trip`` flag of :class:`Description` says whether the text matched (targets compared as
the reader's codes: "tumour" reads back as "tumor"), and a note says when it did not (e.g. a
``target`` that is not a finding word of the reader).
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Dict, List, Optional

import numpy as np

from ..report import Finding, Location, Report, parse_report
from ..report.sizes import MAX_SIZE_MM
from .inputs import Case, DescribeError, load_case
from .location import chest_radiograph, image_region, organ_extent, slice_side, volume_location
from .measures import isotropic, largest_section, measure_size
from .sentences import STYLES, prior_key, render
from .shape import describe_shape
from .texture import describe_texture, modality_of

DOMAINS = ("chest", "abdomen", "breast", "brain", "colonoscopy", "image")
ORIENTATIONS = ("radiological", "neurological")
DEFAULT_TARGET = {"chest": "nodule", "abdomen": "lesion", "breast": "mass", "brain": "lesion",
                  "colonoscopy": "polyp", "image": "lesion"}
DEFAULT_ORGAN = {"chest": "lung", "brain": "brain", "breast": "breast"}
# ``organ``: where the domain does not name it (the abdomen), one of the organs of the report
# reader's abdomen vocabulary (``medseg_r/report/vocab/abdomen.yaml``), each read back by it
ABDOMEN_ORGANS = ("liver", "kidney", "spleen", "pancreas", "adrenal", "colon")
RETRIES = 5
MASS_MM = 30.0  # a lung nodule above 3 cm is a mass (Fleischner glossary)


@dataclass
class LesionDescription:
    """What was measured for one lesion and the priors (``finding``) it gives."""

    label: int
    finding: Finding
    size: Dict[str, object]
    shape: Dict[str, object]
    texture: Dict[str, object]
    centre: List[float]

    def to_dict(self) -> Dict[str, object]:
        priors = self.finding.to_dict()
        for key in ("spans", "diagnosis", "artefact", "negated", "uncertain"):
            priors.pop(key)
        return {"label": self.label, "centre": self.centre, "priors": priors, "size": self.size,
                "shape": self.shape, "texture": self.texture}


@dataclass
class Description:
    """The report and everything behind it."""

    report: Report
    lesions: List[LesionDescription]
    expected: List[Finding]
    style: str
    seed: int
    round_trip: bool
    notes: List[str] = field(default_factory=list)

    def to_dict(self) -> Dict[str, object]:
        """``PRIORS.md`` JSON of the report plus ``lesions`` (measurements), ``style``, ``seed``,
        ``round_trip`` and ``notes``."""
        return {**self.report.to_dict(), "lesions": [d.to_dict() for d in self.lesions],
                "style": self.style, "seed": self.seed, "round_trip": self.round_trip,
                "notes": list(self.notes)}


def _rounded(value: float) -> float:
    return round(value, 1) if value < 10 else float(round(value))


def size_class(size_mm: float) -> str:
    """The report reader's classes: small < 10 mm <= medium <= 30 mm < large."""
    return "small" if size_mm < 10 else "medium" if size_mm <= 30 else "large"


def _location(case: Case, component: np.ndarray, context: Dict[str, object], *, domain: str,
              orientation: str, organ: Optional[str]) -> Location:
    if case.volume:
        return volume_location(component, grey=case.grey, extent=context["extent"],
                               affine=case.affine, spacing=case.spacing, organ=organ)
    if domain == "chest":
        return chest_radiograph(component, context["fields"], orientation=orientation)
    if domain in ("brain", "abdomen"):
        return slice_side(component, orientation=orientation, organ=organ)
    return image_region(component)


def _context(case: Case, *, domain: str, modality: str) -> Dict[str, object]:
    if case.volume:
        return {"extent": organ_extent(case.grey, domain=domain, hounsfield=modality == "ct")}
    if domain == "chest" and case.lesions:
        from .chest import find_lung_fields

        from .texture import radiograph_levels, to_unit

        fields = find_lung_fields(case.grey)
        lungs = np.zeros(case.grey.shape, bool)
        for mask in (fields.image_left, fields.image_right):
            if mask is not None:
                lungs |= mask
        levels = radiograph_levels(to_unit(case.grey), lungs, fields.midline,
                                   np.any(case.lesions, axis=0))
        return {"fields": fields, "levels": levels,
                "note": f"lung fields found: {fields.found} of 2"}
    return {}


def measure_lesions(case: Case, *, domain: str, orientation: str, target: Optional[str],
                    organ: Optional[str]) -> List[LesionDescription]:
    """The measured priors of every lesion of ``case`` (largest first)."""
    modality = modality_of(domain, case.grey, volume=case.volume)
    context = _context(case, domain=domain, modality=modality)
    if "note" in context:
        case.notes.append(str(context["note"]))
    organ = organ if organ is not None else DEFAULT_ORGAN.get(domain)
    everything = np.zeros(case.grey.shape, bool)
    for lesion in case.lesions:
        everything |= lesion
    out = []
    for label, component in zip(case.labels, case.lesions):
        size = measure_size(component, case.spacing)
        section = largest_section(component)
        section_mm = None if case.spacing is None else case.spacing[:2]
        square = isotropic(section, section_mm)
        longest_px = measure_size(square).longest
        shape = describe_shape(square, longest_px=longest_px)
        texture = describe_texture(case.grey, component, others=everything & ~component,
                                   modality=modality, domain=domain, spacing=case.spacing,
                                   levels=context.get("levels"))
        location = _location(case, component, context, domain=domain, orientation=orientation,
                             organ=organ)
        size_mm = None if size.unit == "px" else _rounded(size.longest)
        if size_mm is not None and not 0 < size_mm <= MAX_SIZE_MM:  # what a report could not state
            case.notes.append(f"finding {len(out) + 1}: {size.longest:.3g} mm across with this "
                              f"spacing, not a lesion size (check the spacing): size left out")
            size_mm = None
        noun = target or DEFAULT_TARGET[domain]
        if target is None and domain == "chest" and size_mm is not None and size_mm > MASS_MM:
            noun = "mass"
        finding = Finding(target=noun, location=location, texture=list(texture["texture"]),
                          shape=[shape["shape"]] if shape["shape"] else [], size_mm=size_mm,
                          size_class=None if size_mm is None else size_class(size_mm), count=1)
        centre = [round(float(c), 2) for c in np.argwhere(component).mean(0)]
        out.append(LesionDescription(label=label, finding=finding, size=size.to_dict(),
                                     shape=shape, texture=texture, centre=centre))
    return out


def _short_axis(lesion: LesionDescription) -> Optional[float]:
    if lesion.size["unit"] != "mm":
        return None
    return _rounded(float(lesion.size["short_axis"]))


def write_report(lesions: List[LesionDescription], *, domain: str, style: str,
                 seed: int) -> tuple:
    """(report read back from the text, expected findings, round trip held, style used)."""
    rng = np.random.default_rng(seed)
    findings = [d.finding for d in lesions]
    shorts = [_short_axis(d) for d in lesions]
    attempts = [style] * (RETRIES + 1) + ["radiology"]
    for used in attempts:
        text, expected = render(findings, style=used, domain=domain, rng=rng, short_axes=shorts)
        try:
            report = parse_report(text)
        except ValueError as exc:  # over the reader's length limit: thousands of regions
            raise DescribeError(f"{exc}: the mask has {len(lesions)} separate regions (a noisy or "
                                f"unthresholded mask?)") from None
        # the reader's codes, not the spelling written ("tumour" reads back as "tumor")
        if [prior_key(f) for f in report.findings] == [prior_key(_canonical(f)) for f in expected]:
            return report, expected, True, used
    return report, expected, False, used


def check_options(*, domain: str, orientation: str, style: str,
                  organ: Optional[str] = None) -> None:
    """Raise :class:`DescribeError` for an unknown domain, orientation, style or organ, or an
    organ for a domain that is not the abdomen (the others name their organ, or locate lesions in
    the image)."""
    for value, known, what in ((domain, DOMAINS, "domain"),
                               (orientation, ORIENTATIONS, "orientation"),
                               (style, STYLES, "style")):
        if value not in known:
            raise DescribeError(f"unknown {what} {value!r}; known: {', '.join(known)}")
    if organ is not None and organ not in ABDOMEN_ORGANS:
        raise DescribeError(f"unknown organ {organ!r}; known: {', '.join(ABDOMEN_ORGANS)}")
    if organ is not None and domain != "abdomen":
        where = (f"its lesions lie in the {DEFAULT_ORGAN[domain]}" if domain in DEFAULT_ORGAN
                 else "its lesions are located in the image")
        raise DescribeError(f"organ {organ!r} is for the abdomen domain, not {domain} ({where}); "
                            f"give domain abdomen or leave the organ out")


def _target_code(word: str) -> Optional[str]:
    """The report reader's code of a target word ("tumour" -> "tumor"), or ``None``."""
    from ..report.vocab import default_vocabulary

    return default_vocabulary().matcher("targets")[1].get(" ".join(str(word).lower().split()))


def _canonical(finding: Finding) -> Finding:
    """``finding`` with its target as the report reader's code, where it has one."""
    return replace(finding, target=_target_code(finding.target) or finding.target)


def not_read_back(target: Optional[str]) -> str:
    """The note for a report that does not read back to its findings."""
    note = ("the report does not read back to the described findings (round_trip false): "
            "training would read other priors from it")
    if target is not None and _target_code(target) is None:
        from ..report.schema import TARGETS

        note += (f"; the target {target!r} is not a finding word of the report reader "
                 f"(give one such as {', '.join(TARGETS)})")
    return note


def describe_case(image, mask, *, spacing=None, domain: str = "chest",
                  orientation: str = "radiological", style: str = "radiology", seed: int = 0,
                  target: Optional[str] = None, organ: Optional[str] = None) -> Description:
    """Like :func:`describe`, returning the :class:`Description` (report, measurements, notes)."""
    check_options(domain=domain, orientation=orientation, style=style, organ=organ)
    case = load_case(image, mask, spacing=spacing)
    if case.from_file and case.volume:
        orientation = "radiological"  # world axes come from the affine
    lesions = measure_lesions(case, domain=domain, orientation=orientation, target=target,
                              organ=organ)
    report, expected, ok, used = write_report(lesions, domain=domain, style=style, seed=seed)
    if not ok:
        case.notes.append(not_read_back(target))
    return Description(report=report, lesions=lesions, expected=expected, style=used, seed=seed,
                       round_trip=ok, notes=case.notes)


def describe(image, mask, *, spacing=None, domain: str = "chest",
             orientation: str = "radiological", style: str = "radiology", seed: int = 0,
             target: Optional[str] = None, organ: Optional[str] = None) -> Report:
    """Describe the lesions of ``mask`` on ``image`` as a report (``PRIORS.md`` findings + text).

    Args:
        image: ``[H, W]`` or ``[H, W, 3|4]`` array, ``[X, Y, Z]`` volume (RAS+, z superior), or
            a path to a PNG/JPEG/TIFF/BMP, NIfTI or DICOM file or series folder.
        mask: the same grid (array or path): binary (one finding per connected component),
            integer labels (one finding per label), or empty (a "no finding" report).
        spacing: mm per axis (``(row, col)`` or ``(x, y, z)``; one number for all axes); needed
            for 3-D arrays; files with an affine bring their own. Without it sizes are in pixels
            and the report states none.
        domain: ``chest`` | ``abdomen`` | ``breast`` | ``brain`` | ``colonoscopy`` | ``image``.
        orientation: ``radiological`` (patient's left on the image's right) or
            ``neurological``; for 2-D images (volumes from files use their affine).
        style: sentence style, ``radiology`` | ``qata`` | ``attribute``.
        seed: seeds the phrasing (same inputs and seed -> same text).
        target: the finding noun (default per domain: nodule/mass, lesion, mass, polyp ...).
        organ: for the ``abdomen`` domain, the organ the lesions lie in (one of
            :data:`ABDOMEN_ORGANS`, e.g. ``liver``); other domains refuse it.

    Returns:
        The :class:`~medseg_r.report.Report` read back from the generated text.

    Raises:
        DescribeError: a one-line reason (bad file, size mismatch, bad mask values ...).
    """
    return describe_case(image, mask, spacing=spacing, domain=domain, orientation=orientation,
                         style=style, seed=seed, target=target, organ=organ).report
