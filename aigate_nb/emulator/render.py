"""Drawing the emulator's pictures: deterministic, recognisable, and of the exact pixel size.

A generated picture is a gradient whose colours come from the prompt's hash, with the prompt's
words drawn large; an edit is its first source image, tinted and bannered with the edit's words.
A request's seed (other than 0) goes into that hash, so each seed gets colours of its own.
Both carry a small corner label. Everything is drawn at no more than about two megapixels and
scaled up, so a 4K or 12288x1536 picture stays cheap on a small machine. Letters the built-in
font lacks come from another font of the machine (``fonts.py``).
"""

from __future__ import annotations

import base64
import colorsys
import hashlib
import io
import math
from dataclasses import dataclass

from PIL import Image, ImageDraw, ImageFilter, ImageFont, ImageOps

from .fonts import Lettering

WORK_PIXELS = 2_200_000  # a 1K picture of any ratio is drawn at full scale
JPEG_QUALITY = 90
PNG_COMPRESS_LEVEL = 3  # low: speed matters more than a few hundred kilobytes here
MAX_DRAWN_CHARS = 240
_WHITE = (255, 255, 255)
_BLACK = (0, 0, 0)


@dataclass(frozen=True, eq=False)
class Artwork:
    """Everything that decides a picture's pixels."""

    width: int
    height: int
    mime: str
    prompt: str
    label: str
    sources: tuple[Image.Image, ...]  # decoded RGB inputs; the first is the base of an edit
    with_draft: bool  # also make the smaller "thought" draft
    seed: int = 0  # 0: the colours of the prompt alone


@dataclass(frozen=True)
class Rendered:
    """An encoded picture, base64 as replies carry it, and its optional draft."""

    mime: str
    width: int
    height: int
    data: str
    draft: str | None

    @property
    def nbytes(self) -> int:
        return len(self.data) + len(self.draft or "")


def render(art: Artwork) -> Rendered:
    """Draw, scale up and encode ``art``; the same artwork always gives the same bytes."""
    scale = min(1.0, math.sqrt(WORK_PIXELS / (art.width * art.height)))
    work_size = (max(1, round(art.width * scale)), max(1, round(art.height * scale)))
    digest = _colour_digest(art.prompt, art.seed)
    if art.sources:
        picture = _edited(art.sources, art.prompt, digest, work_size)
    else:
        picture = _generated(art.prompt, digest, work_size)
    _draw_label(picture, art.label)
    final = picture if picture.size == (art.width, art.height) else picture.resize(
        (art.width, art.height), Image.Resampling.BILINEAR
    )
    draft = _draft(picture, (art.width // 2, art.height // 2)) if art.with_draft else None
    return Rendered(
        mime=art.mime,
        width=art.width,
        height=art.height,
        data=_encode(final, art.mime),
        draft=_encode(draft, art.mime) if draft is not None else None,
    )


def prerendered(image: bytes) -> Rendered:
    """A picture encoded elsewhere (PNG, JPEG or WebP bytes), to be sent exactly as it is."""
    try:
        with Image.open(io.BytesIO(image)) as picture:
            mime = Image.MIME.get(picture.format or "")
            width, height = picture.size
    except OSError:
        mime = None
    if mime not in ("image/png", "image/jpeg", "image/webp"):
        raise ValueError(f"a fixed picture must be PNG, JPEG or WebP, not {mime or 'unknown data'}")
    return Rendered(mime, width, height, base64.b64encode(image).decode("ascii"), None)


def url_placeholder(url: str) -> Image.Image:
    """Stand-in for an image the emulator may not fetch (it never goes online): the URL, drawn."""
    picture = _background(hashlib.sha256(url.encode()).digest(), (1024, 768))
    _draw_centered(picture, _url_tokens(url), "", (40, 40, 984, 728))
    return picture


def _encode(picture: Image.Image, mime: str) -> str:
    buffer = io.BytesIO()
    if mime == "image/jpeg":
        picture.save(buffer, "JPEG", quality=JPEG_QUALITY)
    else:
        picture.save(buffer, "PNG", compress_level=PNG_COMPRESS_LEVEL)
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _colour(byte_hue: int, byte_shade: int, hue_shift: float = 0.0) -> tuple[int, int, int]:
    hue = (byte_hue / 256 + hue_shift) % 1.0
    saturation = 0.45 + (byte_shade % 64) / 160
    value = 0.55 + (byte_shade // 64) / 8
    return tuple(round(c * 255) for c in colorsys.hsv_to_rgb(hue, saturation, value))  # type: ignore[return-value]


def _background(digest: bytes, size: tuple[int, int]) -> Image.Image:
    """A rotated two-colour gradient with a few soft discs, all decided by ``digest``."""
    # Drawn tiny (long side 256) and scaled up: the upscale is what makes it smooth and cheap.
    small_scale = 256 / max(size)
    small = (max(2, round(size[0] * small_scale)), max(2, round(size[1] * small_scale)))
    side = math.ceil(math.hypot(*small)) + 2
    gradient = Image.linear_gradient("L").resize((side, side)).rotate(digest[6] * 360 / 256)
    left, top = (side - small[0]) // 2, (side - small[1]) // 2
    gradient = gradient.crop((left, top, left + small[0], top + small[1]))
    first = _colour(digest[0], digest[1])
    second = _colour(digest[0], digest[2], hue_shift=0.2 + digest[3] / 512)
    picture = ImageOps.colorize(gradient, first, second).convert("RGBA")
    overlay = Image.new("RGBA", small, (0, 0, 0, 0))
    draw = ImageDraw.Draw(overlay)
    for i in range(4):
        x, y = digest[8 + i] / 255 * small[0], digest[12 + i] / 255 * small[1]
        radius = (0.15 + digest[16 + i] / 640) * min(small) + 2
        colour = _colour(digest[20 + i], digest[24 + i], hue_shift=0.5)
        draw.ellipse((x - radius, y - radius, x + radius, y + radius), fill=colour + (90,))
    picture = Image.alpha_composite(picture, overlay).convert("RGB")
    # Soften the discs' stair-stepped edges before they are scaled up.
    return picture.filter(ImageFilter.GaussianBlur(1.2)).resize(size, Image.Resampling.BILINEAR)


def _colour_digest(prompt: str, seed: int) -> bytes:
    """What decides a picture's colours: the prompt, and the seed unless it is 0."""
    return hashlib.sha256(prompt.encode() + (f"\x1fseed {seed}".encode() if seed else b"")).digest()


def _generated(prompt: str, digest: bytes, size: tuple[int, int]) -> Image.Image:
    picture = _background(digest, size)
    width, height = size
    margin_x, margin_y = width * 0.07, height * 0.12
    box = (margin_x, margin_y, width - margin_x, height - margin_y)
    _draw_centered(picture, _words(prompt), " ", box)
    return picture


def _edited(
    sources: tuple[Image.Image, ...], prompt: str, digest: bytes, size: tuple[int, int]
) -> Image.Image:
    """The first source fitted to the output, tinted by the edit, bannered, with insets."""
    width, height = size
    picture = ImageOps.fit(sources[0], size, Image.Resampling.BILINEAR)
    picture = Image.blend(picture, Image.new("RGB", size, _colour(digest[0], digest[1])), 0.3)
    banner = (0, 0, width, max(12, round(height * 0.2)))
    _darken(picture, banner)
    inner = (width * 0.04, banner[3] * 0.1, width * 0.96, banner[3] * 0.9)
    _draw_centered(picture, _words(f"edit: {prompt}"), " ", inner)
    _draw_insets(picture, sources[1:])
    return picture


def _draw_insets(picture: Image.Image, insets: tuple[Image.Image, ...]) -> None:
    """The other input images as bordered thumbnails, along the bottom (or the right side)."""
    width, height = picture.size
    side = max(8, round(min(width, height) * 0.22))
    gap = max(2, side // 12)
    horizontal = width >= height
    for index, inset in enumerate(insets):
        offset = gap + index * (side + gap)
        x = width - offset - side if horizontal else width - gap - side
        y = round(height * 0.9) - side if horizontal else round(height * 0.9) - offset - side
        if x < 0 or y < 0:
            break  # no room left for more thumbnails
        thumb = ImageOps.fit(inset, (side, side), Image.Resampling.BILINEAR)
        ImageDraw.Draw(picture).rectangle((x - 2, y - 2, x + side + 1, y + side + 1), fill=_WHITE)
        picture.paste(thumb, (x, y))


def _draft(picture: Image.Image, size: tuple[int, int]) -> Image.Image:
    """A smaller, greyed version of the final picture, like an interim thought image."""
    draft = ImageOps.grayscale(picture.resize((max(1, size[0]), max(1, size[1])), Image.Resampling.BILINEAR))
    draft = draft.convert("RGB")
    _draw_centered(draft, ["draft"], " ", (0, draft.height * 0.4, draft.width, draft.height * 0.6))
    return draft


def _darken(picture: Image.Image, box: tuple[int, int, int, int]) -> None:
    region = picture.crop(box)
    picture.paste(Image.blend(region, Image.new("RGB", region.size, _BLACK), 0.55), box[:2])


def _draw_label(picture: Image.Image, label: str) -> None:
    """The small corner label, shrunk (and wrapped at its separators) to fit narrow pictures."""
    width, height = picture.size
    size = max(9, round(min(width, height) * 0.025))
    lettering, lines = _layout(label.split(" · "), " · ", size, width * 0.94)
    while len(lines) > 1 and size > 7:
        size -= 1
        lettering, lines = _layout(label.split(" · "), " · ", size, width * 0.94)
    text = "\n".join(lines)
    draw = ImageDraw.Draw(picture)
    left, top, right, bottom = _text_box(draw, lettering, (0, 0), text)
    pad = max(2, size // 3)
    box = (0, max(0, round(height - (bottom - top) - 2 * pad)), min(width, round(right + 2 * pad)), height)
    _darken(picture, box)
    _draw_text(draw, lettering, (pad, box[1] + pad - top), text, fill=_WHITE)


def _draw_centered(
    picture: Image.Image, tokens: list[str], joiner: str, box: tuple[float, float, float, float]
) -> None:
    """Draw the tokens as large as they fit in ``box``, wrapped, white with a dark outline."""
    if not tokens:
        return
    draw = ImageDraw.Draw(picture)
    centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)

    def styled(size: int) -> dict:
        lettering, lines = _layout(tokens, joiner, size, box[2] - box[0])
        return {
            "lettering": lettering,
            "xy": centre,
            "text": "\n".join(lines),
            "anchor": "mm",
            "align": "center",
            "spacing": size // 5,
            "stroke_width": max(1, size // 16),
        }

    low, high = 7, max(7, int(box[3] - box[1]))
    size = low
    while low <= high:  # binary search for the largest font size that fits
        middle = (low + high) // 2
        left, top, right, bottom = _text_box(draw, **styled(middle))
        if left >= box[0] and top >= box[1] and right <= box[2] and bottom <= box[3]:
            size, low = middle, middle + 1
        else:
            high = middle - 1
    _draw_text(draw, **styled(size), fill=_WHITE, stroke_fill=_BLACK)


def _layout(tokens: list[str], joiner: str, size: int, width: float) -> tuple[Lettering, list[str]]:
    """The lettering of this size and the tokens greedily wrapped into lines no wider than ``width``.

    A token wider than ``width`` on its own stays whole; the caller's fit check rejects the size.
    """
    lettering = Lettering(size)
    lines: list[str] = []
    current = ""
    for token in tokens:
        candidate = f"{current}{joiner}{token}" if current else token
        if current and lettering.getlength(candidate) > width:
            lines.append(current)
            current = token
        else:
            current = candidate
    lines.append(current)
    return lettering, lines


# Text the built-in font draws alone goes through Pillow's multiline text as it always did, so
# that its pixels never change; text with letters of other fonts is placed run by run, each run
# on one baseline shared by the line, with the same anchors ("la": top left, "mm": centred).


def _text_box(
    draw: ImageDraw.ImageDraw, lettering: Lettering, xy: tuple[float, float], text: str,
    anchor: str | None = None, align: str = "left", spacing: int = 4, stroke_width: int = 0,
) -> tuple[float, float, float, float]:
    if lettering.plain(text):
        return draw.multiline_textbbox(xy, text, font=lettering.font, anchor=anchor, align=align,
                                       spacing=spacing, stroke_width=stroke_width)
    boxes = []
    for x, y, font, piece in _placed_runs(lettering, xy, text, anchor, align, spacing, stroke_width):
        left, top, right, bottom = font.getbbox(piece, anchor="ls", stroke_width=stroke_width)
        boxes.append((left + x, top + y, right + x, bottom + y))
    return (min(b[0] for b in boxes), min(b[1] for b in boxes), max(b[2] for b in boxes), max(b[3] for b in boxes))


def _draw_text(
    draw: ImageDraw.ImageDraw, lettering: Lettering, xy: tuple[float, float], text: str,
    anchor: str | None = None, align: str = "left", spacing: int = 4, stroke_width: int = 0,
    fill: tuple[int, int, int] = _WHITE, stroke_fill: tuple[int, int, int] | None = None,
) -> None:
    if lettering.plain(text):
        draw.multiline_text(xy, text, font=lettering.font, anchor=anchor, align=align, spacing=spacing,
                            stroke_width=stroke_width, fill=fill, stroke_fill=stroke_fill)
        return
    placed = _placed_runs(lettering, xy, text, anchor, align, spacing, stroke_width)
    if stroke_width:  # every outline first, so that no run's outline covers its neighbour's letters
        for x, y, font, piece in placed:
            draw.text((x, y), piece, font=font, anchor="ls", fill=stroke_fill, stroke_width=stroke_width,
                      stroke_fill=stroke_fill)
    for x, y, font, piece in placed:
        draw.text((x, y), piece, font=font, anchor="ls", fill=fill)


def _placed_runs(
    lettering: Lettering, xy: tuple[float, float], text: str, anchor: str | None, align: str, spacing: int,
    stroke_width: int,
) -> list[tuple[float, float, ImageFont.FreeTypeFont, str]]:
    """Each run of each line with the point its baseline starts at (anchor "ls")."""
    anchor = anchor or "la"
    assert (anchor, align) in (("la", "left"), ("mm", "center")), "the only placements this module uses"
    lines = [lettering.runs(line) for line in text.split("\n")]
    fonts = [lettering.font] + [font for line in lines for font, _ in line]
    ascent = max(font.getmetrics()[0] for font in fonts)
    descent = max(font.getmetrics()[1] for font in fonts)
    line_spacing = ascent + stroke_width + spacing
    if anchor == "mm":
        baseline = xy[1] - (len(lines) - 1) * line_spacing / 2 + (ascent - descent) / 2
    else:
        baseline = xy[1] + ascent
    placed = []
    for runs in lines:
        width = sum(font.getlength(piece) for font, piece in runs)
        x = xy[0] - width / 2 if anchor == "mm" else xy[0]
        for font, piece in runs:
            placed.append((x, baseline, font, piece))
            x += font.getlength(piece)
        baseline += line_spacing
    return placed


def _words(text: str) -> list[str]:
    """The words of a prompt, cut short so that a long prompt is still drawn legibly."""
    if len(text) > MAX_DRAWN_CHARS:
        text = text[: MAX_DRAWN_CHARS - 1] + "…"
    return text.split()


def _url_tokens(url: str) -> list[str]:
    """A URL split after each '/', so that it wraps where a reader expects."""
    pieces = url.split("/")
    return ["image at "] + [piece + "/" for piece in pieces[:-1]] + [pieces[-1]]
