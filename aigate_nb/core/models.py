"""What each Gemini image model accepts: ratios, sizes and input images.

Used to refuse bad options before a request is sent. An unknown model id
passes through unchecked: the gateway is the judge of models we do not know.
"""

from __future__ import annotations

import difflib
import math
from dataclasses import dataclass

from .errors import InputError

BASE_RATIOS = ("1:1", "2:3", "3:2", "3:4", "4:3", "4:5", "5:4", "9:16", "16:9", "21:9")
EXTRA_RATIOS = ("1:4", "4:1", "1:8", "8:1")
ALL_SIZES = ("512", "1K", "2K", "4K")


@dataclass(frozen=True)
class ModelSpec:
    """The options one model takes; ``sizes`` is empty where no size may be sent."""

    ratios: tuple[str, ...]
    sizes: tuple[str, ...]
    max_images: int


_FLASH_25 = ModelSpec(BASE_RATIOS, (), 3)
_PRO_3 = ModelSpec(BASE_RATIOS, ("1K", "2K", "4K"), 14)
_FLASH_31 = ModelSpec(BASE_RATIOS + EXTRA_RATIOS, ALL_SIZES, 14)

_SPECS = {
    "gemini-2.5-flash-image": _FLASH_25,
    "gemini-2.5-flash-image-preview": _FLASH_25,
    "gemini-3-pro-image": _PRO_3,
    "gemini-3-pro-image-preview": _PRO_3,
    "gemini-3.1-flash-image": _FLASH_31,
    "gemini-3.1-flash-image-preview": _FLASH_31,
}

DEFAULT_MODEL = "google/gemini-3.1-flash-image-preview"
KNOWN_MODELS = tuple(f"google/{name}" for name in _SPECS)


#: The gateway's two routes: ``/v1/chat/completions`` and Google's ``generateContent``.
ROUTES = ("chat", "google")


def bare_model_id(model: str) -> str:
    """A model id as the package compares, prices and hashes it, however it was spelt:
    ``google/gemini-3-pro-image``, ``models/gemini-3-pro-image`` and ``gemini-3-pro-image``
    are one model."""
    return str(model).strip().removeprefix("models/").removeprefix("google/")


def spec_for(model: str) -> ModelSpec | None:
    """The capabilities of ``model`` (however spelt, see ``bare_model_id``), or None."""
    return _SPECS.get(bare_model_id(model))


def normalise_size(size: str | None) -> str | None:
    """``1k`` -> ``1K``, ``0.5K``/``512px`` -> ``512``; other strings are returned stripped."""
    if size is None:
        return None
    text = str(size).strip().upper()
    if text in ("0.5K", "512", "512P", "512PX"):
        return "512"
    if text.endswith("PX"):
        text = text[:-2]
    return text


def normalise_ratio(ratio: str | None) -> str | None:
    """Accept ``16x9``, ``16/9`` and spaces as spellings of ``16:9``."""
    if ratio is None:
        return None
    text = str(ratio).strip().replace(" ", "")
    for sep in ("x", "X", "/", "×"):
        text = text.replace(sep, ":")
    return text


def _did_you_mean(value: str, choices: tuple[str, ...]) -> str:
    close = difflib.get_close_matches(value, choices, n=1, cutoff=0.5)
    return f"; did you mean {close[0]}?" if close else "; choose one of them."


def _closest_ratio(value: str, choices: tuple[str, ...]) -> str:
    """The allowed ratio nearest in shape to ``value`` (``16:10`` -> ``3:2``)."""
    try:
        width, height = (float(x) for x in value.split(":"))
        target = math.log(width / height)
    except (ValueError, ZeroDivisionError):
        return _did_you_mean(value, choices)
    best = min(choices, key=lambda c: abs(math.log(float(c.split(":")[0]) / float(c.split(":")[1])) - target))
    return f"; the closest is {best}."


def normalise_options(
    model: str, aspect_ratio: str | None, image_size: str | None, n_images: int
) -> tuple[str | None, str | None]:
    """Normalise the ratio and size and check them against ``model``.

    Returns the normalised ``(aspect_ratio, image_size)``; raises ``InputError``
    with the allowed values when the model does not take them.
    """
    ratio = normalise_ratio(aspect_ratio)
    size = normalise_size(image_size)
    if ratio is not None and ratio.count(":") != 1:
        raise InputError(f"aspect ratio {aspect_ratio!r} is not a ratio; write it like 16:9.")
    spec = spec_for(model)
    if spec is None:
        return ratio, size
    if ratio is not None and ratio not in spec.ratios:
        raise InputError(
            f"aspect ratio {aspect_ratio!r} is not one of {', '.join(spec.ratios)} "
            f"for {model}{_closest_ratio(ratio, spec.ratios)}"
        )
    if size is not None and size not in spec.sizes:
        if not spec.sizes:
            raise InputError(
                f"{model} makes images of about 1K only and takes no image size; "
                "leave the size out, or choose a Gemini 3 model for 2K or 4K."
            )
        raise InputError(
            f"image size {image_size!r} is not one of {', '.join(spec.sizes)} "
            f"for {model}{_did_you_mean(size, spec.sizes)}"
        )
    if n_images > spec.max_images:
        raise InputError(
            f"{model} takes at most {spec.max_images} input images, and {n_images} were given; "
            "pass fewer images."
        )
    return ratio, size


def same_model(a: str, b: str) -> bool:
    """The same model, however spelt: ``google/gemini-3-pro-image`` is ``gemini-3-pro-image``."""
    return bare_model_id(a) == bare_model_id(b)


#: The long edge (pixels) up to which a picture counts as each size, between the sizes' own.
_SIZE_EDGES = (("512", 768), ("1K", 1536), ("2K", 3072), ("4K", math.inf))


def keep_shape(
    model: str, width: int, height: int, aspect_ratio: str | None = None, image_size: str | None = None
) -> tuple[str | None, str | None]:
    """The ratio and size for an edit of a ``width`` x ``height`` source that keeps its shape:
    the source's own ``aspect_ratio``/``image_size`` (as it was asked for) where ``model``
    takes them, else the nearest that it takes. (None, None) for a model we do not know."""
    spec = spec_for(model)
    if spec is None or width <= 0 or height <= 0:
        return None, None
    ratio = aspect_ratio if aspect_ratio in spec.ratios else min(
        spec.ratios, key=lambda r: abs(math.log(width / height) - math.log(_ratio_value(r)))
    )
    size = None
    if spec.sizes:
        wanted = image_size or next(name for name, edge in _SIZE_EDGES if max(width, height) <= edge)
        order = [name for name, _ in _SIZE_EDGES]
        size = wanted if wanted in spec.sizes else min(
            spec.sizes, key=lambda s: abs(order.index(s) - order.index(wanted)) if wanted in order else 0
        )
    return ratio, size


def _ratio_value(ratio: str) -> float:
    width, height = ratio.split(":")
    return float(width) / float(height)


#: Each size's long edge at 1:1: at any ratio its pictures hold about that edge squared in pixels
#: (a few percent more at most: 1264x848 at 3:2 1K).
SQUARE_SIDES = {"512": 512, "1K": 1024, "2K": 2048, "4K": 4096}


def size_for_pixels(model: str, width: int, height: int) -> str | None:
    """The smallest size ``model`` takes whose pictures hold ``width`` x ``height`` pixels, within
    a tenth (its largest when none does): an edit at that size loses none of them. None for a
    model that takes no size, or one we do not know."""
    spec = spec_for(model)
    if spec is None or not spec.sizes:
        return None
    taken = [name for name in SQUARE_SIDES if name in spec.sizes]
    return next((name for name in taken if 1.1 * SQUARE_SIDES[name] ** 2 >= width * height), taken[-1])
