"""What a request asks for, once either route has parsed it: checks, defaults and token counts.

Both routes end in a ``Plan``; the checks here are the ones whose logic is shared, with the
wording each route's real counterpart uses.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass
from functools import cached_property

from .errors import ApiError
from .inputs import SourceImage
from .models import Model
from .render import Artwork

CHAT = "chat"
GOOGLE = "google"
# Facts §1.4 give 1,120 input tokens per image for 3.1-flash; the emulator charges it everywhere.
INPUT_IMAGE_TOKENS = 1120


@dataclass(frozen=True, eq=False)
class Plan:
    """A validated request: which model, what to draw (if anything), from which inputs."""

    model: Model
    prompt: str
    image: bool  # an image was asked for and the model can draw
    ratio: str | None
    size: str | None
    sources: tuple[SourceImage, ...]
    with_text: bool = True  # text may accompany the image (Google: TEXT in responseModalities)
    include_thoughts: bool = False
    seed: int = 0  # the request's seed; 0, like none, draws the picture of the request alone

    @cached_property
    def digest(self) -> bytes:
        """A hash of everything that decides the reply's content."""
        canonical = "\x1f".join(
            [self.model.id, self.prompt, str(self.image), str(self.ratio), str(self.size)]
            + [source.key for source in self.sources]
            + ([f"seed {self.seed}"] if self.seed else [])  # with no seed, the digest it always had
        )
        return hashlib.sha256(canonical.encode()).digest()

    @cached_property
    def thoughts(self) -> int:
        """The thinking tokens billed for this request: about 100-320 on Gemini 3 (facts §1.7,
        §1.11), chosen by the model, prompt, ratio and size. Not by the input images' bytes,
        which a file's metadata changes without changing what is drawn, nor its cost."""
        if not self.thinking:
            return 0
        canonical = "\x1f".join([self.model.id, self.prompt, str(self.ratio), str(self.size), str(len(self.sources))])
        return 100 + hashlib.sha256(canonical.encode()).digest()[5] % 221

    @property
    def thinking(self) -> bool:
        return bool(self.model.image and self.model.image.thinking)

    @property
    def with_draft(self) -> bool:
        """Whether a thought image is shown before the final one (Google route, Gemini 3)."""
        return self.image and self.thinking and self.include_thoughts

    def artwork(self) -> Artwork:
        """The picture this plan asks for; only meaningful when ``image`` is true."""
        caps = self.model.image
        assert caps is not None and self.ratio is not None
        width, height = caps.pixels(self.ratio, self.size)
        setting = f"{self.ratio} {self.size}" if self.size else self.ratio
        if self.seed:
            setting += f" · seed {self.seed}"
        return Artwork(
            width=width,
            height=height,
            mime=caps.mime(self.size),
            prompt=self.prompt,
            label=f"aigate_nb emulator · {self.model.id} · {setting}",
            sources=tuple(source.picture for source in self.sources),
            with_draft=self.with_draft,
            seed=self.seed,
        )

    def render_key(self) -> tuple[str, bool]:
        """The render cache key: the same key always renders the same bytes."""
        return (self.digest.hex(), self.with_draft)


def check_ratio(model: Model, value: object, route: str) -> str:
    """The requested aspect ratio, if this model supports it."""
    caps = model.image
    assert caps is not None
    if isinstance(value, str) and value in caps.ratios:
        return value
    allowed = sorted(caps.ratios, key=lambda r: tuple(int(n) for n in r.split(":")))
    if route == GOOGLE:
        # Google's exact wording (facts §1.2), listing this model's own set.
        listing = ", ".join(f"'{r}'" for r in allowed[:-1]) + f", or '{allowed[-1]}'"
        raise ApiError(
            400,
            "* GenerateContentRequest.generation_config.image_config.aspect_ratio: "
            f"aspect_ratio must be one of {listing}.\n",
        )
    raise ApiError(
        400,
        f"Aspect ratio {value!r} is not supported by {model.id}. "
        f"Supported values are: {', '.join(allowed)}.",
        param="image_config.aspect_ratio",
        code="invalid_value",
    )


def check_size(model: Model, value: object, route: str) -> str | None:
    """The canonical image size ('512', '1K', '2K', '4K', or None for 2.5), or a 400."""
    caps = model.image
    assert caps is not None
    if value is None:
        return caps.default_size

    def refuse(message: str) -> ApiError:
        return ApiError(400, message, param="image_config.image_size", code="invalid_value")

    if not isinstance(value, str):
        raise refuse(f"Image size must be a string such as \"1K\", not {value!r}.")
    if not caps.sizes:
        raise refuse(f"Image size {value} is not supported for this model.")
    # The OpenAI route speaks OpenRouter's '0.5K'; Google calls the same tier 512/512P/512PX
    # and rejects '0.5K' (facts §1.3).
    aliases = {"0.5K": "512"} if route == CHAT else {"512P": "512", "512PX": "512"}
    size = aliases.get(value, value) if "512" in caps.sizes else value
    if size in caps.sizes:
        return size
    if re.fullmatch(r"[0-9.]+k", value):
        raise refuse(
            f"Image size {value} is not supported: sizes use an uppercase 'K' "
            "(1K, 2K, 4K); lowercase values such as 1k are rejected."
        )
    if "512" not in caps.sizes:
        listing = "1K, 2K, 4K"
    elif route == CHAT:
        listing = "0.5K, 1K, 2K, 4K"
    else:
        listing = "1K, 2K, 4K, 512, 512P, 512PX"
    raise refuse(f"Image size {value} is not supported for this model. Supported values are: {listing}.")


def check_input_count(model: Model, count: int) -> None:
    """Refuse more input images than the model takes (facts §1.5)."""
    caps = model.image
    if caps is not None and count > caps.max_inputs:
        raise ApiError(
            400,
            f"Too many input images: {count} were sent, but {model.id} accepts at most "
            f"{caps.max_inputs} per request.",
            param="messages",
            code="too_many_images",
        )


def check_seed(value: object, route: str) -> int:
    """The request's seed as a number (0 when it sends none), or the 400 each route's API gives."""
    if value is None:
        return 0
    if isinstance(value, int) and not isinstance(value, bool) and -(2**31) <= value < 2**31:
        return value
    if route == GOOGLE:
        raise ApiError(400, f"Invalid value at 'generation_config.seed' (TYPE_INT32), {json.dumps(value)}")
    raise ApiError(
        400,
        f"Invalid type for 'seed': expected an integer, but got {json.dumps(value)} instead.",
        param="seed",
        code="invalid_type",
    )


def default_ratio(model: Model, sources: tuple[SourceImage, ...]) -> str:
    """The ratio closest to the first input's shape, else 1:1 (facts §1.2)."""
    caps = model.image
    assert caps is not None
    first = sources[0].summary if sources else None
    if first is None or not first.width or not first.height:
        return "1:1"
    shape = math.log(first.width / first.height)

    def distance(ratio: str) -> float:
        across, down = (int(n) for n in ratio.split(":"))
        return abs(math.log(across / down) - shape)

    return min(caps.ratios, key=distance)


def reply_text(plan: Plan) -> str | None:
    """What the model says beside its image: None, "" or a short sentence, chosen by the prompt.

    The real gateway produces all three, so clients must cope with each; the choice is the
    prompt's SHA-256 first byte modulo 3 (0: None, 1: "", 2: a sentence).
    """
    choice = hashlib.sha256(plan.prompt.encode()).digest()[0] % 3
    if choice == 0:
        return None
    if choice == 1:
        return ""
    subject = plan.prompt if len(plan.prompt) <= 60 else plan.prompt[:59] + "…"
    return f"Here is the image: {subject}"


def text_only_reply(plan: Plan) -> str:
    """The reply text when no image is made because none was asked for or the model cannot draw."""
    if plan.model.image is None:
        return (
            f"{plan.model.id} answers in text only; in the aigate_nb emulator every text reply is "
            "this fixed sentence."
        )
    return (
        "No image was made: the request did not ask for one. Send "
        '"modalities": ["image", "text"] to get an image.'
    )


REFUSAL_TEXT = "I could not generate an image for this request. Try rephrasing the prompt."


@dataclass(frozen=True)
class Usage:
    """Token counts of one reply, in the proportions the real models report (facts §1.4, §1.11)."""

    prompt_text: int
    prompt_images: int
    image: int
    text: int
    thoughts: int

    @property
    def prompt(self) -> int:
        return self.prompt_text + self.prompt_images

    @property
    def candidates(self) -> int:
        return self.image + self.text

    @property
    def total(self) -> int:
        return self.prompt + self.candidates + self.thoughts


def charge_for(plan: Plan, usage: Usage) -> float:
    """What the gateway charges for a reply with this usage, in USD: tokens times the model's
    rates, thinking at the text rate."""
    caps = plan.model.image
    if caps is None:
        return 0.0
    prompt_rate, image_rate, text_rate = caps.rates
    spent = usage.prompt * prompt_rate + usage.image * image_rate + (usage.text + usage.thoughts) * text_rate
    return round(spent / 1e6, 8)


def usage_for(plan: Plan, *, image: bool, text: str | None) -> Usage:
    """Token counts for a reply with (or without) an image and this text."""
    caps = plan.model.image
    return Usage(
        prompt_text=max(1, math.ceil(len(plan.prompt) / 4)),
        prompt_images=INPUT_IMAGE_TOKENS * len(plan.sources),
        image=caps.tokens[plan.size] if image and caps else 0,
        text=math.ceil(len(text) / 4) if text else 0,
        thoughts=plan.thoughts,  # billed blocked or not
    )
