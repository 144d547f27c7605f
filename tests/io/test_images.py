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


def _png(path, values, *, greyscale, alpha):
    import png

    height, width = values.shape[:2]
    writer = png.Writer(width, height, greyscale=greyscale, alpha=alpha, bitdepth=16)
    with open(path, "wb") as f:
        writer.write(f, values.reshape(height, -1))


@pytest.mark.parametrize("planes", [3, 4])
def test_a_16_bit_colour_png_keeps_its_16_bits(tmp_path, planes):
    # PIL reads such a file as 8-bit RGB (the high byte): values 1000-1255 would all become 3 or 4
    rng = np.random.default_rng(0)
    values = rng.integers(1000, 1256, size=(12, 17, planes)).astype(np.uint16)
    _png(tmp_path / "c.png", values, greyscale=False, alpha=planes == 4)
    got = read_image(tmp_path / "c.png")
    assert got.dtype == np.uint16 and np.array_equal(got, values[..., :3])


def test_a_16_bit_grey_and_alpha_png_reads_as_grey(tmp_path):
    values = np.dstack([np.arange(60, dtype=np.uint16).reshape(6, 10) * 1000,
                        np.full((6, 10), 65535, np.uint16)])
    _png(tmp_path / "g.png", values, greyscale=True, alpha=True)
    assert np.array_equal(read_image(tmp_path / "g.png"), values[..., 0])


def test_a_16_bit_colour_mask_marks_its_foreground(tmp_path):
    disc = _disc()
    values = np.zeros(disc.shape + (3,), np.uint16)
    values[disc, 1] = 1  # a 0/1 label in one channel: below the high byte PIL would keep
    _png(tmp_path / "m.png", values, greyscale=False, alpha=False)
    assert np.array_equal(mask_foreground(read_image(tmp_path / "m.png")), disc)


@pytest.mark.parametrize("planar, compression, pages", [
    (False, None, 1), (True, None, 1), (False, "lzw", 1), (True, "zlib", 1), (False, None, 2)])
def test_a_16_bit_colour_tiff_keeps_its_16_bits(tmp_path, planar, compression, pages):
    import tifffile

    # four pixels wide: a planar file's samples-first array [3, 9, 4] must not be taken for [H, W, C]
    values = np.random.default_rng(1).integers(0, 65536, size=(9, 4, 3)).astype(np.uint16)
    stored = np.moveaxis(values, -1, 0) if planar else values
    if pages > 1:
        stored = np.stack([stored] + [stored // 2] * (pages - 1))
    tifffile.imwrite(tmp_path / "c.tif", stored, photometric="rgb",
                     planarconfig="separate" if planar else "contig", compression=compression)
    got = read_image(tmp_path / "c.tif")
    assert got.dtype == np.uint16 and np.array_equal(got, values)  # the first page


def test_a_damaged_16_bit_colour_png_is_a_clear_error(tmp_path):
    values = np.full((40, 40, 3), 1000, np.uint16)
    _png(tmp_path / "c.png", values, greyscale=False, alpha=False)
    data = (tmp_path / "c.png").read_bytes()
    (tmp_path / "c.png").write_bytes(data[:60])  # the header, a cut-off image data chunk
    with pytest.raises(ValueError, match="c.png"):
        read_image(tmp_path / "c.png")


def test_a_16_bit_colour_png_with_damaged_image_data_is_a_clear_error(tmp_path):
    import struct
    import zlib

    values = np.random.default_rng(2).integers(0, 65536, size=(32, 32, 3)).astype(np.uint16)
    _png(tmp_path / "c.png", values, greyscale=False, alpha=False)
    data = bytearray((tmp_path / "c.png").read_bytes())
    at = data.index(b"IDAT")
    length = struct.unpack(">I", data[at - 4:at])[0]
    data[at + 40:at + 100] = b"\xff" * 60  # inside the compressed stream, with a valid chunk CRC
    data[at + 4 + length:at + 8 + length] = struct.pack(">I", zlib.crc32(bytes(data[at:at + 4 + length])))
    (tmp_path / "c.png").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="c.png could not be decoded"):
        read_image(tmp_path / "c.png")


def test_a_palette_mask_is_read_by_its_indices_and_an_alpha_drawn_mask_by_its_alpha(tmp_path):
    from PIL import Image

    from medseg_r.io.images import mask_foreground, read_mask

    lesion = np.zeros((20, 20), np.uint8)
    lesion[5:9, 5:9] = 1
    palette = Image.fromarray(lesion, "P")
    palette.putpalette([255, 255, 255, 255, 0, 0] + [0] * 762)  # a white background, a red lesion
    palette.save(tmp_path / "palette.png")
    drawn = np.full((20, 20, 4), 255, np.uint8)  # white everywhere, the lesion only in alpha
    drawn[..., 3] = lesion * 255
    Image.fromarray(drawn, "RGBA").save(tmp_path / "alpha.png")
    red = np.zeros((20, 20, 4), np.uint8)  # a red lesion on an opaque black image: by colour
    red[..., 3], red[..., 0] = 255, lesion * 255
    Image.fromarray(red, "RGBA").save(tmp_path / "red.png")
    soft = drawn.copy()  # an alpha mask with soft edges is one mask
    soft[5, 5:9, 3], soft[8, 5:9, 3] = 128, 64
    Image.fromarray(soft, "RGBA").save(tmp_path / "soft.png")
    assert set(np.unique(read_mask(tmp_path / "soft.png"))) == {0, 255}
    # quantising a black-and-white mask may put white (the lesion) at index 0: read by colour
    white = np.dstack([lesion * 255] * 3).astype(np.uint8)
    Image.fromarray(white).quantize(2).save(tmp_path / "quantized.png")
    Image.fromarray(white).convert("P", palette=Image.Palette.ADAPTIVE, colors=2).save(
        tmp_path / "adaptive.png")
    for name in ("palette.png", "alpha.png", "red.png", "soft.png", "quantized.png", "adaptive.png"):
        assert np.array_equal(mask_foreground(read_mask(tmp_path / name)), lesion > 0), name


def test_a_16_bit_image_with_a_hot_pixel_keeps_its_contrast():
    # one pixel at 65535 (a burnt-in marker) compressed a 12-bit radiograph into the darkest 6 % of
    # [0, 1] under a min-max stretch: Dice 0.92 -> 0.00 in evaluate and predict
    from medseg_r.io.images import to_unit_float

    rng = np.random.default_rng(0)
    image = rng.integers(500, 3500, size=(64, 64)).astype(np.uint16)
    marked = image.copy()
    marked[0, 0] = 65535
    plain, hot = to_unit_float(image)[..., 0], to_unit_float(marked)[..., 0]
    assert hot.min() == 0.0 and hot.max() == 1.0 and np.ptp(hot[1:]) > 0.95
    assert np.abs(hot[1:] - plain[1:]).max() < 0.02  # the marker changes nothing else
    assert np.array_equal(to_unit_float(np.uint8([[0, 255]])), [[[0, 0, 0], [1, 1, 1]]])  # 8-bit as is
    flat = np.zeros((8, 8), np.uint16)
    flat[0, 0] = 9  # most pixels one value: the full range, not a constant zero image
    assert to_unit_float(flat)[0, 0, 0] == 1.0
