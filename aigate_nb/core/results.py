"""``ImageResult``: what a generation returns, holding the original bytes of
every image of the reply, decoding pixels only when asked, and showing itself
inline as a small preview with a caption that nbval can compare.
"""

from __future__ import annotations

import hashlib
import html
import io
import json
import os
from collections.abc import Callable, Container
from dataclasses import MISSING, Field, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from .costs import REPLAY, Usage, format_cost
from .errors import InputError
from .images import (
    ReplyImage,
    StoredImage,
    b64_size,
    b64encode,
    convert_image,
    encode_data_url,
    extension_for,
    make_preview,
    mime_for_suffix,
    open_image,
    png_with_text,
)
from .record_checks import (
    _kind,
    amount,
    checked,
    count,
    entry_id,
    flag,
    image_mime,
    input_record,
    list_of,
    long_text,
    part_record,
    pixel_size,
    region_record,
    relative_file_name,
    short_text,
    usage_record,
)
from .region import region_label
from .text import clip, display_path

if TYPE_CHECKING:
    from PIL.Image import Image as PILImage

#: Longest model text shown under a result, and longest prompt kept in the output's metadata;
#: both keep a displayed result within its budget whatever was typed or answered.
CAPTION_TEXT_LIMIT = 2000
METADATA_PROMPT_LIMIT = 8000
#: Room kept for what changes once a result joins the history (index, id, file paths)
#: and for the notebook file's indentation of the metadata.
_BUDGET_SLACK = 2048
#: The HTML around each preview of a multi-image result, generously.
_HTML_PER_IMAGE = 400
#: What a replayed result's caption says instead of its time, and how to get a fresh picture.
REPLAYED = "replayed: no request sent (--new makes a fresh one)"
#: The layout of a history index line, written as its "v".
RECORD_VERSION = 1
#: The "kind" of a line of ``attempts.jsonl``.
ATTEMPT = "attempt"


@dataclass(frozen=True)
class Preview:
    """One downscaled copy for display."""

    mime: str
    data: bytes
    size: tuple[int, int]


def kept(default: Any = MISSING, *, key: str | None = None, check: Callable[[Any], Any] | None = None,
         factory: Callable[[], Any] | None = None, write: Callable[[Any], Any] | None = None) -> Any:
    """A field of ``ImageResult`` that the history keeps in the entry's index line, under
    ``key`` (default: the field's name), written as ``write`` makes it (default: as it is) and
    read back through ``check``, which returns the value or raises ``ValueError`` saying what
    is wrong with it (see "checking a record" below). A field without a default must be in
    every line; the others may be absent or null (older lines)."""
    metadata = {"kept": key, "check": check, "write": write}
    if factory is not None:
        return field(default_factory=factory, metadata=metadata)
    if default is MISSING:
        return field(metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(eq=False)
class ImageResult:
    """The outcome of one request: the images as sent, and how they were asked for.

    This is the record of a result, defined once: the history keeps every field made
    with ``kept()`` in the entry's index line (``to_record``/``from_record``), and a
    history entry reads its fields from the result it wraps.

    ``originals`` are the reply's images, bytes untouched (or, once kept, their files);
    ``.images`` and ``.image`` decode them with Pillow on first use. ``id``, ``index``,
    ``created`` and ``files`` are set once the result is in a history; ``parent_id``
    (and ``parent_index`` when the parent is in the same history) name the entry it
    was edited from.

    Display: ``preview_long_edge`` (pixels) and ``display_budget`` (bytes the
    output may add to the ``.ipynb``, base64 included) are class settings that
    can also be set on one result.
    """

    preview_long_edge: ClassVar[int] = 1024
    display_budget: ClassVar[int] = 250_000

    originals: list[ReplyImage | StoredImage]
    prompt: str = kept(check=long_text)
    model: str = kept(check=short_text)
    aspect_ratio: str | None = kept(None, check=short_text)
    image_size: str | None = kept(None, check=short_text)
    text: str | None = kept(None, check=long_text)
    finish_reason: str | None = kept(None, check=short_text)
    #: The tokens the reply used, alike for both routes (see ``costs.Usage``).
    usage: Usage = kept(factory=Usage, check=usage_record, write=Usage.to_record)
    route: str = kept("chat", check=short_text)
    elapsed: float = kept(0.0, check=amount)
    emulated: bool = kept(False, check=flag)
    model_parts: list[dict[str, Any]] | None = kept(None, check=list_of(part_record))
    parent_id: str | None = kept(None, key="parent", check=entry_id)
    id: str | None = kept(None, check=entry_id)
    index: int | None = kept(None, check=count)
    parent_index: int | None = kept(None, check=count)
    created: str | None = kept(None, check=short_text)
    #: The input images as sent: ``{"sha256", "name"?, "entry"?}`` each (see ``prepared.input_record``).
    inputs: list[dict[str, str]] = kept(factory=list, check=list_of(input_record))
    #: The ``PreparedRequest.request_hash`` of the request that made it: the same hash, the same picture asked for.
    request_hash: str | None = kept(None, check=short_text)
    #: What it cost in USD, and where that figure came from: "gateway" (the reply said), "table" (estimated
    #: from a price table), "replay" (answered from the history: 0 now) or None (unknown).
    cost: float | None = kept(None, check=amount)
    cost_source: str | None = kept(None, check=short_text)
    #: A region edit's region: ``{"box": [x, y, w, h], "mode", "padding", "crop": [x, y, w, h]}`` in the
    #: source's pixels (see ``region.py``); None for a whole-picture result.
    region: dict[str, Any] | None = kept(None, check=region_record)
    files: list[Path] = field(default_factory=list)
    #: Answered from the history, with no request sent (see ``replay.py``); not kept: the entry is the original.
    replayed: bool = False
    _pixels: list[PILImage] | None = field(default=None, repr=False)
    _sizes: list[tuple[int, int]] | None = field(default=None, repr=False)
    _sha256s: list[str] | None = field(default=None, repr=False)
    _previews: tuple[int, list[Preview]] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.usage, Usage):  # a reply's own usage, of either route
            self.usage = Usage.from_record(self.usage)

    # -- the record the history keeps ----------------------------------------------------------

    def to_record(self, files: list[str]) -> dict[str, Any]:
        """The index line of this result, its images being ``files`` (relative to the history's folder)."""
        record = written_record(self)
        record.update(
            files=list(files),
            mimes=self.mimes,
            sha256s=self.sha256s,
            sizes=[list(size) for size in self.sizes],
        )
        return record

    @classmethod
    def from_record(cls, record: Any, folder: Path) -> ImageResult:
        """The result an index line describes, its images read from their files in ``folder``
        when asked. Every value is checked (see "checking a record"): a damaged or tampered
        line raises ``ValueError`` saying which field is wrong and how."""
        if not isinstance(record, dict):
            raise ValueError(f"it is {_kind(record)}, not an object")
        names = checked(record, "files", list_of(relative_file_name))
        mimes = checked(record, "mimes", list_of(image_mime))
        sha256s = checked(record, "sha256s", list_of(short_text))
        sizes = checked(record, "sizes", list_of(pixel_size))
        if not names or not len(mimes) == len(sha256s) == len(sizes) == len(names):
            raise ValueError("its files, mimes, sha256s and sizes do not match")
        values = read_record(cls, record)
        if values["index"] is None or values["id"] is None:
            raise ValueError("it has no index or id: it is not an entry")
        files = [folder / name for name in names]
        return cls(
            originals=[StoredImage(mime, path, folder) for mime, path in zip(mimes, files)],
            files=files,
            _sizes=sizes,
            _sha256s=sha256s,
            **values,
        )

    # -- pixels and bytes -------------------------------------------------------------------

    @property
    def images(self) -> list[PILImage]:
        """Every image of the reply as a ``PIL.Image.Image``, in order."""
        if self._pixels is None:
            self._pixels = [open_image(item.data) for item in self.originals]
        return self._pixels

    @property
    def image(self) -> PILImage:
        """The first image of the reply as a ``PIL.Image.Image``."""
        return self.images[0]

    @property
    def mime(self) -> str:
        return self.originals[0].mime

    @property
    def mimes(self) -> list[str]:
        return [item.mime for item in self.originals]

    @property
    def data(self) -> bytes:
        """The first image's original bytes."""
        return self.originals[0].data

    @property
    def data_url(self) -> str:
        """The first image as a ``data:`` URL, ready to send as an ``image_url``."""
        return encode_data_url(self.mime, self.data)

    @property
    def sha256s(self) -> list[str]:
        """The sha256 of each image's original bytes."""
        if self._sha256s is None:
            self._sha256s = [hashlib.sha256(item.data).hexdigest() for item in self.originals]
        return self._sha256s

    @property
    def sha256(self) -> str:
        return self.sha256s[0]

    @property
    def sizes(self) -> list[tuple[int, int]]:
        """Pixel size of each image, read from its header (no decoding)."""
        if self._sizes is None:
            from PIL import Image

            sizes = []
            for item in self.originals:
                with Image.open(io.BytesIO(item.data)) as image:
                    sizes.append(image.size)
            self._sizes = sizes
        return self._sizes

    @property
    def size(self) -> tuple[int, int]:
        """Pixel size of the first image."""
        return self.sizes[0]

    def _aigate_image_bytes(self) -> tuple[str, bytes]:
        return self.mime, self.data

    # -- files ------------------------------------------------------------------------------

    def save(self, path: str | Path, *, index: int | None = None) -> Path | list[Path]:
        """Write the full-size image to ``path`` and return the path written.

        The original bytes are written as they are, unless the suffix asks for
        another format (``.png`` for a JPEG reply), which Pillow converts; no
        suffix keeps the original format and adds its extension; a folder (one
        that exists, or a path ending in ``/``) gets ``image-<n>`` in it. PNG files
        carry the prompt, model, ratio, size and parent as text chunks. With
        several images, ``index`` (from 0) picks one; without it every image
        is saved as ``name-1.ext``, ``name-2.ext``, ... and the list returned.
        """
        if not isinstance(path, (str, os.PathLike)):
            raise InputError(
                f"save() takes a file or folder path, not {type(path).__name__}; e.g. save('picture.png')."
            )
        folder = names_a_folder(path)
        path = Path(path).expanduser()
        if folder:  # the file goes in it, named after the result
            path = path / (f"image-{self.index}" if self.index is not None else f"image-{self.sha256[:12]}")
        count = len(self.originals)
        if index is not None:
            if not -count <= index < count:
                raise InputError(f"This result has {count} image(s); index must be from 0 to {count - 1}.")
            return self._save_one(index % count, path)
        if count == 1:
            return self._save_one(0, path)
        return [self._save_one(k, path.with_name(f"{path.stem}-{k + 1}{path.suffix}")) for k in range(count)]

    def _save_one(self, k: int, path: Path) -> Path:
        original = self.originals[k]
        if not path.suffix:
            path = path.with_name(path.name + extension_for(original.mime))
        mime = mime_for_suffix(path.suffix)
        if mime is None:
            raise InputError(
                f"Cannot tell which format '{path.suffix}' is; save as .png, .jpg or .webp, "
                "or without a suffix to keep the original format."
            )
        data = original.data if mime == original.mime else convert_image(original.data, mime)
        if mime == "image/png":
            data = png_with_text(data, self.png_text())
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return path

    def png_text(self) -> dict[str, str]:
        """What a saved PNG carries as text chunks: the request and where it came from."""
        fields = {
            "prompt": self.prompt,
            "model": self.model,
            "aspect_ratio": self.aspect_ratio,
            "image_size": self.image_size,
            "parent": self.parent_id,
            "region": region_label(self.region),
            "history_id": self.id,
            "Software": "aigate_nb",
        }
        return {key: value for key, value in fields.items() if value}

    # -- display ----------------------------------------------------------------------------

    def caption(self) -> str:
        """The plain-text caption: deterministic except the ``in 1.23 s`` part.

        ``[3] google/gemini-3.1-flash-image-preview | 16:9 | 1K | 1376x768 PNG | sha256 1a2b3c4d5e6f | in 1.23 s |
        ~$0.068 | edited from [1] | region 400,200,300,300 crop (emulator)`` (one line). The cost is left out
        where it is not known; the region is shown only for a region edit.
        """
        parts = [self.model]
        parts += [value for value in (self.aspect_ratio, self.image_size) if value]
        if len(self.originals) == 1:
            parts.append(self._image_summary(0))
        else:
            parts.append(f"{len(self.originals)} images")
        parts.append(REPLAYED if self.replayed else f"in {self.elapsed:.2f} s")
        if self.cost is not None:
            parts.append(format_cost(0.0 if self.cost_source == REPLAY else self.cost, self.cost_source))
        source = self.edited_from()
        if source:
            parts.append(f"edited from {source}")
        label = region_label(self.region)
        if label:
            parts.append(label)
        line = " | ".join(parts)
        if self.index is not None:
            line = f"[{self.index}] {line}"
        if self.emulated:
            line += " (emulator)"
        lines = [line]
        if len(self.originals) > 1:
            lines += [f"  {k + 1}: {self._image_summary(k)}" for k in range(len(self.originals))]
        if self.text:
            lines.append(clip(self.text.strip(), CAPTION_TEXT_LIMIT))
        return "\n".join(lines)

    def edited_from(self) -> str | None:
        """What this result was edited from, shortly: ``[3]`` (an entry of its history), an
        entry id from another history, a file name, or ``an image (sha256 1a2b3c4d5e6f)``."""
        if self.parent_index is not None:
            return f"[{self.parent_index}]"
        if self.parent_id:
            return self.parent_id
        if self.inputs:
            first = self.inputs[0]
            return first.get("name") or f"an image (sha256 {first.get('sha256', '')[:12]})"
        return None

    def _image_summary(self, k: int) -> str:
        width, height = self.sizes[k]
        kind = self.originals[k].mime.split("/")[-1].upper()
        return f"{width}x{height} {kind} | sha256 {self.sha256s[k][:12]}"

    def display_metadata(self) -> dict[str, Any]:
        """Provenance kept in the notebook with the output, under ``aigate_nb``."""
        images = [
            {
                "mime": item.mime,
                "width": self.sizes[k][0],
                "height": self.sizes[k][1],
                "sha256": self.sha256s[k],
                "path": display_path(self.files[k]) if k < len(self.files) else None,
            }
            for k, item in enumerate(self.originals)
        ]
        provenance: dict[str, dict[str, Any]] = {
            "aigate_nb": {
                "history_id": self.id,
                "index": self.index,
                "parent_id": self.parent_id,
                "parent_index": self.parent_index,
                "model": self.model,
                "prompt": clip(self.prompt, METADATA_PROMPT_LIMIT),
                "aspect_ratio": self.aspect_ratio,
                "image_size": self.image_size,
                "route": self.route,
                "emulated": self.emulated,
                "cost": self.cost,
                "cost_source": self.cost_source,
                "sha256": self.sha256,
                "path": images[0]["path"],
                "images": images,
            }
        }
        if self.region:  # only for a region edit: every other output's metadata stays as it was
            provenance["aigate_nb"]["region"] = self.region
        return provenance

    def _repr_mimebundle_(
        self, include: Container[str] | None = None, exclude: Container[str] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """One image: a JPEG (PNG with transparency) preview and the caption.
        Several: an HTML row of previews and the caption. Never more than
        ``display_budget`` bytes in the notebook, base64 included.
        """
        caption = self.caption()
        metadata = self.display_metadata()
        overhead = _stored_size(caption) + _stored_size(metadata)
        if len(self.originals) == 1:
            overhead += _stored_size(self.caption_html())
        else:
            overhead += _stored_size(html.escape(caption)) + _HTML_PER_IMAGE * len(self.originals)
        previews = self.previews(overhead)
        if len(previews) == 1:
            preview = previews[0]
            data = {preview.mime: b64encode(preview.data), "text/plain": caption}
        else:
            data = {"text/html": self._html(previews, caption), "text/plain": caption}
        if include:
            data = {k: v for k, v in data.items() if k in include}
        if exclude:
            data = {k: v for k, v in data.items() if k not in exclude}
        return data, metadata

    def caption_html(self) -> str:
        """The caption as a small block of HTML, shown under a single image."""
        style = "margin:0;white-space:pre-wrap;font-size:smaller"
        return f'<pre class="aigate-caption" style="{style}">{html.escape(self.caption())}</pre>'

    def _ipython_display_(self) -> None:
        """The preview, then the caption under it as an output of its own.

        JupyterLab shows only the richest type of an output, so a caption kept
        only as the image's ``text/plain`` would never be seen there; terminals
        still read it from that ``text/plain``. Several images already carry
        their caption in their HTML.
        """
        from IPython.display import display

        data, metadata = self._repr_mimebundle_()
        display(data, metadata=metadata, raw=True)
        if len(self.originals) == 1:
            display({"text/html": self.caption_html()}, raw=True)

    def previews(self, overhead: int = 0) -> list[Preview]:
        """The display copies, built once and kept, within what the budget leaves after ``overhead``.

        A cached set is reused while it still fits; it is rebuilt only when the
        long edge changed or the rest of the output grew past what it left.
        """
        edge = self.preview_long_edge
        count = len(self.originals)
        room = self.display_budget - overhead
        cached = self._previews
        if cached is not None and cached[0] == edge and sum(b64_size(p.data) for p in cached[1]) <= room:
            return cached[1]
        share = max(0, room - _BUDGET_SLACK) // count // 4 * 3
        previews = [Preview(*make_preview(item.data, edge, max_bytes=share)) for item in self.originals]
        self._previews = (edge, previews)
        return previews

    def _html(self, previews: list[Preview], caption: str) -> str:
        figures = "".join(
            f'<figure style="margin:0;flex:1 1 0;min-width:0">'
            f'<img src="data:{p.mime};base64,{b64encode(p.data)}" alt="image {k + 1}" '
            f'style="width:100%;height:auto"/>'
            f'<figcaption style="font-size:smaller">{k + 1}</figcaption></figure>'
            for k, p in enumerate(previews)
        )
        return (
            '<div class="aigate-result"><div style="display:flex;gap:8px;align-items:flex-start">'
            f'{figures}</div><pre style="white-space:pre-wrap">{html.escape(caption)}</pre></div>'
        )

    def __repr__(self) -> str:
        width, height = self.size
        where = f"[{self.index}] " if self.index is not None else ""
        more = f" +{len(self.originals) - 1} more" if len(self.originals) > 1 else ""
        return (
            f"<ImageResult {where}{width}x{height} {self.mime} sha256={self.sha256[:12]}{more} "
            f"model={self.model} prompt={clip(self.prompt, 40)!r}>"
        )


def _stored_size(value: Any) -> int:
    """Bytes ``value`` takes in an .ipynb: its JSON, plus the indentation of each line
    (nbformat stores multi-line text as a list of lines)."""
    text = json.dumps(value, ensure_ascii=False)
    return len(text.encode("utf-8")) + 16 * text.count("\\n")


def names_a_folder(path: str | os.PathLike) -> bool:
    """True for a folder that exists, or a path ending in a separator (one to be made)."""
    return os.fspath(path).endswith(("/", os.sep)) or Path(path).expanduser().is_dir()


def _kept_fields(cls: type) -> list[Field]:
    return [item for item in fields(cls) if "kept" in item.metadata]


def written_record(kept_object: Any) -> dict[str, Any]:
    """The fields of ``kept_object`` (an ``ImageResult`` or an ``Attempt``) made with ``kept()``,
    as a history line holds them."""
    record: dict[str, Any] = {"v": RECORD_VERSION}
    for item in _kept_fields(type(kept_object)):
        value, write = getattr(kept_object, item.name), item.metadata["write"]
        record[item.metadata["kept"] or item.name] = write(value) if write is not None else value
    return record


def read_record(cls: type, record: dict[str, Any]) -> dict[str, Any]:
    """The values of ``cls``'s ``kept()`` fields in ``record``, each checked; a ``ValueError``
    names the first field that is wrong. An optional field that is absent or null takes its default."""
    values: dict[str, Any] = {}
    for item in _kept_fields(cls):
        key = item.metadata["kept"] or item.name
        required = item.default is MISSING and item.default_factory is MISSING
        if record.get(key) is None and not required:
            values[item.name] = item.default_factory() if item.default_factory is not MISSING else item.default
            continue
        check = item.metadata["check"]
        values[item.name] = checked(record, key, check) if check is not None else record[key]
    return values


@dataclass(eq=False)
class Attempt:
    """A request that was charged but made no picture: a prompt blocked for safety, an image
    withheld, a text-only answer whose reply still reported usage.

    The history keeps it in ``attempts.jsonl``, beside the index, so that what the notebook
    spent (``History.usage``, the budget, ``%aigate usage``, the report) counts it; being no
    picture, it has no number, no files and no lineage, and the gallery, replay and ``-e``
    never see it.
    """

    prompt: str = kept(check=long_text)
    model: str = kept(check=short_text)
    route: str = kept("chat", check=short_text)
    aspect_ratio: str | None = kept(None, check=short_text)
    image_size: str | None = kept(None, check=short_text)
    finish_reason: str | None = kept(None, check=short_text)
    block_reason: str | None = kept(None, check=short_text)
    text: str | None = kept(None, check=long_text)
    usage: Usage = kept(factory=Usage, check=usage_record, write=Usage.to_record)
    cost: float | None = kept(None, check=amount)
    cost_source: str | None = kept(None, check=short_text)
    request_hash: str | None = kept(None, check=short_text)
    emulated: bool = kept(False, check=flag)
    created: str | None = kept(None, check=short_text)

    #: An attempt adds no image to what was spent (see ``spending.Spent``).
    originals: ClassVar[tuple] = ()

    def to_record(self) -> dict[str, Any]:
        """Its line in ``attempts.jsonl``."""
        return {**written_record(self), "kind": ATTEMPT}

    @classmethod
    def from_record(cls, record: Any) -> Attempt:
        """The attempt a line describes, every value checked; ``ValueError`` says what is wrong."""
        if not isinstance(record, dict) or record.get("kind") != ATTEMPT:
            raise ValueError("it is not an attempt's record")
        return cls(**read_record(cls, record))

    def why(self) -> str:
        """``blocked (SAFETY)``, ``finish reason IMAGE_SAFETY`` or ``text only``: why no picture came."""
        if self.block_reason:
            return f"blocked ({self.block_reason})"
        if self.finish_reason and self.finish_reason.upper() not in ("STOP", "FINISH_REASON_UNSPECIFIED"):
            return f"finish reason {self.finish_reason}"
        return "text only"
