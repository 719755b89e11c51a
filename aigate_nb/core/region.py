"""Editing one region of an image: a box is cut out with some context around it, edited on
its own, and pasted back with a feathered seam, so that every pixel outside the box and
its padding stays exactly as it was.

Gemini image models take no mask, and asked to change one part they often redraw the whole
picture a little; compositing here is the only way to promise an unchanged rest. Two modes:
``crop`` (the default) sends only the padded box, scaled to a ratio and size the model
takes; ``guide`` sends the whole picture with the box outlined, for changes that need to
see all of it. Either way only the box (and the seam in the padding ring) is taken from
the answer. Pure functions over bytes; Pillow does every pixel operation.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .errors import InputError
from .images import MAX_INPUT_SIDE, ImageInput, ReplyImage, open_image
from .models import SQUARE_SIDES, keep_shape, size_for_pixels, spec_for

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

MODES = ("crop", "guide")
#: The shortest side of a box worth sending: a smaller one comes back as mush.
MIN_REGION_EDGE = 64
#: Context around the box, as a share of its longer side, and at least this many pixels.
PADDING_SHARE = 0.25
MIN_PADDING = 16
#: Colour of the outline that marks the box in ``guide`` mode, and the word that names it.
OUTLINE_COLOUR, OUTLINE_NAME = (255, 0, 0), "red"
_LOSSLESS = {"image/png": "PNG", "image/webp": "WEBP"}
_PNG_COMPRESS_LEVEL = 3  # a 4K composite is written in about a second; level 6 takes three times as long

Box = tuple[int, int, int, int]  # x, y, width, height, in the source's pixels


@dataclass(frozen=True)
class Region:
    """A box to edit, as asked for: ``x, y, width, height`` in the source's pixels, or, when
    all four are between 0 and 1, as fractions of its width and height; and the ``mode``."""

    values: tuple[float, float, float, float]
    mode: str = "crop"

    @property
    def fractions(self) -> bool:
        return all(0 <= value <= 1 for value in self.values)

    @classmethod
    def parse(cls, value: Any, mode: str | None = None) -> Region:
        """``"X,Y,W,H"``, a sequence of four numbers, or a ``Region``; raises ``InputError``."""
        mode = (mode or (value.mode if isinstance(value, Region) else "crop")).strip().lower()
        if mode not in MODES:
            raise InputError(f"region mode {mode!r} is not one of crop or guide; crop is the default.")
        if isinstance(value, Region):
            return cls(value.values, mode)
        words = re.split(r"[,\s]+", value.strip()) if isinstance(value, str) else value
        try:
            if isinstance(words, (str, bytes)) or len(words) != 4:
                raise ValueError
            numbers = tuple(float(word) for word in words)
            if not all(math.isfinite(number) for number in numbers):
                raise ValueError
        except (TypeError, ValueError):
            raise InputError(
                f"region {_shown(value)} is not X,Y,W,H; give four numbers, in pixels (120,80,400,300) "
                "or as fractions of the width and height (0.5,0.25,0.3,0.3)."
            ) from None
        if any(abs(number) > MAX_INPUT_SIDE for number in numbers):  # no box is outside every picture
            raise InputError(
                f"region {_shown(value)} reaches beyond any picture a model takes; each number is at most "
                f"{MAX_INPUT_SIDE:,} pixels, or a fraction from 0 to 1."
            )
        return cls(numbers, mode)  # type: ignore[arg-type]

    def edges_in(self, width: int, height: int) -> tuple[int, int, int, int]:
        """The box's left, top, right and bottom edges in the pixels of a ``width`` x ``height``
        source, as asked: not checked, and not clamped to the picture."""
        x, y, w, h = self.values
        if self.fractions:
            return round(x * width), round(y * height), round((x + w) * width), round((y + h) * height)
        return round(x), round(y), round(x + w), round(y + h)

    def box_in(self, width: int, height: int) -> Box:
        """The box in the pixels of a ``width`` x ``height`` source; ``InputError`` when it is not
        inside the picture or is too small to edit."""
        x, y, w, h = self.values
        left, top, right, bottom = self.edges_in(width, height)
        asked = _shown(self.values)
        if w <= 0 or h <= 0 or left < 0 or top < 0 or right > width or bottom > height:
            raise InputError(
                f"region {asked} is not inside the {width}x{height} picture; keep X+W <= {width} and "
                f"Y+H <= {height} (in pixels), or each fraction within 0 to 1."
            )
        if min(right - left, bottom - top) < MIN_REGION_EDGE:
            raise InputError(
                f"region {asked} is {right - left}x{bottom - top} pixels; a box under {MIN_REGION_EDGE} pixels "
                "on a side is too small for the model to edit; draw a larger one."
            )
        return left, top, right - left, bottom - top


@dataclass(frozen=True)
class RegionEdit:
    """One region edit, planned: what is sent in place of the source, and how the answer goes back.

    ``padded`` is the box with its context (the padding ring, clamped to the picture);
    ``crop`` the part of the source that is sent (in ``crop`` mode the padded box widened
    toward the model's ratio, in ``guide`` mode the whole picture), scaled to about the
    pixels of ``image_size`` and sent with ``aspect_ratio``/``image_size`` and the worded ``prompt``.
    ``source_shape`` is the ratio and size that describe the source (and so the result).
    """

    box: Box
    mode: str
    padding: int
    padded: Box
    crop: Box
    source: ImageInput
    image: ImageInput
    prompt: str
    aspect_ratio: str | None
    image_size: str | None
    source_shape: tuple[str | None, str | None]

    def record(self) -> dict[str, Any]:
        """What the history keeps, and the request hash includes."""
        return {"box": list(self.box), "mode": self.mode, "padding": self.padding, "crop": list(self.crop)}

    def composite(self, answer: ReplyImage) -> ReplyImage:
        """The source with the box taken from ``answer`` (resized back to the crop), blended
        across a seam inside the padding ring; every pixel outside ``padded`` is the source's.
        In the source's format where that is lossless (PNG, WebP); a JPEG's composite is a PNG,
        since writing JPEG again would change every pixel."""
        source = _working_copy(upright(open_image(self.source.payload)))
        edited = open_image(answer.data).convert(source.mode)
        cx, cy, cw, ch = self.crop
        if edited.size != (cw, ch):
            edited = edited.resize((cw, ch), resample=3)  # bicubic
        px, py, pw, ph = self.padded
        patch = edited.crop((px - cx, py - cy, px - cx + pw, py - cy + ph))
        source.paste(patch, (px, py), seam_mask(self.box, self.padded, self.padding))
        mime = self.source.mime if self.source.mime in _LOSSLESS else "image/png"
        buffer = io.BytesIO()
        if mime == "image/webp":
            source.save(buffer, "WEBP", lossless=True, quality=100)
        else:
            source.save(buffer, "PNG", compress_level=_PNG_COMPRESS_LEVEL)
        return ReplyImage(mime, buffer.getvalue())


def plan_region_edit(source: ImageInput, region: Region, model: str, prompt: str) -> RegionEdit:
    """Plan the edit of ``region`` of ``source`` with ``model``: the box, its padding, what is
    sent and at which ratio and size. Raises ``InputError`` before anything is sent."""
    if source.is_url:
        raise InputError(
            "A region edit needs the image's pixels, and a URL is fetched by the gateway; "
            "download the image and pass the file instead."
        )
    try:
        picture = upright(open_image(source.payload))
    except Exception as exc:  # noqa: BLE001 - Pillow raises many kinds; one line says what to do
        raise InputError(f"The image to edit cannot be decoded ({exc}); use PNG, JPEG or WebP.") from None
    width, height = picture.size
    box = region.box_in(width, height)
    padding = max(MIN_PADDING, round(max(box[2:]) * PADDING_SHARE))
    padded = clamp_box((box[0] - padding, box[1] - padding, box[2] + 2 * padding, box[3] + 2 * padding), width, height)
    if region.mode == "guide":
        crop = (0, 0, width, height)
        sent = _outlined(_working_copy(picture), padded)
    else:
        ratio = keep_shape(model, padded[2], padded[3])[0]
        crop = _widened(padded, ratio, width, height)
        sent = _working_copy(picture).crop((crop[0], crop[1], crop[0] + crop[2], crop[1] + crop[3]))
    ratio = keep_shape(model, crop[2], crop[3])[0]
    size = size_for_pixels(model, crop[2], crop[3])
    target = _sent_size(model, size, crop[2:])
    if sent.size != target:
        sent = sent.resize(target, resample=3, reducing_gap=2.0)
    buffer = io.BytesIO()
    sent.save(buffer, "PNG", compress_level=_PNG_COMPRESS_LEVEL)
    image = ImageInput("image/png", buffer.getvalue(), parent_id=source.parent_id, name=source.name)
    return RegionEdit(
        box=box,
        mode=region.mode,
        padding=padding,
        padded=padded,
        crop=crop,
        source=source,
        image=image,
        prompt=worded_prompt(prompt, region.mode),
        aspect_ratio=ratio,
        image_size=size,
        source_shape=keep_shape(model, width, height),
    )


def worded_prompt(prompt: str, mode: str) -> str:
    """The prompt as Google's guide to semantic masking words a change of one part only."""
    asked = prompt.strip().rstrip(".")
    keep = (
        "Keep everything else in the image exactly the same, preserving the original style, lighting, and composition"
    )
    if mode == "guide":
        return (
            f"Using the provided image, {asked}, only inside the area outlined by the {OUTLINE_NAME} rectangle. "
            f"{keep}, and do not draw the {OUTLINE_NAME} outline."
        )
    return (
        f"Using the provided image, {asked}. Change only what this asks for. {keep}; keep the framing and "
        "the edges as they are, since this image is a detail that goes back into a larger picture."
    )


def seam_mask(box: Box, padded: Box, padding: int) -> PILImage:
    """An ``L`` mask the size of ``padded``: 255 over the whole box, falling to 0 across a band
    of about half the ``padding`` around it, well inside the padding ring."""
    from PIL import Image, ImageChops, ImageDraw, ImageFilter

    px, py, pw, ph = padded
    x, y, w, h = box[0] - px, box[1] - py, box[2], box[3]
    feather = max(2, padding // 2)
    grow = feather // 2
    # A rectangle half a band larger, blurred: full strength at the box's edge, nothing a band
    # and a bit beyond it; the box itself is then made solid again.
    soft = Image.new("L", (pw, ph), 0)
    ImageDraw.Draw(soft).rectangle((x - grow, y - grow, x + w - 1 + grow, y + h - 1 + grow), fill=255)
    soft = soft.filter(ImageFilter.GaussianBlur(feather / 4))
    solid = Image.new("L", (pw, ph), 0)
    ImageDraw.Draw(solid).rectangle((x, y, x + w - 1, y + h - 1), fill=255)
    return ImageChops.lighter(soft, solid)


def region_label(record: dict[str, Any] | None) -> str | None:
    """``region 120,80,400,300 crop``: a kept region record, shortly, as written on the magic's line."""
    if not record:
        return None
    box = ",".join(str(value) for value in record.get("box", ()))
    return f"region {box} {record.get('mode', 'crop')}"


def upright(picture: PILImage) -> PILImage:
    """``picture`` as a viewer shows it, in 8 bits a channel: its EXIF orientation applied (a
    box is drawn on what is shown, and the composite, saved without the tag, must show the same
    way), and 16-bit greys scaled down, which Pillow's ``convert`` would clip to white."""
    from PIL import ImageOps

    picture = ImageOps.exif_transpose(picture)
    if picture.mode in ("I;16", "I;16B", "I;16L", "I"):
        picture = picture.point(lambda value: value / 256).convert("L")
    return picture


def _working_copy(picture: PILImage) -> PILImage:
    """The picture in RGB, or RGBA where it has transparency."""
    mode = "RGBA" if "A" in picture.getbands() or "transparency" in picture.info else "RGB"
    return picture.convert(mode) if picture.mode != mode else picture.copy()


def _outlined(picture: PILImage, padded: Box) -> PILImage:
    """``picture`` with the padded box's border drawn in the outline colour, inside the ring:
    the seam never reaches it, so the outline is never pasted back."""
    from PIL import ImageDraw

    x, y, w, h = padded
    thickness = max(2, round(min(picture.size) / 300))
    colour = OUTLINE_COLOUR + ((255,) if picture.mode == "RGBA" else ())
    ImageDraw.Draw(picture).rectangle((x, y, x + w - 1, y + h - 1), outline=colour, width=thickness)
    return picture


def clamp_box(box: Box, width: int, height: int) -> Box:
    """``box`` cut to a ``width`` x ``height`` picture; of zero width or height when it lies outside."""
    left, top = min(max(0, box[0]), width), min(max(0, box[1]), height)
    right, bottom = max(left, min(width, box[0] + box[2])), max(top, min(height, box[1] + box[3]))
    return left, top, right - left, bottom - top


def _widened(box: Box, ratio: str | None, width: int, height: int) -> Box:
    """``box`` grown (never shrunk) toward ``ratio``, as evenly on both sides as the picture allows."""
    if ratio is None:
        return box
    x, y, w, h = box
    target = _ratio_value(ratio)
    if w / h < target:
        grown = min(width, round(h * target))
        x = min(max(0, x - (grown - w) // 2), width - grown)
        w = grown
    else:
        grown = min(height, round(w / target))
        y = min(max(0, y - (grown - h) // 2), height - grown)
        h = grown
    return x, y, w, h


def _sent_size(model: str, size: str | None, crop: Sequence[int]) -> tuple[int, int]:
    """The pixels the crop is scaled to, keeping its proportions: about as many as ``model``
    draws at ``size`` (1K for a model that takes no size). Within a tenth, or for a model we
    do not know, the crop's own."""
    width, height = crop[0], crop[1]
    if spec_for(model) is None:
        return width, height
    scale = SQUARE_SIDES[size or "1K"] / math.sqrt(width * height)
    if abs(scale - 1) <= 0.1:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


def _ratio_value(ratio: str) -> float:
    width, height = ratio.split(":")
    return float(width) / float(height)


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return repr(value.strip())
    try:
        return ",".join(f"{number:g}" for number in value)
    except (TypeError, ValueError):
        return repr(value)
