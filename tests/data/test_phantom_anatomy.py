"""The phantom radiograph's anatomy and noise, drawn around real lung masks."""
import numpy as np
import pytest
from scipy import ndimage

from medseg_r.data.phantom.anatomy import draw_anatomy
from medseg_r.data.phantom.render import finish
from medseg_r.data.phantom.vessels import draw_hila_and_vessels
from medseg_r.data.phantom.sources import load_lung_mask, lung_mask_names


def _chests(count=4, size=256):
    names = lung_mask_names()
    chests = []
    for i in range(0, len(names), 37):
        lungs = load_lung_mask(names[i], size)
        if lungs is not None:
            chests.append(draw_anatomy(lungs, np.random.default_rng(i)))
        if len(chests) == count:
            return chests
    raise AssertionError("too few usable lung masks")


@pytest.fixture(scope="module")
def chests():
    return _chests()


def _median_slope(mask, midline, side):
    """Median slope dy/d(distance from the spine) of the bands of ``mask`` on one side."""
    half = np.zeros_like(mask)
    if side == "right":
        half[:, :int(midline)] = True
    else:
        half[:, int(midline):] = True
    labels, n = ndimage.label(mask & half)
    slopes = []
    for k in range(1, n + 1):
        ys, xs = np.nonzero(labels == k)
        if len(xs) >= 30:
            slopes.append(np.polyfit(np.abs(xs - midline), ys, 1)[0])
    return float(np.median(slopes)), len(slopes)


def test_ribs_run_the_right_way_and_cross(chests):
    for chest in chests:
        for side in ("right", "left"):
            posterior, n_post = _median_slope(chest.posterior_ribs, chest.midline, side)
            anterior, n_ant = _median_slope(chest.anterior_ribs, chest.midline, side)
            clavicle, _ = _median_slope(chest.clavicles, chest.midline, side)
            assert posterior > 0.1 and n_post >= 6  # down and out (image y grows downwards)
            assert anterior < -0.2 and n_ant >= 6  # up and out
            assert clavicle < -0.15
        assert (chest.rib_crossings & chest.lungs).sum() > 0.02 * chest.lungs.sum()


def test_heart_and_aortic_knob_are_on_the_patients_left(chests):
    for chest in chests:
        S = chest.lungs.shape[0]
        heart_x = ndimage.center_of_mass(chest.heart)[1]
        assert heart_x > chest.midline + 0.02 * S  # patient's left = image right
        assert chest.aortic_knob[1] > chest.midline
        assert chest.hilum_centres["left"][0] < chest.hilum_centres["right"][0]  # left hilum higher


def test_lungs_are_grey_with_vessels_and_end_on_dots(chests):
    for i, chest in enumerate(chests):
        image = finish(chest.density.copy(), np.random.default_rng(i))
        lung = image[chest.lungs]
        assert 0.2 < np.median(lung) < 0.75 and np.percentile(lung, 5) > 0.08  # not flat black
        assert np.median(image[chest.heart & ~chest.lungs]) > np.percentile(lung, 75)
        assert len(chest.vessel_dots) >= 3
        inside = ndimage.binary_dilation(chest.lungs, iterations=2)
        assert all(inside[int(round(y)), int(round(x))] for y, x, _ in chest.vessel_dots)
        assert all(0.4 <= r <= 3.0 for _, _, r in chest.vessel_dots)


def test_vessels_taper_towards_the_periphery(chests):
    for i, chest in enumerate(chests):
        S = chest.lungs.shape[0]
        ys = np.nonzero(chest.lungs.any(1))[0]
        soft = ndimage.gaussian_filter(chest.lungs.astype(float), 1.2)
        _, vessels, _, centres = draw_hila_and_vessels(
            chest.right_lung, chest.left_lung, soft, chest.midline, float(ys.min()),
            float(np.ptp(ys)), np.random.default_rng(i))
        for side, lung in (("right", chest.right_lung), ("left", chest.left_lung)):
            yy, xx = np.nonzero(lung)
            dist = np.hypot(yy - centres[side][0], xx - centres[side][1])
            near = vessels[yy[dist < 0.12 * S], xx[dist < 0.12 * S]].mean()
            far = vessels[yy[dist > 0.3 * S], xx[dist > 0.3 * S]].mean()
            assert near > 3 * far, (near, far)


def test_noise_is_correlated_and_stronger_where_brighter():
    density = np.tile(np.linspace(0.0, 1.0, 256), (256, 1))
    image = finish(density, np.random.default_rng(0))
    residual = image - ndimage.gaussian_filter(image, 4)
    lag1 = np.corrcoef(residual[:, 10:-11].ravel(), residual[:, 11:-10].ravel())[0, 1]
    assert 0.25 < lag1 < 0.8
    assert residual[:, 200:240].std() > 1.25 * residual[:, 20:60].std()
