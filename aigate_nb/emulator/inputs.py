"""Input images of a request: decoded once, checked, and summarised for the request records."""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass

from PIL import Image

from .errors import ApiError
from .render import url_placeholder

# Inputs are only ever drawn at working scale, so keeping them at this bound saves memory.
KEEP_LONG_SIDE = 2048


@dataclass(frozen=True)
class ImageSummary:
    """What the emulator received as one input image (``url`` set, the rest None, if not inline)."""

    sha256: str | None
    mime: str | None
    bytes: int | None
    width: int | None
    height: int | None
    url: str | None = None


@dataclass(frozen=True, eq=False)
class SourceImage:
    """A decoded input image, reduced to drawing size, with its summary."""

    summary: ImageSummary
    picture: Image.Image

    @property
    def key(self) -> str:
        """What identifies this input in a cache key."""
        return self.summary.sha256 or f"url:{self.summary.url}"


def decode_image(data: bytes, mime: str, where: str) -> SourceImage:
    """Decode inline image bytes, or raise the 400 that a model's undecodable input gets."""
    try:
        with Image.open(io.BytesIO(data)) as opened:
            size = opened.size
            # JPEG can decode straight to a reduced size, which makes big inputs cheap.
            opened.draft("RGB", (KEEP_LONG_SIDE, KEEP_LONG_SIDE))
            opened.load()
            picture = opened.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError, SyntaxError) as exc:
        raise ApiError(
            400,
            f"Unable to process input image: {where} ({mime}, {len(data)} bytes) is not a decodable "
            f"image ({exc.__class__.__name__}). Send PNG, JPEG, WebP, HEIC or HEIF bytes.",
            param=where,
            code="invalid_image",
        ) from None
    picture.thumbnail((KEEP_LONG_SIDE, KEEP_LONG_SIDE), Image.Resampling.BILINEAR)
    summary = ImageSummary(hashlib.sha256(data).hexdigest(), mime, len(data), size[0], size[1])
    return SourceImage(summary, picture)


def image_from_url(url: str) -> SourceImage:
    """An http(s) input: never fetched (the emulator makes no outbound requests), drawn instead."""
    return SourceImage(ImageSummary(None, None, None, None, None, url=url), url_placeholder(url))
