"""The pictures the benchmarks send and receive: photo-like noise that compresses as badly as
a photo does, so that a 4K PNG reply weighs what a real one weighs (about 32 MB) and a 4K
JPEG about 6-7 MB. Deterministic: the same settings always give the same bytes.
"""

from __future__ import annotations

import io
import random
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageChops

#: 16:9 pixel sizes of gemini-3.1-flash-image-preview for each size tier (reference facts, 1.4).
TIERS = {"512": (688, 384), "1K": (1376, 768), "2K": (2752, 1536), "4K": (5504, 3072)}
#: Grain (the spread of the noise, 0-255) that gives each format a photo's file size at 4K.
PNG_GRAIN = 20  # ~32 MB
JPEG_GRAIN = 50  # ~6.7 MB at quality 90
JPEG_QUALITY = 90
FORMATS = {"PNG": ("image/png", PNG_GRAIN), "JPEG": ("image/jpeg", JPEG_GRAIN)}


@dataclass(frozen=True)
class Payload:
    """One picture served by the emulator for one prompt."""

    tier: str
    format: str
    mime: str
    size: tuple[int, int]
    path: Path

    @property
    def prompt(self) -> str:
        return f"benchmark {self.tier} {self.format}"

    @property
    def name(self) -> str:
        return f"{self.tier} {self.format}"

    def read(self) -> bytes:
        return self.path.read_bytes()


def photo_like(size: tuple[int, int], grain: int, seed: int = 1) -> Image.Image:
    """Smooth colour gradients under uniform noise of ``grain`` levels, like a photo's detail."""
    width, height = size
    gradients = [Image.linear_gradient("L").rotate(angle).resize(size) for angle in (0, 90, 180)]
    base = Image.merge("RGB", gradients)
    levels = [value * grain // 256 for value in range(256)] * 3
    noise = Image.frombytes("RGB", size, random.Random(seed).randbytes(width * height * 3)).point(levels)
    return ImageChops.add(base, noise, 1, -(grain // 2))


def encode(image: Image.Image, format: str) -> bytes:
    buffer = io.BytesIO()
    if format == "JPEG":
        image.save(buffer, "JPEG", quality=JPEG_QUALITY)
    else:
        image.save(buffer, "PNG")
    return buffer.getvalue()


def make_payloads(tiers: list[str], folder: Path) -> list[Payload]:
    """Each tier in PNG and JPEG, written to ``folder``."""
    payloads = []
    for tier in tiers:
        for format, (mime, grain) in FORMATS.items():
            size = TIERS[tier]
            path = folder / f"{tier}-{format.lower()}.{'jpg' if format == 'JPEG' else 'png'}"
            path.write_bytes(encode(photo_like(size, grain), format))
            payloads.append(Payload(tier, format, mime, size, path))
    return payloads


def make_photo(size: tuple[int, int], format: str, folder: Path) -> Path:
    """A camera-like photo (JPEG, or the same pixels as PNG) to send as an edit source."""
    path = folder / f"photo-{size[0]}x{size[1]}.{'jpg' if format == 'JPEG' else 'png'}"
    path.write_bytes(encode(photo_like(size, JPEG_GRAIN, seed=2), format))
    return path
