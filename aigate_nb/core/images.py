"""Everything about image bytes: the containers that hold them (as received, or in
a file), what may be passed as an image, data URLs, base64, previews for display
and the inline budget for uploads.

Pillow does every pixel operation; bytes that need no change pass untouched.
"""

from __future__ import annotations

import base64
import binascii
import errno
import io
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

from .errors import HistoryError, InputError, ResponseError
from .files import FileRefused, read_regular_file
from .history_files import is_file, read_file, relative_to
from .text import clip

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

_b64: ModuleType | None

try:  # SIMD base64: tens of times faster on multi-megabyte 4K replies.
    import pybase64 as _b64
except ImportError:  # pragma: no cover - exercised where pybase64 is absent
    _b64 = None

#: Input formats the Gemini image models take as they are.
ACCEPTED_INPUT_MIME = ("image/png", "image/jpeg", "image/webp", "image/heic", "image/heif")

#: Safe total of inline image data in one request; the Gemini API's long-standing
#: inline limit is 20 MB for the whole request.
DEFAULT_INLINE_BUDGET = 18_000_000

#: The largest input picture, read from its header before any pixel is decoded. The models
#: make at most 12,288 pixels on a side (8:1 at 4K) and about 19 MP, their 4K tier being
#: "about 16 MP" (the size tables of Google's image-generation docs and the Vertex model
#: card); four times that tier leaves room for large photos, while a bigger picture takes
#: seconds and gigabytes to decode only to be scaled far down for the model.
MAX_INPUT_SIDE = 16_384
MAX_INPUT_PIXELS = 64_000_000
#: An image file is refused unread above this: an uncompressed RGBA picture of that many pixels.
MAX_IMAGE_FILE_BYTES = 4 * MAX_INPUT_PIXELS

_EXTENSIONS = {
    "image/png": ".png",
    "image/jpeg": ".jpg",
    "image/webp": ".webp",
    "image/gif": ".gif",
    "image/heic": ".heic",
    "image/heif": ".heif",
}


@dataclass(frozen=True)
class ReplyImage:
    """One image of a reply, exactly as the gateway sent it."""

    mime: str
    data: bytes


@dataclass(frozen=True)
class StoredImage:
    """An image whose original bytes are in a file, read when asked.

    Results kept in the history point at their files instead of holding the
    bytes, so fifty 4K results held by IPython's ``Out`` cost no memory. With
    ``root`` (the history folder holding ``path``) the file is read without
    following a symbolic link (``history_files.py``).
    """

    mime: str
    path: Path
    root: Path | None = None

    @property
    def data(self) -> bytes:
        try:
            if self.root is not None:
                return read_file(self.root, relative_to(self.root, self.path))
            return self.path.read_bytes()
        except FileNotFoundError:
            raise HistoryError(
                f"The full-size image {self.path} is gone (its history was cleared, or the file was "
                "moved or deleted); run the request again to make it anew."
            ) from None
        except OSError as exc:
            raise HistoryError(
                f"The full-size image {self.path} cannot be read ({exc.strerror or exc}); "
                "check the file and its folder's permissions."
            ) from None

    def exists(self) -> bool:
        """True when its file is there (and, in a history folder, reached through no link)."""
        if self.root is None:
            return self.path.is_file()
        return is_file(self.root, relative_to(self.root, self.path))


@runtime_checkable
class ImageLike(Protocol):
    """An object that can hand over its original image bytes (results, history entries)."""

    def _aigate_image_bytes(self) -> tuple[str, bytes]: ...


@dataclass(frozen=True)
class ImageInput:
    """One input image, ready for a request: inline bytes, or a URL the gateway fetches.

    ``parent_id`` names the history entry it came from, when it came from one; ``name``
    the file (or URL, without its query) it was read from, when it was read from one.
    """

    mime: str | None
    data: bytes | None
    url: str | None = None
    parent_id: str | None = None
    name: str | None = None

    @property
    def is_url(self) -> bool:
        return self.url is not None

    @property
    def payload(self) -> bytes:
        """The inline bytes; a URL input has none (see ``is_url``)."""
        if self.data is None:
            raise ValueError(f"{self.url} is a URL input and has no inline bytes")
        return self.data


def b64decode(text: str | bytes) -> bytes:
    """Strict base64 decoding; corrupt data raises ``ResponseError``."""
    try:
        if _b64 is not None:
            return _b64.b64decode(text, validate=True)
        return base64.b64decode(text, validate=True)
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


def split_data_url(url: str) -> tuple[str, str]:
    """``data:image/png;base64,...`` -> ``("image/png", "...")``, the payload still in base64."""
    header, sep, payload = url.partition(",")
    if not sep or not header.startswith("data:") or not header.endswith(";base64"):
        raise ResponseError("An image data URL is malformed; run the request again.")
    return header[5:-7] or "image/png", payload


def decode_data_url(url: str) -> tuple[str, bytes]:
    """``data:image/png;base64,...`` -> ``("image/png", bytes)``."""
    mime, payload = split_data_url(url)
    return mime, b64decode(payload)


def encode_data_url(mime: str, data: bytes) -> str:
    return f"data:{mime};base64,{b64encode(data)}"


def open_image(data: bytes) -> PILImage:
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
    if isinstance(source, ImageInput):
        return source
    if isinstance(source, ImageLike):
        mime, data = source._aigate_image_bytes()
        return ImageInput(mime, data, parent_id=getattr(source, "id", None))
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        return ImageInput(_require_input_image(data, "the bytes given"), data)
    if isinstance(source, str) and source.startswith(("http://", "https://")):
        # A signed URL's query can hold a secret: the name kept in the history leaves it out.
        return ImageInput(None, None, url=source, name=source.split("?", 1)[0].split("#", 1)[0])
    if isinstance(source, str) and source.startswith("data:"):
        try:
            mime, data = decode_data_url(source)
        except ResponseError:
            raise InputError("That data URL is not a base64 image; expected data:image/...;base64,...") from None
        return ImageInput(_require_input_image(data, "the data URL"), data)
    if isinstance(source, (str, os.PathLike)):
        path = Path(source).expanduser()
        data = read_image_file(path)
        return ImageInput(_require_input_image(data, f"'{path}'"), data, name=path.name)
    if _is_pil_image(source):
        _check_input_size(source.size, "The PIL image")
        return ImageInput(*_encode_pil(source))
    raise InputError(
        f"Cannot use a {type(source).__name__} as an image; pass a file path, a URL, bytes, "
        "a PIL image, a result or a history entry."
    )


def source_shape(source: Any) -> tuple[int, int, str | None, str | None] | None:
    """``(width, height, aspect_ratio, image_size)`` of an image to be edited, read from its
    header (no pixels decoded); the ratio and size are those it was asked with, for a result
    or history entry. None when it cannot be told (a URL, or not an image: the request's
    own check says why)."""
    if isinstance(source, ImageLike) and hasattr(source, "size"):
        width, height = source.size
        return width, height, getattr(source, "aspect_ratio", None), getattr(source, "image_size", None)
    if _is_pil_image(source):
        return (*source.size, None, None)
    if isinstance(source, ImageInput):
        source = source.data  # None for a URL: cannot be told
    try:
        if isinstance(source, (bytes, bytearray, memoryview)):
            data: io.BytesIO | Path = io.BytesIO(bytes(source))
        elif isinstance(source, (str, os.PathLike)) and not str(source).startswith(("http://", "https://", "data:")):
            path = Path(source).expanduser()
            if not path.is_file():  # a FIFO would hold the open for ever; read_image_file says why
                return None
            data = path
        else:
            return None
        from PIL import Image

        with Image.open(data) as image:
            return (*image.size, None, None)
    except Exception:  # noqa: BLE001 - unreadable here; to_image_input says why when it is sent
        return None


def _is_pil_image(obj: Any) -> bool:
    pil = __import__("sys").modules.get("PIL.Image")
    return pil is not None and isinstance(obj, pil.Image)


def read_image_file(path: Path) -> bytes:
    """The bytes of the image file at ``path``: a regular file of at most ``MAX_IMAGE_FILE_BYTES``
    (a FIFO or a device is never read), or ``InputError`` saying what is there instead."""
    shown = clip(str(path), 160)  # a path is the user's text: a line, however long it is
    try:
        return read_regular_file(path, MAX_IMAGE_FILE_BYTES)
    except (FileNotFoundError, NotADirectoryError):
        raise InputError(
            f"No image file at '{shown}'; check the path (relative paths start at {Path.cwd()})."
        ) from None
    except FileRefused as exc:
        raise InputError(f"'{shown}' cannot be an image: {exc.reason}; give the path of an image file.") from None
    except OSError as exc:
        advice = "check the path" if exc.errno == errno.ENAMETOOLONG else "check the file's permissions"
        raise InputError(f"'{shown}' cannot be read ({exc.strerror or exc}); {advice}.") from None


def _require_input_image(data: bytes, what: str) -> str:
    """The MIME type of ``data``, an image whose header declares no more pixels than a model takes."""
    mime = sniff_mime(data)
    if mime is None:
        raise InputError(f"{what} is not an image Pillow or the model can read; use PNG, JPEG or WebP.")
    from PIL import Image

    try:
        with warnings.catch_warnings():  # the size is judged below, in one line, not by Pillow's warning
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as image:  # reads the header only
                size = image.size
    except Image.DecompressionBombError:
        raise _too_large(what, f"over {2 * (Image.MAX_IMAGE_PIXELS or 0) / 1e6:.0f} MP") from None
    except Exception:  # noqa: BLE001 - a header Pillow cannot read: the model may (HEIC); it judges
        return mime
    _check_input_size(size, what)
    return mime


def _check_input_size(size: tuple[int, int], what: str) -> None:
    width, height = size
    if width * height > MAX_INPUT_PIXELS or max(width, height) > MAX_INPUT_SIDE:
        megapixels = f" ({width * height / 1e6:.0f} MP)" if width * height >= 1_000_000 else ""
        raise _too_large(what, f"{width}x{height} pixels{megapixels}")


def _too_large(what: str, size: str) -> InputError:
    return InputError(
        f"{what} is {size}, more than any model takes (at most {MAX_INPUT_PIXELS / 1e6:.0f} MP and "
        f"{MAX_INPUT_SIDE:,} pixels a side); scale it down first."
    )


def _encode_pil(image: PILImage) -> tuple[str, bytes]:
    """A PIL image goes as lossless PNG; modes PNG cannot hold become RGB(A)."""
    if image.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "I", "I;16"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return "image/png", buf.getvalue()


def _has_alpha(image: PILImage) -> bool:
    if image.mode in ("RGBA", "LA", "PA"):
        bands = cast("tuple[tuple[int, int], ...]", image.getextrema())  # several bands: one (min, max) each
        return bands[-1][0] < 255
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
        if item.is_url or (b64_size(item.payload) <= share and item.mime in ACCEPTED_INPUT_MIME):
            out.append(item)
            continue
        mime, data = _shrink(item.payload, share)
        out.append(ImageInput(mime, data, parent_id=item.parent_id))
    return out


def b64_size(data: bytes) -> int:
    """Characters of ``data`` as base64."""
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
        if b64_size(encoded) <= share or long_edge <= 256:
            return mime, encoded
        long_edge = int(long_edge * 0.75)
        image = image.copy()
        image.thumbnail((long_edge, long_edge))


def make_preview(
    data: bytes, long_edge: int = 1024, max_bytes: int | None = None
) -> tuple[str, bytes, tuple[int, int]]:
    """A small copy for inline display: JPEG, or PNG where transparency matters.

    With ``max_bytes``, a JPEG's quality is lowered step by step, then the
    picture shrinks (a PNG only shrinks) until it fits; a photo-like 4K image
    still ends up within the budget. Returns ``(mime, bytes, (width, height))``.
    """
    from PIL import Image

    image: PILImage = Image.open(io.BytesIO(data))
    image.draft("RGB", _scaled_size(image.size, long_edge))  # JPEG: decode at a reduced scale, before loading
    image.load()
    alpha = _has_alpha(image)
    mode = "RGBA" if alpha else "RGB"
    if image.mode != mode:  # converting to the same mode would only copy: 30 ms at 4K
        image = image.convert(mode)
    edge = min(long_edge, max(image.size))
    qualities = _PREVIEW_QUALITIES if max_bytes is not None and not alpha else _PREVIEW_QUALITIES[:1]
    while True:
        scaled = _scaled_to(image, edge)
        for quality in qualities:
            mime, encoded = _encode_preview(scaled, alpha, quality)
            if max_bytes is None or len(encoded) <= max_bytes:
                return mime, encoded, scaled.size
        if edge <= _SMALLEST_PREVIEW:
            return mime, encoded, scaled.size
        edge = max(_SMALLEST_PREVIEW, int(edge * 0.75))
        qualities = qualities[-1:]  # quality is already as low as it goes; only the size is left


_PREVIEW_QUALITIES = (85, 75, 65, 55, 45)
_SMALLEST_PREVIEW = 16


def _scaled_size(size: tuple[int, int], edge: int) -> tuple[int, int]:
    """``size`` shrunk so that its long side is at most ``edge``, keeping its proportions."""
    width, height = size
    if max(width, height) <= edge:
        return size
    scale = edge / max(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def _scaled_to(image: PILImage, edge: int, resample: int = 3) -> PILImage:
    size = _scaled_size(image.size, edge)
    if size == image.size:
        return image
    # A box reduction by the whole factor first, then ``resample`` (3, bicubic) for the rest: the box
    # already averages every source pixel, and it is three times faster than reducing_gap=2 at 4K.
    return image.resize(size, resample=resample, reducing_gap=1.0)


def _encode_preview(image: PILImage, alpha: bool, quality: int) -> tuple[str, bytes]:
    buf = io.BytesIO()
    if alpha:
        image.save(buf, format="PNG")
        return "image/png", buf.getvalue()
    image.save(buf, format="JPEG", quality=quality, optimize=True)
    return "image/jpeg", buf.getvalue()


def make_thumbnail(data: bytes, long_edge: int = 160) -> bytes:
    """A small JPEG for galleries, transparency flattened onto white."""
    return make_thumbnails(data, [long_edge])[0]


def make_thumbnails(data: bytes, long_edges: Sequence[int]) -> list[bytes]:
    """Small JPEGs of one image, one for each of ``long_edges`` (in that order), from a single
    decode: each is shrunk from the next larger one, transparency flattened onto white."""
    from PIL import Image

    image: PILImage = Image.open(io.BytesIO(data))
    image.draft("RGB", _scaled_size(image.size, max(long_edges)))
    image.load()
    image = _flatten(image)
    made = {}
    for edge in sorted(set(long_edges), reverse=True):
        # Bilinear after the box reduction: as close to a full bicubic resize as bicubic is
        # here (the box does the averaging), and a third faster, which a 1000-entry report feels.
        image = _scaled_to(image, edge, resample=2)
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=80)
        made[edge] = buf.getvalue()
    return [made[edge] for edge in long_edges]


def _flatten(image: PILImage) -> PILImage:
    """RGB, with any transparency composited onto white (JPEG has no alpha)."""
    from PIL import Image

    if image.mode == "RGB":
        return image  # converting to the same mode would only copy
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


_SUFFIX_MIME = {".jpeg": "image/jpeg", ".jpe": "image/jpeg", ".jfif": "image/jpeg", ".tif": "image/tiff",
                ".tiff": "image/tiff", ".bmp": "image/bmp"}


def mime_for_suffix(suffix: str) -> str | None:
    """The image type a file suffix asks for (``.png`` -> ``image/png``), or None if unknown."""
    suffix = suffix.lower()
    for mime, ext in _EXTENSIONS.items():
        if ext == suffix:
            return mime
    return _SUFFIX_MIME.get(suffix)


def convert_image(data: bytes, mime: str) -> bytes:
    """Re-encode ``data`` as ``mime`` with Pillow (JPEG and WebP at quality 95)."""
    from PIL import Image

    Image.init()
    formats = {v: k for k, v in Image.MIME.items()}
    fmt = "JPEG" if mime == "image/jpeg" else formats.get(mime)
    if fmt not in Image.SAVE:
        raise InputError(f"Pillow cannot write {mime} here; save as .png, .jpg or .webp.")
    image = open_image(data)
    if fmt in ("JPEG", "BMP"):
        image = _flatten(image)
    elif image.mode not in ("1", "L", "LA", "P", "RGB", "RGBA", "I;16"):
        image = image.convert("RGBA" if "A" in image.getbands() else "RGB")
    buf = io.BytesIO()
    extra = {"quality": 95} if fmt in ("JPEG", "WEBP") else {}
    image.save(buf, format=fmt, **extra)
    return buf.getvalue()


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_TEXT_CHUNKS = (b"tEXt", b"iTXt", b"zTXt")


def png_with_text(data: bytes, text: dict[str, str]) -> bytes:
    """The PNG ``data`` with ``text`` written as text chunks right after IHDR.

    Every other chunk, the pixels included, is kept byte for byte; earlier
    text chunks with the same keys are dropped. Values that Latin-1 can hold go
    in ``tEXt``, the others in UTF-8 ``iTXt``; both are what Pillow's ``.text`` reads.
    """
    if not data.startswith(_PNG_SIGNATURE):
        raise InputError("Text chunks can only be written into a PNG.")
    keys = {key.encode("latin-1") for key in text}
    out = [_PNG_SIGNATURE]
    pos = len(_PNG_SIGNATURE)
    while pos + 12 <= len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        kind = data[pos + 4:pos + 8]
        end = pos + 12 + length
        body = data[pos + 8:pos + 8 + length]
        if not (kind in _TEXT_CHUNKS and body.split(b"\0", 1)[0] in keys):
            out.append(data[pos:end])
        if kind == b"IHDR":
            out.extend(_text_chunk(key, value) for key, value in text.items())
        pos = end
        if kind == b"IEND":
            break
    if pos > len(data) or not out[-1][4:8] == b"IEND":
        raise InputError("The PNG is truncated (no IEND chunk); it cannot be annotated.")
    return b"".join(out)


def _text_chunk(key: str, value: str) -> bytes:
    value = value.replace("\0", "")
    try:
        kind, body = b"tEXt", key.encode("latin-1") + b"\0" + value.encode("latin-1")
    except UnicodeEncodeError:
        kind, body = b"iTXt", key.encode("latin-1") + b"\0\0\0\0\0" + value.encode("utf-8")
    crc = binascii.crc32(kind + body).to_bytes(4, "big")
    return len(body).to_bytes(4, "big") + kind + body + crc
