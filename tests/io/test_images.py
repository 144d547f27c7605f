"""``medseg_r.io.images``: the header size and the one foreground rule for mask images."""
import numpy as np
import pytest
from PIL import Image

from medseg_r.io.images import image_size, is_lossy, mask_foreground, read_image


def _disc(shape=(64, 80), centre=(30, 40), radius=12):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return (yy - centre[0]) ** 2 + (xx - centre[1]) ** 2 <= radius ** 2


def test_image_size_reads_the_header_as_height_width(tmp_path):
    Image.fromarray(np.zeros((64, 80), np.uint8)).save(tmp_path / "a.png")
    assert image_size(tmp_path / "a.png") == (64, 80) == read_image(tmp_path / "a.png").shape


def test_image_size_errors_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="not_there.png"):
        image_size(tmp_path / "not_there.png")
    (tmp_path / "notes.png").write_text("a text file with an image's ending")
    with pytest.raises(ValueError, match="notes.png is not a readable image"):
        image_size(tmp_path / "notes.png")


def test_is_lossy_only_for_jpeg_paths():
    assert is_lossy("a/b.JPG") and is_lossy("b.jpeg")
    assert not is_lossy("b.png") and not is_lossy(np.zeros((2, 2))) and not is_lossy(None)


@pytest.mark.parametrize("colour", [(255, 255, 255), (255, 0, 0), (0, 200, 0), (0, 0, 90)])
def test_a_colour_mask_marks_its_foreground_in_any_channel(colour):
    disc = _disc()
    rgb = np.zeros(disc.shape + (3,), np.uint8)
    rgb[disc] = colour
    assert np.array_equal(mask_foreground(rgb), disc)
    rgba = np.dstack([rgb, np.full(disc.shape, 255, np.uint8)])  # an opaque alpha is not foreground
    assert np.array_equal(mask_foreground(rgba), disc)


def test_a_jpeg_mask_is_cut_at_half_its_range_not_at_zero(tmp_path):
    disc = _disc()
    Image.fromarray(disc.astype(np.uint8) * 255).save(tmp_path / "m.jpg", quality=50)
    values = read_image(tmp_path / "m.jpg")
    assert (values > 0).sum() > disc.sum() * 1.05  # compression noise around the edge
    fg = mask_foreground(values, lossy=True)
    assert np.logical_xor(fg, disc).sum() <= 0.05 * disc.sum()
    assert not mask_foreground(np.zeros((8, 8), np.uint8), lossy=True).any()


def test_a_lossless_mask_keeps_every_value_above_zero_and_rejects_other_shapes():
    labels = np.zeros((6, 6), np.uint16)
    labels[1, 1], labels[4, 4] = 1, 700
    assert mask_foreground(labels).sum() == 2
    assert not mask_foreground(np.full((3, 3), np.nan)).any()
    with pytest.raises(ValueError, match="must be \\[H, W\\]"):
        mask_foreground(np.zeros((2, 3, 4, 5)))
