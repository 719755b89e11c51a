"""Everything about image bytes: what may be passed as an image, data URLs,
base64, previews for display and the inline budget for uploads.

Pillow does every pixel operation; bytes that need no change pass untouched.
"""

from __future__ import annotations

import binascii
import io
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from .errors import InputError, ResponseError

try:  # SIMD base64: tens of times faster on multi-megabyte 4K replies.
    import pybase64 as _b64
except ImportError:  # pragma: no cover - exercised where pybase64 is absent
    _b64 = None

#: Input formats the Gemini image models take as they are.
ACCEPTED_INPUT_MIME = ("image/png", "image/jpeg", "image/webp", "image/heic", "image/heif")

#: Safe total of inline image data in one request; the Gemini API's long-standing
#: inline limit is 20 MB for the whole request.
DEFAULT_INLINE_BUDGET = 18_000_000

_EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "image/heic": ".heic",
    "image/heif": ".heif",
}


@runtime_checkable
class ImageLike(Protocol):
    """An object that can hand over its original image bytes (results, history entries)."""

    def _aigate_image_bytes(self) -> tuple[str, bytes]: ...


@dataclass(frozen=True)
class ImageInput:
    """One input image, ready for a request: inline bytes, or a URL the gateway fetches.

    ``parent_id`` names the history entry it came from, when it came from one.
    """

    mime: str | None
    data: bytes | None
    url: str | None = None
    parent_id: str | None = None

    @property
    def is_url(self) -> bool:
        return self.url is not None


def b64decode(text: str | bytes) -> bytes:
    """Strict base64 decoding; corrupt data raises ``ResponseError``."""
    try:
        if _b64 is not None:
            return _b64.b64decode(text, validate=True)
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise ResponseError(
            "The gateway sent image data that is not valid base64; run the request again."
        ) from exc


def b64encode(data: bytes) -> str:
    if _b64 is not None:
        return _b64.b64encode_as_string(data)
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def sniff_mime(data: bytes) -> str | None:
    """The image MIME type from the file's first bytes, or None."""
    head = data[:16]
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if head[4:8] == b"ftyp" and head[8:12] in (b"heic", b"heix", b"mif1", b"msf1", b"heim", b"heis"):
        return "image/heif" if head[8:12] in (b"mif1", b"msf1") else "image/heic"
    if head.startswith(b"BM"):
        return "image/bmp"
    if head[:4] in (b"II*\x00", b"MM\x00*"):
        return "image/tiff"
    return None


def extension_for(mime: str) -> str:
    return _EXTENSIONS.get(mime, ".png")


def decode_data_url(url: str) -> tuple[str, bytes]:
    """``data:image/png;base64,...`` -> ``("image/png", bytes)``."""
    header, sep, payload = url.partition(",")
    if not sep or not header.startswith("data:") or not header.endswith(";base64"):
        raise ResponseError("An image data URL is malformed; run the request again.")
    return header[5:-7] or "image/png", b64decode(payload)


def encode_data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{b64encode(data)}"


def open_image(data: bytes):
    """Decode bytes with Pillow (loaded on first use)."""
    from PIL import Image

    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def to_image_input(source: Any) -> ImageInput:
    """Turn anything image-like into an ``ImageInput``, or say what was wrong.

    Accepted: an ``ImageResult`` or history entry, a ``PIL.Image.Image``,
    ``bytes``, a path (``str`` or ``Path``), an ``http(s)://`` URL (left for
    the gateway to fetch) or a ``data:`` URL.
    """
    if isinstance(source, ImageLike):
        mime, data = source._aigate_image_bytes()
        return ImageInput(mime, data, parent_id=getattr(source, "id", None))
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        return ImageInput(_require_image_mime(data, "the bytes given"), data)
    if isinstance(source, str) and source.startswith(("http://", "https://")):
        return ImageInput(None, None, url=source)
    if isinstance(source, str) and source.startswith("data:"):
        try:
            mime, data = decode_data_url(source)
        except ResponseError:
            raise InputError("That data URL is not a base64 image; expected data:image/...;base64,...") from None
        return ImageInput(_require_image_mime(data, "the data URL"), data)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        if not path.is_file():
            raise InputError(f"No image file at '{path}'; check the path (relative paths start at {Path.cwd()}).")
        data = path.read_bytes()
        return ImageInput(_require_image_mime(data, f"'{path}'"), data)
    if _is_pil_image(source):
        return ImageInput(*_encode_pil(source))
    raise InputError(
        f"Cannot use a {type(source).__name__} as an image; pass a file path, a URL, bytes, "
        "a PIL image, a result or a history entry."
    )


def _is_pil_image(obj: Any) -> bool:
    pil = __import__("sys").modules.get("PIL.Image")
    return pil is not None and isinstance(obj, pil.Image)


def _require_image_mime(data: bytes, what: str) -> str:
    mime = sniff_mime(data)
    if mime is None:
        raise InputError(f"{what} is not an image Pillow or the model can read; use PNG, JPEG or WebP.")
    return mime


def _encode_pil(image) -> tuple[str, bytes]:
    """A PIL image goes as lossless PNG; modes PNG cannot hold become RGB(A)."""
    if image.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return "image/png", buf.getvalue()


def _has_alpha(image) -> bool:
    if image.mode in ("RGBA", "LA", "PA"):
        return image.getextrema()[-1][0] < 255
    return image.mode == "P" and "transparency" in image.info


def fit_inline_budget(inputs: list[ImageInput], budget: int = DEFAULT_INLINE_BUDGET) -> list[ImageInput]:
    """Make inline images fit ``budget`` bytes in all (as base64), and in a format the model reads.

    Images already within their share and in an accepted format pass
    untouched, so an edit sends the original bytes whenever it can. Others are
    re-encoded (JPEG q90, PNG where transparency matters) and, if still too
    large, downscaled step by step.
    """
    inline = [item for item in inputs if not item.is_url]
    if not inline:
        return inputs
    share = budget // len(inline)
    out = []
    for item in inputs:
        if item.is_url or (_b64_size(item.data) <= share and item.mime in ACCEPTED_INPUT_MIME):
            out.append(item)
            continue
        mime, data = _shrink(item.data, share)
        out.append(ImageInput(mime, data, parent_id=item.parent_id))
    return out


def _b64_size(data: bytes) -> int:
    return (len(data) + 2) // 3 * 4


def _shrink(data: bytes, share: int) -> tuple[str, bytes]:
    try:
        image = open_image(data)
    except Exception as exc:
        raise InputError(f"An input image cannot be decoded ({exc}); use PNG, JPEG or WebP.") from None
    alpha = _has_alpha(image)
    if not alpha and image.mode != "RGB":
        image = image.convert("RGB")
    long_edge = max(image.size)
    while True:
        buf = io.BytesIO()
        if alpha:
            image.save(buf, format="PNG", optimize=False)
            mime = "image/png"
        else:
            image.save(buf, format="JPEG", quality=90)
            mime = "image/jpeg"
        encoded = buf.getvalue()
        if _b64_size(encoded) <= share or long_edge <= 256:
            return mime, encoded
        long_edge = int(long_edge * 0.75)
        image = image.copy()
        image.thumbnail((long_edge, long_edge))


def make_preview(data: bytes, long_edge: int = 1024) -> tuple[str, bytes, tuple[int, int]]:
    """A small copy for inline display: JPEG, or PNG where transparency matters.

    Returns ``(mime, bytes, (width, height))`` of the preview.
    """
    image = open_image(data)
    image.draft("RGB", (long_edge, long_edge))  # JPEG: decode at a reduced scale, much faster
    alpha = _has_alpha(image)
    image = image.convert("RGBA" if alpha else "RGB")
    if max(image.size) > long_edge:
        image.thumbnail((long_edge, long_edge))
    buf = io.BytesIO()
    if alpha:
        image.save(buf, format="PNG", optimize=True)
        return "image/png", buf.getvalue(), image.size
    image.save(buf, format="JPEG", quality=85, optimize=True)
    return "image/jpeg", buf.getvalue(), image.size
