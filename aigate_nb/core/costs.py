"""What a request uses and costs: token usage read alike from both routes, the price table
(built in for the known models, or a JSON file of the user's), the cost of a result and the
estimate of a request before it is sent. Plain data and pure functions, except reading a
price file.

A figure's source is said with it: ``"gateway"`` (the reply's own ``cost``), ``"table"``
(tokens times the price table's rates: an estimate), ``"replay"`` (answered from the
history: nothing spent now) or None (unknown).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import ConfigurationError
from .files import FileRefused, parse_json, read_regular_file
from .models import bare_model_id, normalise_size

#: Where a cost figure came from (see the module's docstring).
GATEWAY, TABLE, REPLAY = "gateway", "table", "replay"
#: Tokens an input's text is counted as when estimating: about four characters a token.
CHARACTERS_PER_TOKEN = 4
#: A price file lists a few models in a few hundred bytes; a megabyte would price thousands.
MAX_PRICE_FILE_BYTES = 1_000_000
#: The largest rate (USD per million tokens) and tokens per image a price file may set: far
#: above any model's (120 USD, 2,520 tokens), low enough that no cost overflows to infinity.
MAX_RATE, MAX_IMAGE_TOKENS = 100_000, 1_000_000


@dataclass(frozen=True)
class Usage:
    """The tokens of one reply, as both routes report them: ``input_tokens`` (the prompt and its
    images), ``image_tokens`` (the output images), ``text_tokens`` (the output text) and
    ``thinking_tokens`` (billed at the text rate, on top). Zero where the reply said nothing."""

    input_tokens: int = 0
    image_tokens: int = 0
    text_tokens: int = 0
    thinking_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.image_tokens + self.text_tokens + self.thinking_tokens

    def __bool__(self) -> bool:
        return self.total_tokens > 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(*(getattr(self, f.name) + getattr(other, f.name) for f in fields(Usage)))

    def to_record(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_record(cls, value: Any) -> Usage:
        """A history record's usage: this class's own fields, or (records written before usage
        was normalised) the reply's usage as it came, of either route."""
        if isinstance(value, Usage):
            return value
        if not isinstance(value, Mapping):
            return cls()
        if any(f.name in value for f in fields(cls)):
            return cls(**{f.name: _count(value.get(f.name)) for f in fields(cls)})
        return usage_from_reply(value)


def usage_from_reply(raw: Mapping[str, Any], images: int = 1, tokens_per_image: int | None = None) -> Usage:
    """The ``Usage`` of a reply's ``usage`` (chat route) or ``usageMetadata`` (Google route).

    Google: image tokens are the ``candidatesTokensDetails`` item of modality ``IMAGE`` and
    thinking is ``thoughtsTokenCount``, apart from the candidates. Chat: ``completion_tokens``
    holds everything, split by ``completion_tokens_details`` (``image_tokens``,
    ``reasoning_tokens``). Where a reply does not say how many of its output tokens are
    image tokens, ``images`` x ``tokens_per_image`` are (at most what was output), else all of
    them: pricing image tokens at the text rate would be far off. A reply of no image has no image tokens.
    """
    if not isinstance(raw, Mapping):
        return Usage()
    if any(name in raw for name in ("promptTokenCount", "candidatesTokenCount", "totalTokenCount")):
        output = _count(raw.get("candidatesTokenCount"))
        details = {
            str(item.get("modality", "")).upper(): _count(item.get("tokenCount"))
            for item in raw.get("candidatesTokensDetails") or ()
            if isinstance(item, Mapping)
        }
        thinking = _count(raw.get("thoughtsTokenCount"))
        prompt = _count(raw.get("promptTokenCount")) + _count(raw.get("toolUsePromptTokenCount"))
    else:
        thinking = _count(_dict(raw.get("completion_tokens_details")).get("reasoning_tokens"))
        output = max(0, _count(raw.get("completion_tokens")) - thinking)
        image = _dict(raw.get("completion_tokens_details")).get("image_tokens")
        details = {"IMAGE": _count(image)} if image is not None else {}
        prompt = _count(raw.get("prompt_tokens"))
    if "IMAGE" in details:
        image = min(details["IMAGE"], output) if output else details["IMAGE"]
        text = details.get("TEXT", output - image)
    else:
        image = min(output, images * tokens_per_image) if tokens_per_image else output if images else 0
        text = output - image
    return Usage(prompt, image, max(0, text), thinking)


# -- prices -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Price:
    """One model's rates in USD per million tokens, and what an estimate counts per image.

    ``image_tokens`` are the output tokens of one image by size (``None``: a model without
    sizes), ``input_image_tokens`` those of one input image.
    """

    input: float
    image_output: float
    text_output: float
    image_tokens: Mapping[str | None, int] = field(default_factory=dict)
    input_image_tokens: int = 0
    default_size: str | None = None

    def cost(self, usage: Usage) -> float:
        """What ``usage`` costs at these rates; thinking at the text rate."""
        spent = (
            usage.input_tokens * self.input
            + usage.image_tokens * self.image_output
            + (usage.text_tokens + usage.thinking_tokens) * self.text_output
        )
        return spent / 1e6

    def tokens_per_image(self, size: str | None) -> int | None:
        size = normalise_size(size) or self.default_size
        return self.image_tokens.get(size, self.image_tokens.get(None))


# The official Gemini API pricing (ai.google.dev/gemini-api/docs/pricing) and the Vertex model
# page for 3.1 flash image: output images are billed as tokens, so many per image by size.
_FLASH_25 = Price(0.30, 30.0, 0.0, {None: 1290}, input_image_tokens=1290)  # text output not listed
_FLASH_31 = Price(0.50, 60.0, 3.0, {"512": 747, "1K": 1120, "2K": 1680, "4K": 2520}, 1120, "1K")
_PRO_3 = Price(2.0, 120.0, 12.0, {"1K": 1120, "2K": 1120, "4K": 2000}, 560, "1K")

BUILT_IN_PRICES: dict[str, Price] = {
    "gemini-2.5-flash-image": _FLASH_25,
    "gemini-2.5-flash-image-preview": _FLASH_25,
    "gemini-3.1-flash-image": _FLASH_31,
    "gemini-3.1-flash-image-preview": _FLASH_31,
    "gemini-3-pro-image": _PRO_3,
    "gemini-3-pro-image-preview": _PRO_3,
}

#: The names of a price file's fields, and the ``Price`` fields they set.
_FILE_FIELDS = {
    "input": "input",
    "image_output": "image_output",
    "text_output": "text_output",
    "image_tokens": "image_tokens",
    "input_image_tokens": "input_image_tokens",
}


@dataclass(frozen=True)
class PriceTable:
    """Rates by model id (``google/X`` is ``X``): the built-in ones, with those of a price file
    (``source``, the file's path) over them."""

    prices: Mapping[str, Price] = field(default_factory=lambda: dict(BUILT_IN_PRICES))
    source: str | None = None

    def price(self, model: str) -> Price | None:
        return self.prices.get(bare_model_id(model))

    def cost(self, model: str, usage: Usage, images: int = 1, size: str | None = None) -> float | None:
        """What a reply of ``model`` costs by this table: from its usage, or where the reply
        reported none, from ``images`` images of ``size``. None for a model not in the table."""
        price = self.price(model)
        if price is None:
            return None
        if not usage:
            per_image = price.tokens_per_image(size)
            if per_image is None:
                return None
            usage = Usage(image_tokens=images * per_image)
        return price.cost(usage)

    def tokens_per_image(self, model: str, size: str | None) -> int | None:
        price = self.price(model)
        return price.tokens_per_image(size) if price else None


def load_prices(path: str | os.PathLike | None) -> PriceTable:
    """The built-in table, with the prices of the JSON file at ``path`` over it (None: built-in only).

    The file maps model ids to rates in USD per million tokens, e.g.
    ``{"google/gemini-3-pro-image": {"input": 2, "image_output": 120, "text_output": 12}}``;
    a model already known keeps the rates the file leaves out; a new model needs all three
    (and ``image_tokens`` for estimates). A file that cannot be used raises
    ``ConfigurationError`` in one line that says what to fix.
    """
    if path is None or not str(path).strip():
        return PriceTable()
    where = Path(os.path.expanduser(os.fspath(path)))
    try:
        raw = read_regular_file(where, MAX_PRICE_FILE_BYTES)
    except FileNotFoundError:
        raise _bad_file(where, "there is no such file") from None
    except FileRefused as exc:
        raise _bad_file(where, exc.reason) from None
    except OSError as exc:
        raise _bad_file(where, f"it cannot be read ({exc.strerror or exc})") from None
    try:
        data = parse_json(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise _bad_file(where, "it is not UTF-8 text") from None
    except ValueError as exc:
        raise _bad_file(where, f"it is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise _bad_file(where, "it must be a JSON object mapping model ids to their rates")
    prices = dict(BUILT_IN_PRICES)
    for model, rates in data.items():
        prices[bare_model_id(model)] = _price_from_file(where, model, rates, prices.get(bare_model_id(model)))
    return PriceTable(prices, source=str(where))


def _price_from_file(where: Path, model: str, rates: Any, known: Price | None) -> Price:
    if not isinstance(rates, dict):
        raise _bad_file(where, f"the rates of {model!r} must be an object such as {{\"image_output\": 120}}")
    unknown = sorted(set(rates) - set(_FILE_FIELDS))
    if unknown:
        fields_known = ", ".join(_FILE_FIELDS)
        raise _bad_file(where, f"{model!r} has an unknown field {unknown[0]!r}; the fields are {fields_known}")
    values: dict[str, Any] = {}
    for name, value in rates.items():
        if name == "image_tokens":
            values[name] = _image_tokens(where, model, value)
        elif name == "input_image_tokens":
            if not _in_range(value, MAX_IMAGE_TOKENS):
                raise _bad_file(where, f"{model!r}: {name} must be a number from 0 to {MAX_IMAGE_TOKENS:,}, "
                                       f"not {value!r}")
            values[name] = int(value)
        elif not _in_range(value, MAX_RATE):
            raise _bad_file(where, f"{model!r}: {name} must be a number from 0 to {MAX_RATE:,} (USD per million "
                                   f"tokens), not {value!r}")
        else:
            values[_FILE_FIELDS[name]] = float(value)
    if known is not None:
        return replace(known, **values)
    missing = [name for name in ("input", "image_output", "text_output") if name not in values]
    if missing:
        raise _bad_file(where, f"{model!r} is not a built-in model, so it needs {', '.join(missing)} as well")
    return Price(**values)


def _image_tokens(where: Path, model: str, value: Any) -> dict[str | None, int]:
    if _in_range(value, MAX_IMAGE_TOKENS):
        return {None: int(value)}
    if isinstance(value, dict) and all(_in_range(v, MAX_IMAGE_TOKENS) for v in value.values()):
        return {normalise_size(size): int(count) for size, count in value.items()}
    raise _bad_file(where, f"{model!r}: image_tokens must be a number from 0 to {MAX_IMAGE_TOKENS:,} or an object "
                           "such as {\"1K\": 1120}")


def _in_range(value: Any, most: float) -> bool:
    number = _number(value)
    return number is not None and number <= most


def _bad_file(where: Path, reason: str) -> ConfigurationError:
    return ConfigurationError(
        f"The price file {where} cannot be used: {reason}; fix it, or unset AIGATE_PRICES "
        "(%aigate config prices=default) to use the built-in prices."
    )


# -- estimates --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """What sending a request ``count`` times will cost by the price table: ``each`` and in
    all (``cost``), or None for a model the table does not know. ``count`` is the copies that
    will be sent; replayed ones cost nothing and are not counted."""

    model: str
    image_size: str | None
    count: int
    each: float | None

    @property
    def cost(self) -> float | None:
        return None if self.each is None else self.each * self.count

    def describe(self) -> str:
        """``8 x 4K images of google/gemini-3-pro-image``."""
        size = f"{self.image_size} " if self.image_size else ""
        noun = "image" if self.count == 1 else "images"
        return f"{self.count} x {size}{noun} of {self.model}"


@dataclass(frozen=True)
class PlanEstimate:
    """Several requests estimated together (a batch, a grid), held against the budget as one:
    ``cost`` is the sum of those the table prices (None if it prices none), ``unknown`` how
    many it cannot price."""

    items: tuple[Estimate, ...]
    what: str = "these requests"

    @property
    def count(self) -> int:
        return sum(item.count for item in self.items)

    @property
    def cost(self) -> float | None:
        known = [item.cost for item in self.items if item.cost is not None and item.count]
        return sum(known) if known else None

    @property
    def unknown(self) -> int:
        return sum(item.count for item in self.items if item.cost is None)

    @property
    def model(self) -> str:
        """A model the table cannot price, else the first model (for the budget's lines)."""
        unpriced = [item.model for item in self.items if item.cost is None and item.count]
        return unpriced[0] if unpriced else (self.items[0].model if self.items else "")

    def describe(self) -> str:
        """``this batch: 40 images of 2 models``."""
        models = {item.model for item in self.items if item.count}
        noun = "image" if self.count == 1 else "images"
        of = f"{len(models)} models" if len(models) > 1 else (next(iter(models)) if models else "no model")
        return f"{self.what}: {self.count} {noun} of {of}"


def estimate_usage(prompt: str, input_images: int, model: str, size: str | None, prices: PriceTable) -> Usage | None:
    """The tokens one request will likely use: its text at about four characters a token, its
    input images, and one output image of ``size``. Thinking is not known ahead (a few hundred
    tokens on Gemini 3 models) and is left out. None for a model the table does not know."""
    price = prices.price(model)
    per_image = price.tokens_per_image(size) if price else None
    if price is None or per_image is None:
        return None
    text = max(1, math.ceil(len(prompt) / CHARACTERS_PER_TOKEN))
    return Usage(input_tokens=text + input_images * price.input_image_tokens, image_tokens=per_image)


# -- showing a figure -------------------------------------------------------------------------


def format_cost(cost: float | None, source: str | None = None) -> str:
    """``$0.067``; ``~$0.067`` when estimated from the price table; ``$0`` for nothing spent;
    ``?`` when unknown."""
    if cost is None:
        return "?"
    if cost == 0:
        return "$0"
    mark = "~" if source == TABLE else ""
    return f"{mark}${cost:.3f}" if cost < 100 else f"{mark}${cost:,.2f}"


def _count(value: Any) -> int:
    number = _number(value)
    return int(number) if number is not None else 0


def _number(value: Any) -> float | None:
    """A finite number of 0 or more, else None (bools are not numbers here)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        return None
    return value


def _dict(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def reported_cost(value: Any) -> float | None:
    """A gateway's ``cost`` figure, if it is a usable number."""
    number = _number(value)
    return float(number) if number is not None else None
