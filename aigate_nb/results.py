"""``ImageResult``: what a generation returns, holding the original bytes of
every image of the reply and decoding pixels only when asked.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

from .images import encode_data_url, open_image
from .wire import ReplyImage


@dataclass(eq=False)
class ImageResult:
    """The outcome of one request: the images as sent, and how they were asked for.

    ``originals`` are the reply's images, bytes untouched; ``.images`` and
    ``.image`` decode them with Pillow on first use.
    """

    originals: list[ReplyImage]
    prompt: str
    model: str
    aspect_ratio: str | None = None
    image_size: str | None = None
    text: str | None = None
    finish_reason: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    route: str = "chat"
    elapsed: float = 0.0
    emulated: bool = False
    model_parts: list[dict[str, Any]] | None = None
    parent_id: str | None = None
    id: str | None = None
    index: int | None = None
    _decoded: list | None = field(default=None, repr=False)

    @property
    def images(self) -> list:
        """Every image of the reply as a ``PIL.Image.Image``, in order."""
        if self._decoded is None:
            self._decoded = [open_image(item.data) for item in self.originals]
        return self._decoded

    @property
    def image(self):
        """The first image of the reply as a ``PIL.Image.Image``."""
        return self.images[0]

    @property
    def mime(self) -> str:
        return self.originals[0].mime

    @property
    def data(self) -> bytes:
        """The first image's original bytes."""
        return self.originals[0].data

    @property
    def data_url(self) -> str:
        """The first image as a ``data:`` URL, ready to send as an ``image_url``."""
        return encode_data_url(self.mime, self.data)

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def size(self) -> tuple[int, int]:
        """Pixel size of the first image, read from its header."""
        from PIL import Image
        import io

        with Image.open(io.BytesIO(self.data)) as image:
            return image.size

    def _aigate_image_bytes(self) -> tuple[str, bytes]:
        return self.mime, self.data

    def __repr__(self) -> str:
        width, height = self.size
        more = f" +{len(self.originals) - 1} more" if len(self.originals) > 1 else ""
        prompt = self.prompt if len(self.prompt) <= 40 else self.prompt[:37] + "..."
        return (
            f"<ImageResult {width}x{height} {self.mime} sha256={self.sha256[:12]}{more} "
            f"model={self.model} prompt={prompt!r}>"
        )
