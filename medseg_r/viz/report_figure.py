"""Pictures of a prediction: the overlay with the report's evidence coloured by prior type, and a
contact sheet of a volume's slices. Drawn with Pillow only (no display needed)."""
from __future__ import annotations

from typing import List, Optional, Sequence, Tuple

import numpy as np

from ..report.schema import Report
from ..io.images import to_rgb8
from .overlay import overlay

# RGB colours per prior type, matching the terminal colours of medseg_r.report.format.
SPAN_COLOURS = {"location": (70, 130, 255), "texture": (230, 190, 30), "shape": (220, 80, 220),
                "target": (60, 200, 90)}
TEXT = (235, 235, 235)
BACKGROUND = (24, 24, 28)


def _font(size: int):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1
        return ImageFont.load_default()


def _fit(rgb: np.ndarray, side: int):
    from PIL import Image

    img = Image.fromarray(rgb)
    scale = side / max(img.size)
    return img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                      Image.Resampling.NEAREST if scale > 1 else Image.Resampling.LANCZOS)


def heat(image: np.ndarray, attention: np.ndarray) -> np.ndarray:
    """The image in grey with the attention map as a blue (0) -> red (1) tint."""
    grey = to_rgb8(image).astype(np.float32)
    a = np.clip(np.asarray(attention, dtype=np.float32), 0, 1)[..., None]
    colour = np.concatenate([a, 1 - np.abs(2 * a - 1), 1 - a], axis=-1) * 255
    return np.clip(0.45 * grey + 0.55 * colour, 0, 255).astype(np.uint8)


def _report_pieces(report: Report) -> List[Tuple[str, Optional[str]]]:
    spans = sorted((s, e, kind) for f in report.findings for kind, ranges in f.spans.items() for s, e in ranges)
    pieces, pos = [], 0
    for start, end, kind in spans:
        if start < pos:
            continue
        pieces += [(report.text[pos:start], None), (report.text[start:end], kind)]
        pos = end
    pieces.append((report.text[pos:], None))
    return [(t, k) for t, k in pieces if t]


def _draw_text(draw, pieces, box_width: int, x0: int, y0: int, font, line_height: int, max_lines: int = 12) -> int:
    """Draw coloured word-wrapped pieces; returns the y below the last line."""
    x, y, lines = x0, y0, 1
    for text, kind in pieces:
        colour = SPAN_COLOURS.get(kind, TEXT)
        for word in text.replace("\n", " ").split(" ") if kind is None else [text]:
            token = word + (" " if kind is None else "")
            width = draw.textlength(token, font=font)
            if x + width > x0 + box_width and x > x0:
                x, y, lines = x0, y + line_height, lines + 1
                if lines > max_lines:
                    draw.text((x, y), "...", fill=TEXT, font=font)
                    return y + line_height
            draw.text((x, y), token, fill=colour, font=font)
            if kind is not None:
                draw.line((x, y + line_height - 3, x + width, y + line_height - 3), fill=colour, width=2)
            x += width
    return y + line_height


def _shrink(arrays, side: int):
    """Reduce very large inputs before drawing: images strided, masks by block maximum (keeps small lesions)."""
    image = arrays[0]
    k = max(1, max(image.shape[:2]) // (2 * side))
    if k == 1:
        return arrays
    from skimage.measure import block_reduce

    out = [image[::k, ::k]]
    for a in arrays[1:]:
        if a is None:
            out.append(None)
        elif a.dtype == bool:
            out.append(block_reduce(a, (k, k), np.max)[: out[0].shape[0], : out[0].shape[1]])
        else:
            out.append(a[::k, ::k])
    return out


def prediction_figure(image: np.ndarray, mask: np.ndarray, report: Report, *,
                      attention: Optional[np.ndarray] = None, truth: Optional[np.ndarray] = None,
                      title: str = "", side: int = 420) -> np.ndarray:
    """``[H', W', 3]`` uint8: overlay (mask red, reference green) | location attention, then the report
    with its location / texture / shape / target evidence coloured, and a legend."""
    from PIL import Image, ImageDraw

    image, mask, attention, truth = _shrink([np.asarray(image), np.asarray(mask, dtype=bool), attention,
                                             None if truth is None else np.asarray(truth, dtype=bool)], side)
    panels = [_fit(overlay(image, mask, truth=truth), side)]
    captions = ["prediction" + (" (green: reference)" if truth is not None else "")]
    if attention is not None:
        panels.append(_fit(heat(image, attention), side))
        captions.append("location attention (blue 0 -> red 1)")
    font, small = _font(16), _font(13)
    pad, text_h = 10, 24
    width = sum(p.width for p in panels) + pad * (len(panels) + 1)
    # room for the title, the captions, 12 report lines, the "..." of a longer report and the legend
    height = max(p.height for p in panels) + 30 + 28 + 14 * text_h + 40
    title_width = int(ImageDraw.Draw(Image.new("RGB", (1, 1))).textlength(title, font=font)) + 2 * pad
    canvas = Image.new("RGB", (max(width, 640, title_width), height), BACKGROUND)  # the title uncut
    draw = ImageDraw.Draw(canvas)
    draw.text((pad, 6), title, fill=TEXT, font=font)
    x = pad
    for panel, caption in zip(panels, captions):
        canvas.paste(panel, (x, 30))
        draw.text((x, 34 + panel.height), caption, fill=TEXT, font=small)
        x += panel.width + pad
    y = 30 + max(p.height for p in panels) + 28
    y = _draw_text(draw, _report_pieces(report), canvas.width - 2 * pad, pad, y, font, text_h)
    x = pad
    for kind, colour in SPAN_COLOURS.items():
        draw.rectangle((x, y + 8, x + 12, y + 20), fill=colour)
        draw.text((x + 18, y + 6), kind, fill=TEXT, font=small)
        x += 30 + int(draw.textlength(kind, font=small))
    return np.asarray(canvas.crop((0, 0, canvas.width, min(canvas.height, y + 34))))


def contact_sheet(slices: Sequence[np.ndarray], masks: Sequence[np.ndarray], labels: Sequence[str], *,
                  columns: int = 6, tile: int = 160) -> np.ndarray:
    """A grid of slice overlays (mask in red), each labelled (e.g. ``"z=12  3.1 %"``)."""
    from PIL import Image, ImageDraw

    if not slices:
        raise ValueError("no slices for the contact sheet")
    columns = max(1, min(columns, len(slices)))
    rows = -(-len(slices) // columns)
    font = _font(12)
    sheet = Image.new("RGB", (columns * tile, rows * (tile + 16)), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for i, (image, mask, label) in enumerate(zip(slices, masks, labels)):
        r, c = divmod(i, columns)
        panel = _fit(overlay(image, mask), tile)
        sheet.paste(panel, (c * tile + (tile - panel.width) // 2, r * (tile + 16)))
        draw.text((c * tile + 4, r * (tile + 16) + tile + 1), label, fill=TEXT, font=font)
    return np.asarray(sheet)
