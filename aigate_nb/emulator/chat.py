"""The OpenAI-compatible route, POST /v1/chat/completions: request checks and reply shapes."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from .billing import Bill
from .errors import ApiError
from .generation import (
    CHAT,
    REFUSAL_TEXT,
    Plan,
    Usage,
    check_input_count,
    check_ratio,
    check_seed,
    check_size,
    default_ratio,
    reply_text,
    text_only_reply,
    usage_for,
)
from .inputs import SourceImage, decode_image, image_from_url
from .models import find_model
from .render import Rendered

_TOP_LEVEL_ADVICE = "send image_config at the top level of the request, beside model and messages"


def _bad(message: str, param: str | None = None, code: str | None = "invalid_value") -> ApiError:
    return ApiError(400, message, param=param, code=code)


def parse_chat(body: Any) -> Plan:
    """Check a chat completions body the way the gateway does and say what to make."""
    if not isinstance(body, dict):
        raise _bad("The request body must be a JSON object.", code="invalid_json")
    _refuse_misplaced_config(body)
    model_id = body.get("model")
    if not isinstance(model_id, str) or not model_id:
        raise _bad("Missing required parameter: 'model'.", "model", "missing_required_parameter")
    model = find_model(model_id)
    if model is None:
        raise _bad(
            f"The model '{model_id}' does not exist; check the exact model id in /v1/models.",
            "model",
            "model_not_found",
        )
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad(
            "Missing required parameter: 'messages' (a non-empty list).",
            "messages",
            "missing_required_parameter",
        )
    last = len(messages) - 1
    if messages[last].get("role") != "user":
        raise _bad(
            "The last message must have role 'user': put the prompt in a user message.",
            f"messages[{last}].role",
        )
    if body.get("stream"):
        raise _bad(
            'The aigate_nb emulator does not stream; send "stream": false.', "stream", "unsupported_value"
        )
    want_image = "image" in _modalities(body.get("modalities"))
    if want_image and model.image is None:
        raise _bad(
            f"The model '{model.id}' cannot output images; choose a model whose output_modalities "
            "include \"image\" in /v1/models.",
            "modalities",
        )
    prompt, urls = _read_content(messages[last].get("content"), f"messages[{last}].content")
    check_input_count(model, len(urls))
    sources = [_source(url, where) for url, where in urls] or _latest_earlier_image(messages[:last])
    if not prompt and not sources:
        raise _bad("The last user message has no text and no image: put the prompt in it.", "messages")
    ratio = size = None
    if model.image is not None:
        config = _image_config(body.get("image_config"))
        value = config.get("aspect_ratio")
        ratio = default_ratio(model, tuple(sources)) if value is None else check_ratio(model, value, CHAT)
        size = check_size(model, config.get("image_size"), CHAT)
    seed = check_seed(body.get("seed"), CHAT)
    return Plan(model, prompt, want_image, ratio, size, tuple(sources), seed=seed)


def chat_reply(
    plan: Plan, rendered: Rendered | None, outcome: str | None, created: int, bill: Bill | None = None
) -> dict[str, Any]:
    """The chat.completion body; ``outcome`` names a simulated 200 without an image, if any.
    ``bill`` charges the reply and says what cost to report in ``usage.cost`` (None: none)."""
    reply: dict[str, Any] = {
        # Deterministic, like everything else the emulator makes, in the gateway's gate-<digits> form.
        "id": f"gate-{int.from_bytes(plan.digest[:8], 'big') % 10**10:010d}",
        "object": "chat.completion",
        "created": created,
        "model": plan.model.id,
    }
    if outcome == "prompt-blocked":
        usage = usage_for(plan, image=False, text=None)
        reply["choices"] = []
        reply["prompt_feedback"] = {"block_reason": "SAFETY"}
        reply["usage"] = _usage(plan, usage, bill)
        return reply
    if outcome == "image-safety":
        usage = usage_for(plan, image=False, text=None)
        choice = {
            "index": 0,
            "message": {"role": "assistant", "content": None},
            "finish_reason": "content_filter",
            "native_finish_reason": "IMAGE_SAFETY",
        }
    elif plan.image and rendered is not None and outcome is None:
        text = reply_text(plan)
        usage = usage_for(plan, image=True, text=text)
        url = f"data:{rendered.mime};base64,{rendered.data}"
        images = [{"type": "image_url", "image_url": {"url": url}}]
        message = {"role": "assistant", "content": text, "images": images}
        choice = {"index": 0, "message": message, "finish_reason": "stop"}
    else:
        text = REFUSAL_TEXT if outcome == "no-image" else text_only_reply(plan)
        usage = usage_for(plan, image=False, text=text)
        choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
    reply["choices"] = [choice]
    reply["usage"] = _usage(plan, usage, bill)
    return reply


def _usage(plan: Plan, usage: Usage, bill: Bill | None) -> dict[str, Any]:
    """``usage`` as OpenRouter-style gateways send it: completion tokens hold the image, the text
    and the reasoning, split in ``completion_tokens_details``; ``cost`` when the bill says one."""
    body: dict[str, Any] = {
        "prompt_tokens": usage.prompt,
        "completion_tokens": usage.candidates + usage.thoughts,
        "total_tokens": usage.total,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": usage.thoughts, "image_tokens": usage.image},
    }
    cost = bill(plan, usage) if bill is not None else None
    if cost is not None:
        body["cost"] = cost
    return body


def _refuse_misplaced_config(body: dict[str, Any]) -> None:
    """The mistakes the gateway's doc warns about: image settings anywhere but top-level image_config."""
    if "extra_body" in body:
        raise _bad(
            "'extra_body' is an option of the openai Python client, not a request field: the client "
            f"merges it into the body. Send modalities and image_config at the top level; {_TOP_LEVEL_ADVICE}.",
            "extra_body",
            "unknown_parameter",
        )
    for name in ("aspect_ratio", "image_size"):
        if name in body:
            raise _bad(
                f"'{name}' belongs inside image_config: {_TOP_LEVEL_ADVICE}, "
                f'as {{"image_config": {{"{name}": ...}}}}.',
                name,
                "unknown_parameter",
            )
    messages = body.get("messages")
    for index, message in enumerate(messages if isinstance(messages, list) else []):
        if not isinstance(message, dict):
            raise _bad(f"messages[{index}] must be an object with a role and a content.", f"messages[{index}]")
        if "image_config" in message:
            raise _bad(
                f"image_config was found inside messages[{index}]; {_TOP_LEVEL_ADVICE}.",
                f"messages[{index}].image_config",
                "unknown_parameter",
            )


def _image_config(config: Any) -> dict[str, Any]:
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise _bad("image_config must be an object with aspect_ratio and image_size.", "image_config")
    for camel, snake in (("aspectRatio", "aspect_ratio"), ("imageSize", "image_size")):
        if camel in config:
            raise _bad(
                f"image_config has no field '{camel}': on this route it is spelt '{snake}'.",
                f"image_config.{camel}",
                "unknown_parameter",
            )
    return config


def _modalities(value: Any) -> list[str]:
    """The requested output modalities; without any, the models answer in text only."""
    if value is None:
        return ["text"]
    if not isinstance(value, list) or not all(isinstance(m, str) and m in ("image", "text") for m in value):
        raise _bad('modalities must be a list of "image" and "text", such as ["image", "text"].', "modalities")
    return value


def _read_content(content: Any, where: str) -> tuple[str, list[tuple[str, str]]]:
    """The prompt text and the image URLs (each with its position) of a message's content."""
    if isinstance(content, str):
        return content.strip(), []
    if not isinstance(content, list):
        raise _bad(f"{where} must be a string or a list of content parts.", where)
    texts: list[str] = []
    urls: list[tuple[str, str]] = []
    for index, part in enumerate(content):
        here = f"{where}[{index}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text" and isinstance(part.get("text"), str):
            texts.append(part["text"])
        elif kind == "image_url":
            urls.append((_url_of(part.get("image_url"), here), f"{here}.image_url.url"))
        else:
            raise _bad(
                f'{here} is not a content part: use {{"type": "text", "text": ...}} or '
                '{"type": "image_url", "image_url": {"url": ...}}.',
                f"{here}.type",
            )
    return "\n".join(texts).strip(), urls


def _url_of(image_url: Any, where: str) -> str:
    url = image_url.get("url") if isinstance(image_url, dict) else image_url
    if not isinstance(url, str):
        raise _bad(
            f'{where}.image_url must be {{"url": "data:image/...;base64,..." or "https://..."}}.',
            f"{where}.image_url",
        )
    return url


def _source(url: str, where: str) -> SourceImage:
    """Decode a data URL, or stand in for an http(s) URL, as an input image."""
    if url.startswith(("http://", "https://")):
        return image_from_url(url)
    # partition, not a regex: the payload may be tens of megabytes.
    head, comma, payload = url.partition(",")
    params = head[len("data:"):].split(";") if head.startswith("data:") else []
    if not comma or not params or not params[0].startswith("image/") or "base64" not in params[1:]:
        raise _bad(
            f"Unable to process input image: {where} must be a data:image/...;base64,... URL "
            "or an https:// URL.",
            where,
            "invalid_image",
        )
    try:
        data = base64.b64decode(payload, validate=True)
    except binascii.Error as exc:
        raise _bad(
            f"Unable to process input image: {where} is not valid base64 ({exc}).", where, "invalid_image"
        ) from None
    return decode_image(data, params[0], where)


def _latest_earlier_image(messages: list[Any]) -> list[SourceImage]:
    """The most recent image in the conversation, which a text-only follow-up edits."""
    for index in range(len(messages) - 1, -1, -1):
        found = _image_urls(messages[index], f"messages[{index}]")
        if found:
            return [_source(*found[-1])]
    return []


def _image_urls(message: dict[str, Any], where: str) -> list[tuple[str, str]]:
    """The image URLs of an earlier message: its image_url parts, then an assistant's images."""
    content = message.get("content")
    items = list(enumerate(content)) if isinstance(content, list) else []
    parts = [(f"{where}.content[{n}]", part) for n, part in items]
    parts += [(f"{where}.images[{n}]", item) for n, item in enumerate(message.get("images") or [])]
    return [
        (_url_of(part.get("image_url"), here), f"{here}.image_url.url")
        for here, part in parts
        if isinstance(part, dict) and part.get("type") == "image_url"
    ]
