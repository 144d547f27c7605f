import numpy as np
import pytest
from skimage.draw import ellipse, polygon


def disc_mask(shape, centre, radius):
    mask = np.zeros(shape, bool)
    rr, cc = ellipse(centre[0], centre[1], radius, radius, shape=shape)
    mask[rr, cc] = True
    return mask


def star_mask(shape, centre, spikes, inner, outer):
    t = np.linspace(0, 2 * np.pi, 2 * spikes, endpoint=False)
    r = np.where(np.arange(2 * spikes) % 2 == 0, outer, inner)
    mask = np.zeros(shape, bool)
    rr, cc = polygon(centre[0] + r * np.sin(t), centre[1] + r * np.cos(t), shape)
    mask[rr, cc] = True
    return mask


@pytest.fixture
def chest():
    """A chest-like radiograph (two dark lungs) with a bright round nodule in the patient's
    right upper lung, and its mask (``medseg_r.example``)."""
    from medseg_r.example import chest_like_image

    return chest_like_image()


@pytest.fixture
def ct_volume():
    """A CT-like volume [X, Y, Z] in HU (RAS+: x toward the patient's right, z superior): a body
    of soft tissue with two aerated lungs, a solid nodule (40 HU) in the right lung's upper third
    and a calcified one (500 HU) in the left lung's lower third; spacing (0.8, 0.8, 2.5) mm."""
    shape = (96, 80, 60)
    x, y, z = np.meshgrid(*[np.arange(n) for n in shape], indexing="ij")
    hu = np.full(shape, -1000.0)
    body = ((x - 48) / 44) ** 2 + ((y - 40) / 34) ** 2 < 1
    hu[body] = 40.0
    for cx in (26, 70):
        lung = ((x - cx) / 16) ** 2 + ((y - 40) / 22) ** 2 + ((z - 30) / 28) ** 2 < 1
        hu[lung] = -850.0
    right = ((x - 72) ** 2 + (y - 40) ** 2) * 0.64 + ((z - 48) * 2.5) ** 2 < 8 ** 2
    left = ((x - 24) ** 2 + (y - 40) ** 2) * 0.64 + ((z - 12) * 2.5) ** 2 < 5 ** 2
    hu[right] = 40.0
    hu[left] = 500.0
    rng = np.random.default_rng(0)
    hu += rng.normal(0, 10, shape)
    return hu, right | left, (0.8, 0.8, 2.5), right, left
