"""Frontal chest radiograph anatomy drawn around a real lung mask (PA view, radiological display).

The picture is built as a density map (bright = dense, as a radiograph is displayed) from the
structures that make lesions hard to find in real films: a soft-tissue body with its lateral edges
and the abdomen under the domes; aerated lungs whose darkness follows their thickness (thin at the
edges and apices); trachea and main bronchi; the vertebral column (bodies, end plates, pedicles)
inside the bright mediastinal stripe; the heart shadow, aortic knob and descending aorta on the
patient's left (image right); lobulated hila and branching pulmonary vessels that taper towards the
periphery, with bright round vessel-on-end dots (:mod:`.vessels`); posterior ribs running down and
out and fainter, wider anterior ribs running up and out from their cartilage ends, brighter where
they cross; S-shaped clavicles; breast or pectoral soft-tissue gradients over the lower or upper
zones; a fine parenchymal texture.

All lengths scale with the image size ``S`` (fractions of ``S``; pixel figures are for 256 px).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, List, Optional, Tuple

import numpy as np
from scipy import ndimage


@dataclass
class Anatomy:
    """The drawn chest: structure masks (bool ``[S, S]``) and the lesion-free density map."""

    lungs: np.ndarray
    right_lung: np.ndarray  # patient's right = image left
    left_lung: np.ndarray
    heart: np.ndarray
    posterior_ribs: np.ndarray
    anterior_ribs: np.ndarray
    clavicles: np.ndarray
    hila: np.ndarray
    midline: float  # x of the spine
    hilum_centres: dict  # side -> (y, x)
    aortic_knob: Tuple[float, float, float]  # (y, x, radius)
    density: np.ndarray  # float [S, S], no lesions, no noise
    lung_depth: np.ndarray  # distance (px) from each lung pixel to the lung edge
    vessel_dots: List[Tuple[float, float, float]] = field(default_factory=list)  # (y, x, r)

    @property
    def rib_crossings(self) -> np.ndarray:
        """Where a posterior and an anterior rib overlap (brighter: two bones)."""
        return self.posterior_ribs & self.anterior_ribs


def split_lungs(lungs: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(patient's right lung, patient's left lung) of a two-lung mask: image left, image right."""
    labels, n = ndimage.label(lungs)
    centres = ndimage.center_of_mass(lungs, labels, range(1, n + 1))
    order = np.argsort([c[1] for c in centres])
    return labels == order[0] + 1, labels == order[-1] + 1


def _row_extent(lung: np.ndarray, lateral_is_min: bool) -> np.ndarray:
    """Lateral x of ``lung`` per row, carried to rows without lung from the nearest row with it."""
    rows = np.nonzero(lung.any(1))[0]
    if lateral_is_min:
        cols = np.argmax(lung, 1)
    else:
        cols = lung.shape[1] - 1 - np.argmax(lung[:, ::-1], 1)
    return np.interp(np.arange(lung.shape[0]), rows, cols[rows].astype(float))


def _body_edge(lateral: np.ndarray, top: float, height: float, outward: int) -> np.ndarray:
    """The skin line beside a lung: shoulders as wide as the upper chest, then only widening."""
    edge = lateral.copy()
    shoulder = int(np.clip(top + 0.12 * height, 0, len(edge) - 1))
    edge[:shoulder] = edge[shoulder]
    accumulate = np.minimum.accumulate if outward < 0 else np.maximum.accumulate
    return accumulate(edge)


def add_band(canvas: np.ndarray, x0: float, x1: float, centre: Callable[[np.ndarray], np.ndarray],
             half_width: float, amplitude: float, cortex: float = 0.0,
             mask: Optional[np.ndarray] = None) -> None:
    """Add a curved band ``y = centre(x)`` for ``x0 <= x < x1`` (a bone, a bronchus) to ``canvas``.

    The cross-section is the chord of a tube (``sqrt(1 - d^2)``); ``cortex`` in [0, 1) hollows its
    middle so that the edges are brighter, as cortical bone is. The band is marked in ``mask``."""
    S = canvas.shape[0]
    xs = np.arange(max(0, int(np.floor(min(x0, x1)))), min(S, int(np.ceil(max(x0, x1)))))
    if xs.size < 2:
        return
    yc = centre(xs.astype(float))
    reach = half_width * np.sqrt(1.0 + np.gradient(yc) ** 2)  # vertical half-thickness when sloped
    r0 = max(0, int(np.floor((yc - reach).min())) - 1)
    r1 = min(S, int(np.ceil((yc + reach).max())) + 2)
    if r1 <= r0:
        return
    d = (np.arange(r0, r1)[:, None] - yc[None]) / reach[None]
    chord = np.sqrt(np.clip(1.0 - d * d, 0.0, None))
    if cortex:
        chord = chord - cortex * np.sqrt(np.clip(0.72 - d * d, 0.0, None))
    canvas[r0:r1, xs] += amplitude * chord
    if mask is not None:
        mask[r0:r1, xs] |= np.abs(d) < 0.85


def _ellipse(S: int, cy: float, cx: float, ry: float, rx: float, tilt: float = 0.0) -> np.ndarray:
    """``1 - r^2`` of an ellipse (positive inside) turned by ``tilt`` radians, on the full grid."""
    yy, xx = np.ogrid[0:S, 0:S]
    dy, dx = yy - cy, xx - cx
    along = dx * np.cos(tilt) + dy * np.sin(tilt)
    across = -dx * np.sin(tilt) + dy * np.cos(tilt)
    return 1.0 - (along / rx) ** 2 - (across / ry) ** 2


def _ribs_and_clavicles(S, frame, rng, bone, ribs_post, ribs_ant, clavicles):
    """Posterior ribs (down and out), anterior ribs (up and out from the cartilage), clavicles."""
    top, bottom, mid, lateral = frame["top"], frame["bottom"], frame["mid"], frame["lateral"]
    height = bottom - top
    spacing = height / rng.uniform(8.4, 9.8)
    drop = rng.uniform(0.09, 0.13) * S  # how far a posterior rib falls from spine to chest wall
    slope_ant = rng.uniform(0.38, 0.55)
    post_density, ant_density = rng.uniform(0.08, 0.11), rng.uniform(0.05, 0.065)
    for sign, lat in ((-1, lateral["right"]), (1, lateral["left"])):
        start = mid + sign * 0.03 * S
        for k in range(12):
            y_k = top - 0.3 * spacing + k * spacing
            wall = lat[int(np.clip(y_k + 0.6 * drop, 0, S - 1))] + sign * 0.025 * S
            span = max(abs(wall - start), 0.05 * S)
            bend = 1.0 + 1.5 * np.exp(-k / 1.4)  # the upper ribs arch more tightly

            def post(x, y_k=y_k, span=span, bend=bend):
                t = (x - start) * sign / span
                return y_k + drop * bend * t ** 2 - 0.02 * S * t

            half = (0.014 + 0.002 * min(k, 4) / 4) * S
            add_band(bone, start, wall, post, half, post_density * rng.uniform(0.9, 1.1),
                     cortex=0.5, mask=ribs_post)
            if 0 < k < 9:
                y_wall = post(np.array([wall]))[0] + 0.01 * S
                end = mid + sign * rng.uniform(0.1, 0.15) * S

                def ant(x, y_wall=y_wall, wall=wall, span=span):
                    run = np.abs(wall - x)
                    return y_wall + slope_ant * run - 0.25 * slope_ant * run ** 2 / span

                add_band(bone, end, wall, ant, 0.02 * S, ant_density, cortex=0.3, mask=ribs_ant)
        y_head = top + rng.uniform(0.1, 0.17) * height
        reach = rng.uniform(0.38, 0.45) * S

        def clavicle(x, y_head=y_head, reach=reach):
            t = (x - mid) * sign / reach
            return y_head - 0.1 * S * t + 0.015 * S * np.sin(2 * np.pi * t)

        add_band(bone, mid + sign * 0.025 * S, mid + sign * reach, clavicle, 0.019 * S,
                 rng.uniform(0.11, 0.14), cortex=0.45, mask=clavicles)
    return spacing


def _spine(S, frame, spacing, bone):
    """Vertebral bodies with end plates, disc spaces and pedicle rings, one level per rib."""
    mid = frame["mid"]
    yy = np.arange(S, dtype=float)[:, None]
    xx = np.arange(S, dtype=float)[None, :]
    phase = (yy - frame["top"] + 0.3 * spacing) / spacing % 1.0
    across = np.clip(1 - ((xx - mid) / (0.042 * S)) ** 2, 0, None) ** 0.3
    plates = np.exp(-((phase - 0.1) / 0.06) ** 2) + np.exp(-((phase - 0.86) / 0.06) ** 2)
    disc = np.exp(-((phase - 0.97) / 0.05) ** 2) + np.exp(-((phase + 0.03) / 0.05) ** 2)
    bone += across * (0.05 + 0.02 * plates - 0.03 * disc)
    for sign in (-1, 1):  # pedicles: oval cortical rings either side, upper half of each level
        r = np.hypot((phase - 0.38) / 0.2, (xx - mid - sign * 0.03 * S) / (0.011 * S))
        bone += 0.025 * np.exp(-((r - 1.0) / 0.35) ** 2)


def _body_and_lungs(S, frame, rng):
    """Soft tissue (the body and the brighter abdomen) minus the air in the lungs, where the heart,
    aortic knob and descending aorta displace lung. Returns (density, body, air, heart, knob)."""
    top, bottom, mid, lateral = frame["top"], frame["bottom"], frame["mid"], frame["lateral"]
    left = frame["left"]
    height = bottom - top
    yy, xx = np.ogrid[0:S, 0:S]
    margin = rng.uniform(0.03, 0.06) * S
    body = ((xx > _body_edge(lateral["right"], top, height, -1)[:, None] - margin)
            & (xx < _body_edge(lateral["left"], top, height, 1)[:, None] + margin)).astype(float)
    body = ndimage.gaussian_filter(body, 3 * S / 256)
    soft = body * (0.62 + 0.1 * np.clip((yy - top) / max(height, 1), 0, 1.3))
    air = 1.0 - np.exp(-frame["depth"] / (0.05 * S))  # thin lung near its edges
    air *= 0.7 + 0.3 * np.clip((yy - top) / (0.3 * height), 0, 1)  # and at the apex
    heart_right, heart_left = rng.uniform(0.07, 0.1) * S, rng.uniform(0.15, 0.21) * S
    heart_h = rng.uniform(0.32, 0.4) * height
    near_mid = np.nonzero(left[:, int(mid):int(mid + 0.15 * S)].any(1))[0]
    floor = float(near_mid.max()) if near_mid.size else bottom  # the left lung's medial base
    heart_cy = floor - rng.uniform(0.15, 0.25) * heart_h  # the heart sits on the diaphragm
    # an ellipse whose long axis runs down to the apex on the patient's left (image right)
    heart = _ellipse(S, heart_cy, mid + 0.5 * (heart_left - heart_right), 0.5 * heart_h,
                     0.55 * (heart_left + heart_right), tilt=rng.uniform(0.3, 0.55))
    heart = np.clip(heart, 0, None) ** 0.3
    knob = (top + rng.uniform(0.2, 0.27) * height, mid + rng.uniform(0.055, 0.075) * S,
            rng.uniform(0.028, 0.04) * S)
    knob_f = np.clip(_ellipse(S, knob[0], knob[1], knob[2], knob[2]), 0, None) ** 0.4
    aorta = np.exp(-((xx - mid - 0.045 * S) / (0.022 * S)) ** 4) * (yy > knob[0]) * 0.35
    air = air * (1 - 0.78 * heart) * (1 - 0.9 * knob_f) * (1 - aorta)
    density = soft - 0.56 * air * frame["lungs_soft"]
    return density, body, air, heart, knob


def _breasts_or_pectorals(S, frame, rng) -> np.ndarray:
    """Breast shadows over the lower zones, or pectoral muscles over the upper outer zones."""
    top, bottom, mid = frame["top"], frame["bottom"], frame["mid"]
    height = bottom - top
    yy, xx = np.ogrid[0:S, 0:S]
    extra = np.zeros((S, S))
    if rng.random() < 0.45:
        for sign in (-1, 1):
            e = _ellipse(S, bottom - rng.uniform(0.05, 0.15) * height,
                         mid + sign * rng.uniform(0.2, 0.26) * S, rng.uniform(0.13, 0.18) * S,
                         rng.uniform(0.15, 0.2) * S)
            rise = np.clip((yy - (bottom - 0.5 * height)) / (0.35 * height), 0, 1)
            extra += rng.uniform(0.06, 0.1) * np.sqrt(np.clip(e, 0, 1)) * rise
    else:
        outer = np.clip((np.abs(xx - mid) / (0.4 * S) - 0.45) / 0.4, 0, 1)
        extra += 0.04 * outer * np.clip(1 - (yy - top) / (0.5 * height), 0, 1)
    return extra


def _airways(S, frame, rng) -> np.ndarray:
    """Trachea and main bronchi (air: darker), down to the carina between the hila."""
    mid, top = frame["mid"], frame["top"]
    carina = top + rng.uniform(0.27, 0.33) * (frame["bottom"] - top)
    airway = np.zeros((S, S))
    add_band(airway.T, 0, carina, lambda y: mid + 0.006 * S * np.sin(y / S * 4), 0.022 * S, 1.0)
    for sign in (-1, 1):
        add_band(airway, mid, mid + sign * 0.075 * S,
                 lambda x, s=sign: carina + (x - mid) * s * 0.75, 0.013 * S, 0.7)
    return -0.13 * ndimage.gaussian_filter(airway, S / 256)


def draw_anatomy(lungs: np.ndarray, rng: np.random.Generator) -> Anatomy:
    """The lesion-free chest around the two-lung mask ``lungs`` (bool ``[S, S]``)."""
    from .vessels import draw_hila_and_vessels

    S = lungs.shape[0]
    u = S / 256.0
    right, left = split_lungs(lungs)
    ys = np.nonzero(lungs.any(1))[0]
    top, bottom = float(ys.min()), float(ys.max())
    mid = 0.5 * (np.nonzero(right.any(0))[0].max() + np.nonzero(left.any(0))[0].min())
    frame = {"top": top, "bottom": bottom, "mid": mid, "lungs": lungs, "left": left,
             "lateral": {"right": _row_extent(right, True), "left": _row_extent(left, False)},
             "depth": ndimage.distance_transform_edt(lungs),
             "lungs_soft": ndimage.gaussian_filter(lungs.astype(float), 1.2 * u)}
    density, body, air, heart, knob = _body_and_lungs(S, frame, rng)
    density += _breasts_or_pectorals(S, frame, rng)
    bone = np.zeros((S, S))
    ribs_post, ribs_ant, clavicles = (np.zeros((S, S), bool) for _ in range(3))
    spacing = _ribs_and_clavicles(S, frame, rng, bone, ribs_post, ribs_ant, clavicles)
    _spine(S, frame, spacing, bone)
    below = np.clip((np.arange(S)[:, None] - bottom) / (0.06 * S), 0, 1)  # ribs fade in the abdomen
    density += bone * body * (1 - 0.75 * below)
    density += _airways(S, frame, rng)
    hila, vessels, dots, hilum_centres = draw_hila_and_vessels(
        right, left, frame["lungs_soft"], mid, top, bottom - top, rng)
    density += vessels
    white = rng.standard_normal((S, S))  # parenchymal mottling inside the lungs
    texture = (ndimage.gaussian_filter(white, 1.6 * u) * 2.2
               + ndimage.gaussian_filter(white, 5 * u) * 4.5)
    density += 0.012 * texture * air
    return Anatomy(lungs=lungs, right_lung=right, left_lung=left, heart=heart > 0.05,
                   posterior_ribs=ribs_post, anterior_ribs=ribs_ant, clavicles=clavicles, hila=hila,
                   midline=float(mid), hilum_centres=hilum_centres, aortic_knob=knob,
                   density=density, lung_depth=frame["depth"], vessel_dots=dots)
