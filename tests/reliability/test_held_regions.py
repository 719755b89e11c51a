"""22 odd region boxes on 11 kinds of source image: each box either edits the picture with
every pixel outside its padded box as the source's, or is refused in one line before
anything is sent; nothing else escapes. Boxes: empty, negative, NaN, infinite, past the
edges, fractions over 1, one pixel, 63 and 64 pixels, the whole picture, text forms.
Sources: 1x1, very wide, very tall, palette PNG with transparency, RGBA, LA, CMYK JPEG,
16-bit PNG, animated GIF, WebP, EXIF-rotated JPEG. Against the emulator over loopback;
all 242 are asked at once, a few at a time, then checked one by one.
"""

from __future__ import annotations

import io
import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
from PIL import Image, ImageChops, ImageOps

from aigate_nb.core.errors import InputError
from aigate_nb.gateway.client import Client
from support import TEST_KEY


def encoded(picture: Image.Image, **options) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, **options)
    return buffer.getvalue()


def colourful(width: int, height: int) -> Image.Image:
    ramp = Image.linear_gradient("L").resize((width, height))
    return Image.merge("RGB", (ramp, ramp.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
                               ramp.transpose(Image.Transpose.FLIP_TOP_BOTTOM)))


def sources() -> dict[str, bytes]:
    base = colourful(320, 240)
    ramp = base.getchannel(0)
    palette = base.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    rgba = base.copy()
    rgba.putalpha(ramp)
    la = ramp.convert("LA")
    la.putalpha(ramp.transpose(Image.Transpose.FLIP_LEFT_RIGHT))
    deep = Image.frombytes("I;16", (320, 240), bytes((n * 7) % 256 for n in range(320 * 240 * 2)))
    frames = [base, base.rotate(90), base.rotate(180)]
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: shown turned a quarter clockwise
    return {
        "1x1": encoded(Image.new("RGB", (1, 1), "red"), format="PNG"),
        "very-wide": encoded(colourful(1600, 80), format="PNG"),
        "very-tall": encoded(colourful(80, 1600), format="PNG"),
        "palette": encoded(palette, format="PNG", transparency=0),
        "rgba": encoded(rgba, format="PNG"),
        "la": encoded(la, format="PNG"),
        "cmyk-jpeg": encoded(base.convert("CMYK"), format="JPEG", quality=95),
        "16-bit": encoded(deep, format="PNG"),
        "animated-gif": encoded(frames[0], format="GIF", save_all=True, append_images=frames[1:], duration=100),
        "webp": encoded(base, format="WEBP", quality=90),
        "exif-rotated-jpeg": encoded(base, format="JPEG", quality=95, exif=exif.tobytes()),
    }


BOXES = {
    "zero-size": (0, 0, 0, 0),
    "zero-width": (10, 10, 0, 100),
    "negative-width": (100, 50, -80, 80),
    "negative-origin": (-10, 10, 100, 100),
    "negative-zero-fraction": (-0.0, 0.0, 0.5, 0.5),
    "fraction-over-one": (0.5, 0.5, 1.5, 0.5),
    "fractions-past-the-edge": (0.8, 0.1, 0.4, 0.4),
    "pixels-past-the-right": (300, 10, 100, 100),
    "pixels-past-the-bottom": (10, 200, 100, 100),
    "nan": (math.nan, 0, 100, 100),
    "infinite": (0, 0, math.inf, 100),
    "huge": (0, 0, 1e30, 1e30),
    "one-pixel": (10, 10, 1, 1),
    "one-pixel-in-fractions": (0.5, 0.5, 0.003, 0.003),
    "63-pixels": (10, 10, 63, 63),
    "64-pixels": (10, 10, 64, 64),
    "whole-picture": (0, 0, 1, 1),
    "centre-quarter": (0.25, 0.25, 0.5, 0.5),
    "text": "10, 10, 100, 64",
    "fractional-pixels": (10.4, 10.6, 100.5, 64.5),
    "three-numbers": "10,10,100",
    "words": "left,top,width,height",
}

@dataclass
class Outcome:
    result: object = None
    refusal: str | None = None
    other: BaseException | None = None
    sent: int = 0


def ask(client: Client, emulator, n: int, source: bytes, box) -> Outcome:
    tag = f"give it a small moon #{n}#"
    try:
        result = client.generate(tag, images=source, region=box)
    except InputError as exc:
        return Outcome(refusal=str(exc), sent=len(emulator.attempts(tag)))
    except Exception as exc:  # noqa: BLE001 - anything else is what the test reports
        return Outcome(other=exc, sent=len(emulator.attempts(tag)))
    return Outcome(result=result, sent=len(emulator.attempts(tag)))


@pytest.fixture(scope="module")
def source_bytes() -> dict[str, bytes]:
    return sources()


@pytest.fixture(scope="module")
def outcomes(emulator, source_bytes) -> dict[tuple[str, str], Outcome]:
    pairs = [(source, box) for source in source_bytes for box in BOXES]
    with Client(api_key=TEST_KEY, base_url=emulator.url, retry_backoff=0.01, timeout=(5, 60)) as client:
        with ThreadPoolExecutor(max_workers=4) as pool:
            done = pool.map(lambda k: ask(client, emulator, k, source_bytes[pairs[k][0]], BOXES[pairs[k][1]]),
                            range(len(pairs)))
            return dict(zip(pairs, done))


def reference(data: bytes) -> Image.Image:
    """The source's first frame as 8-bit pixels: what the edit must keep outside its box."""
    picture = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
    if picture.mode in ("I;16", "I;16B", "I"):
        return picture.point(lambda value: value / 256).convert("L").convert("RGB")
    if "A" in picture.getbands() or "transparency" in picture.info:
        return picture.convert("RGBA")
    return picture.convert("RGB")


def outside_unchanged(before: Image.Image, after: Image.Image, padded: tuple[int, int, int, int]) -> bool:
    x, y, w, h = padded
    hole = Image.new("L", before.size, 255)
    hole.paste(0, (x, y, x + w, y + h))
    blank = Image.new(before.mode, before.size)
    return ImageChops.difference(Image.composite(before, blank, hole),
                                 Image.composite(after.convert(before.mode), blank, hole)).getbbox() is None


def padded_box(region: dict, size: tuple[int, int]) -> tuple[int, int, int, int]:
    x, y, w, h = region["box"]
    p = region["padding"]
    left, top = max(0, x - p), max(0, y - p)
    return left, top, min(size[0], x + w + p) - left, min(size[1], y + h + p) - top


def cases():
    for source in sources():
        for box in BOXES:
            yield pytest.param(source, box, id=f"{source}-{box}")


@pytest.mark.parametrize("source, box", list(cases()))
def test_an_odd_box_edits_only_inside_its_padding_or_is_refused_in_one_line_before_sending(
        outcomes, source_bytes, source, box):
    outcome = outcomes[source, box]
    assert outcome.other is None, f"not a package error: {outcome.other!r}"
    if outcome.refusal is not None:
        assert "\n" not in outcome.refusal and outcome.refusal.startswith("region "), outcome.refusal
        assert outcome.sent == 0
        return
    before = reference(source_bytes[source])
    after = outcome.result.image
    assert outcome.sent == 1 and after.size == before.size
    assert outside_unchanged(before, after, padded_box(outcome.result.region, before.size))


def test_the_odd_boxes_are_refused_and_the_plain_ones_edit(outcomes):
    """Which way each box goes on an ordinary picture, so that neither way hides the other."""
    edited = {box for box in BOXES if outcomes["rgba", box].result is not None}
    assert edited == {"negative-zero-fraction", "64-pixels", "whole-picture", "centre-quarter", "text",
                      "fractional-pixels"}
    assert not [box for box in BOXES if outcomes["1x1", box].result is not None]


def test_an_exif_rotated_photo_is_edited_and_shown_the_way_it_is_shown(outcomes, source_bytes):
    source = ImageOps.exif_transpose(Image.open(io.BytesIO(source_bytes["exif-rotated-jpeg"])))
    result = outcomes["exif-rotated-jpeg", "whole-picture"].result
    assert ImageOps.exif_transpose(result.image).size == source.size == (240, 320)
