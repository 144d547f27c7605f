import numpy as np
import pytest
from skimage.draw import ellipse

from medseg_r.describe.shape import MIN_SHAPE_PIXELS, describe_shape, shape_code
from medseg_r.describe.texture import modality_of, relative_words, lung_ct_words

from .conftest import disc_mask, star_mask


@pytest.mark.parametrize("ratings, word", [
    ({"sphericity": 5, "lobulation": 1, "spiculation": 3}, "spiculated"),
    ({"sphericity": 5, "lobulation": 4, "spiculation": 2}, "lobulated"),
    ({"sphericity": 4, "lobulation": 1, "spiculation": 1}, "round"),
    ({"sphericity": 3, "lobulation": 2, "spiculation": 1}, "oval"),
    ({"sphericity": 2, "lobulation": 2, "spiculation": 2}, "irregular"),
])
def test_shape_word_rule(ratings, word):
    assert shape_code(ratings) == word


def _ellipse(ry, rx):
    mask = np.zeros((120, 120), bool)
    rr, cc = ellipse(60, 60, ry, rx)
    mask[rr, cc] = True
    return mask


@pytest.mark.parametrize("mask, word", [
    (disc_mask((120, 120), (60, 60), 30), "round"),
    (_ellipse(22, 33), "oval"),
    (star_mask((120, 120), (60, 60), 12, 15, 40), "spiculated"),
])
def test_fitted_models_name_clear_outlines(mask, word):
    assert describe_shape(mask, longest_px=60)["shape"] == word


def test_tiny_outline_gets_no_shape_word():
    out = describe_shape(disc_mask((9, 9), (4, 4), 2), longest_px=MIN_SHAPE_PIXELS - 1)
    assert out["shape"] is None and set(out["ratings"]) == {"sphericity", "margin", "lobulation",
                                                             "spiculation"}


def test_modalities():
    ct = np.full((4, 4, 4), -1000.0)
    ct[0, 0, 0] = 300.0
    assert modality_of("chest", ct, volume=True) == "ct"
    lung_crop = np.full((4, 4, 4), -800.0)  # a crop of the lung: no bone above 100 HU, still CT
    lung_crop[1, 1, 1] = 40.0
    assert modality_of("chest", lung_crop, volume=True) == "ct"
    assert modality_of("chest", lung_crop + 900.0, volume=True) == "mr"  # no air-like values
    assert modality_of("chest", np.zeros((8, 8)), volume=False) == "radiograph"
    assert modality_of("breast", np.zeros((8, 8)), volume=False) == "ultrasound"
    assert modality_of("brain", np.zeros((4, 4, 4)), volume=True) == "mr"
    assert modality_of("colonoscopy", np.zeros((8, 8)), volume=False) == "endoscopy"


def test_ring_relative_words():
    rng = np.random.default_rng(0)
    ring = rng.normal(0.5, 0.05, 400)
    assert relative_words(rng.normal(0.3, 0.05, 100), ring, modality="mr",
                          dark_level=0.0) == ["hypointense"]
    assert relative_words(rng.normal(0.5, 0.05, 100), ring, modality="ct",
                          dark_level=0.0) == ["isodense"]
    assert relative_words(rng.normal(0.8, 0.2, 100), ring, modality="ultrasound",
                          dark_level=0.0) == ["hyperechoic", "heterogeneous"]
    assert relative_words(np.full(100, 0.01), ring, modality="ultrasound",
                          dark_level=0.02) == ["anechoic"]


def test_lung_ct_words_follow_attenuation():
    component = np.zeros((12, 12), bool)
    component[2:10, 2:10] = True
    solid = np.full((12, 12), 30.0)
    ground_glass = np.full((12, 12), -600.0)
    calcified = np.full((12, 12), 400.0)
    cavity = solid.copy()
    cavity[4:8, 4:8] = -1000.0
    assert lung_ct_words(solid, component) == ["solid"]
    assert lung_ct_words(ground_glass, component) == ["ground_glass"]
    assert lung_ct_words(calcified, component) == ["calcified"]
    assert lung_ct_words(cavity, component) == ["part_solid", "cavitary"]
