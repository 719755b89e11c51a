"""The emulator's capability table: which models exist and what each one can draw.

Built from the facts file (``gemini-image-api-facts.md`` §1.2-1.5, §7.1), not from the
client's own table, so that a mistake in one is not copied into the other.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

BASE_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
FLASH_31_RATIOS = BASE_RATIOS + ("1:4", "4:1", "1:8", "8:1")

# gemini-2.5-flash-image draws about one megapixel whatever the ratio (facts §1.4).
FLASH_25_PIXELS = {
    "1:1": (1024, 1024),
    "2:3": (832, 1248),
    "3:2": (1248, 832),
    "3:4": (864, 1184),
    "4:3": (1184, 864),
    "4:5": (896, 1152),
    "5:4": (1152, 896),
    "9:16": (768, 1344),
    "16:9": (1344, 768),
    "21:9": (1536, 672),
}

# Gemini 3 pixels at 1K (facts §1.4). The doc's 512, 2K and 4K columns are exactly half, twice
# and four times these, for 3-pro and 3.1-flash alike; halving 21:9 gives 792x336, which is why
# the doc's 792x168 is read as a typo.
GEMINI3_1K_PIXELS = {
    "1:1": (1024, 1024),
    "1:4": (512, 2048),
    "1:8": (384, 3072),
    "2:3": (848, 1264),
    "3:2": (1264, 848),
    "3:4": (896, 1200),
    "4:1": (2048, 512),
    "4:3": (1200, 896),
    "4:5": (928, 1152),
    "5:4": (1152, 928),
    "8:1": (3072, 384),
    "9:16": (768, 1376),
    "16:9": (1376, 768),
    "21:9": (1584, 672),
}
GEMINI3_SIZE_SCALE = {"512": 0.5, "1K": 1, "2K": 2, "4K": 4}


@dataclass(frozen=True)
class ImageCaps:
    """What an image model accepts and produces."""

    ratios: tuple[str, ...]
    sizes: tuple[str, ...]  # empty: the model takes no image_size at all
    base_pixels: Mapping[str, tuple[int, int]]
    tokens: Mapping[str | None, int]  # output tokens per image, by size (None: sizeless model)
    jpeg_sizes: frozenset[str | None]  # sizes delivered as JPEG; the others are PNG
    max_inputs: int
    thinking: bool  # Gemini 3: thinks, signs its parts, can show thought images
    # USD per million tokens of input, of output images, and of output text and thinking
    # (facts, "Prices and usage fields"), for what the emulator charges.
    rates: tuple[float, float, float] = (0.0, 0.0, 0.0)

    @property
    def default_size(self) -> str | None:
        """Gemini 3 models default to 1K (facts §1.3); 2.5 has no size."""
        return "1K" if self.sizes else None

    def pixels(self, ratio: str, size: str | None) -> tuple[int, int]:
        """Output width and height for this ratio and size."""
        width, height = self.base_pixels[ratio]
        scale = GEMINI3_SIZE_SCALE[size] if size else 1
        return int(width * scale), int(height * scale)

    def mime(self, size: str | None) -> str:
        """The output image's MIME type at this size."""
        return "image/jpeg" if size in self.jpeg_sizes else "image/png"


@dataclass(frozen=True)
class Model:
    """One entry of GET /v1/models."""

    id: str
    name: str
    input_modalities: tuple[str, ...]
    output_modalities: tuple[str, ...]
    image: ImageCaps | None = None

    @property
    def bare_id(self) -> str:
        """The id without its provider prefix, as Google names it."""
        return self.id.split("/", 1)[1]

    @property
    def owner(self) -> str:
        return self.id.split("/", 1)[0]


_FLASH_25 = ImageCaps(
    ratios=BASE_RATIOS,
    sizes=(),
    base_pixels=FLASH_25_PIXELS,
    tokens={None: 1290},
    jpeg_sizes=frozenset(),
    max_inputs=3,
    thinking=False,
    rates=(0.30, 30.0, 0.0),
)
_PRO_3 = ImageCaps(
    ratios=BASE_RATIOS,
    sizes=("1K", "2K", "4K"),
    base_pixels=GEMINI3_1K_PIXELS,
    tokens={"1K": 1120, "2K": 1120, "4K": 2000},
    jpeg_sizes=frozenset({"1K", "2K", "4K"}),
    max_inputs=14,
    thinking=True,
    rates=(2.0, 120.0, 12.0),
)
# 3.1-flash: PNG for the small tiers and JPEG for the large ones, so clients meet both formats.
_FLASH_31 = ImageCaps(
    ratios=FLASH_31_RATIOS,
    sizes=("512", "1K", "2K", "4K"),
    base_pixels=GEMINI3_1K_PIXELS,
    tokens={"512": 747, "1K": 1120, "2K": 1680, "4K": 2520},
    jpeg_sizes=frozenset({"2K", "4K"}),
    max_inputs=14,
    thinking=True,
    rates=(0.50, 60.0, 3.0),
)



def _image_model(model_id: str, name: str, caps: ImageCaps) -> Model:
    return Model(model_id, name, ("text", "image"), ("image", "text"), caps)


CATALOG: tuple[Model, ...] = (
    _image_model("google/gemini-2.5-flash-image", "Google: Gemini 2.5 Flash Image (Nano Banana)", _FLASH_25),
    _image_model("google/gemini-3-pro-image", "Google: Gemini 3 Pro Image (Nano Banana Pro)", _PRO_3),
    _image_model(
        "google/gemini-3-pro-image-preview", "Google: Gemini 3 Pro Image Preview (Nano Banana Pro)", _PRO_3
    ),
    _image_model(
        "google/gemini-3.1-flash-image-preview", "Google: Gemini 3.1 Flash Image Preview (Nano Banana 2)", _FLASH_31
    ),
    _image_model("google/gemini-3.1-flash-image", "Google: Gemini 3.1 Flash Image (Nano Banana 2)", _FLASH_31),
    # Models that cannot draw, so that a client's "image models only" filter has something to drop.
    Model("google/gemini-2.5-flash", "Google: Gemini 2.5 Flash", ("text", "image"), ("text",)),
    Model("openai/gpt-4o-mini", "OpenAI: GPT-4o-mini", ("text", "image"), ("text",)),
)
_BY_ID = {model.id: model for model in CATALOG}


def find_model(model_id: str) -> Model | None:
    """The model with exactly this id, as the OpenAI route requires."""
    return _BY_ID.get(model_id)


def find_google_model(name: str) -> Model | None:
    """The model named in a /v1beta path: the full id or the bare Google id."""
    return _BY_ID.get(name) or _BY_ID.get(f"google/{name}")
