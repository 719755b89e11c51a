"""The gateway's wire format: request bodies of both routes and the parsing of
their replies. Pure functions, no I/O: the protocol's unit tests live here.
"""

from __future__ import annotations

import json
import math
import re
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..core.costs import reported_cost
from ..core.errors import (
    AuthenticationError,
    BadRequestError,
    GatewayError,
    InputError,
    NoImageError,
    QuotaExhausted,
    RateLimitError,
    ResponseError,
    ServerError,
)
from ..core.images import ImageInput, ReplyImage, b64decode, b64encode, decode_data_url, split_data_url
from ..core.text import one_line

CHAT_PATH = "/v1/chat/completions"
MODELS_PATH = "/v1/models"
BALANCE_PATH = "/v1/balance"


def google_path(model: str) -> str:
    return f"/v1beta/models/{model}:generateContent"


@dataclass
class Reply:
    """What a successful reply holds, whichever route it came from.

    ``model_parts`` (Google route) are the model's parts as received, thought
    parts dropped, with each image's base64 replaced by ``{"imageIndex": i}``
    into ``images`` so that a later turn can replay them with their signatures.
    """

    images: list[ReplyImage]
    text: str | None = None
    finish_reason: str | None = None
    usage: dict[str, Any] = field(default_factory=dict)
    model_parts: list[dict[str, Any]] | None = None
    response_id: str | None = None
    #: What the gateway says it charged (``usage.cost``; ``usageMetadata.cost`` on the Google route), in USD.
    cost: float | None = None


# -- request bodies ---------------------------------------------------------------------------

def _image_config(aspect_ratio: str | None, image_size: str | None, ratio_key: str, size_key: str) -> dict:
    config = {}
    if aspect_ratio:
        config[ratio_key] = aspect_ratio
    if image_size:
        config[size_key] = image_size
    return config


def build_chat_body(
    prompt: str,
    model: str,
    inputs: Sequence[ImageInput] = (),
    aspect_ratio: str | None = None,
    image_size: str | None = None,
) -> dict[str, Any]:
    """The ``/v1/chat/completions`` body, as the gateway's documentation shows it.

    A prompt alone is a plain string; with images the content is a list of a
    text part and ``image_url`` parts. ``image_config`` goes at the top level,
    and only when a ratio or size is set; the ``512`` tier is spelt ``0.5K``
    on this route, as the OpenAI-compatible dialect has it.
    """
    if inputs:
        parts: list[dict[str, Any]] = [{"type": "text", "text": prompt}]
        for item in inputs:
            url = item.url or f"data:{item.mime};base64,{b64encode(item.payload)}"
            parts.append({"type": "image_url", "image_url": {"url": url}})
        content: str | list[dict[str, Any]] = parts
    else:
        content = prompt
    body: dict[str, Any] = {
        "model": model,
        "messages": [{"role": "user", "content": content}],
        "modalities": ["image", "text"],
    }
    size = "0.5K" if image_size == "512" else image_size
    config = _image_config(aspect_ratio, size, "aspect_ratio", "image_size")
    if config:
        body["image_config"] = config
    return body


def build_google_body(
    prompt: str,
    inputs: Sequence[ImageInput] = (),
    aspect_ratio: str | None = None,
    image_size: str | None = None,
    turns: Sequence[dict[str, Any]] = (),
) -> dict[str, Any]:
    """The ``/v1beta/models/{model}:generateContent`` body.

    This route carries images inline only: an ``http(s)`` URL is refused here,
    before anything is sent, rather than fetched behind the user's back.
    ``turns`` are earlier contents of a conversation (``user_turn`` and
    ``model_turn``), sent before this prompt's user turn.
    """
    parts: list[dict[str, Any]] = [{"text": prompt}]
    for item in inputs:
        if item.is_url:
            raise InputError(
                f"The Google route takes inline images only, not the URL {item.url}; "
                "download the image and pass the file, or use route='chat', which lets the gateway fetch URLs."
            )
        parts.append({"inlineData": {"mimeType": item.mime, "data": b64encode(item.payload)}})
    generation: dict[str, Any] = {"responseModalities": ["TEXT", "IMAGE"]}
    config = _image_config(aspect_ratio, image_size, "aspectRatio", "imageSize")
    if config:
        generation["imageConfig"] = config
    return {"contents": [*turns, {"role": "user", "parts": parts}], "generationConfig": generation}


def user_turn(prompt: str) -> dict[str, Any]:
    """An earlier prompt, as a user turn of a conversation."""
    return {"role": "user", "parts": [{"text": prompt}]}


def model_turn(parts: Sequence[dict[str, Any]], images: Sequence[tuple[str, bytes]]) -> dict[str, Any]:
    """A model turn to send back in a conversation: ``parts`` as the reply gave them
    (``model_parts``, thought signatures and all), each ``{"imageIndex": i}`` given
    the bytes of ``images[i]`` (mime, data) again."""
    out = []
    for part in parts:
        inline = part.get("inlineData") if isinstance(part, dict) else None
        if isinstance(inline, dict) and "imageIndex" in inline:
            index = inline["imageIndex"]
            if not isinstance(index, int) or not 0 <= index < len(images):
                raise InputError(
                    "An earlier result's model parts do not match its images, so its turn cannot be sent back."
                )
            mime, data = images[index]
            part = {**part, "inlineData": {"mimeType": inline.get("mimeType") or mime, "data": b64encode(data)}}
        out.append(part)
    return {"role": "model", "parts": out}


def inline_size(contents: Iterable[dict[str, Any]]) -> int:
    """Characters of base64 image data in ``contents`` (what counts against the inline budget)."""
    return sum(
        len(part["inlineData"].get("data") or "")
        for content in contents
        for part in content.get("parts", ())
        if isinstance(part, dict) and isinstance(part.get("inlineData"), dict)
    )


# -- reading a reply's bytes ------------------------------------------------------------------

#: JSON strings longer than this (bytes) may be image payloads decoded straight from the reply.
PAYLOAD_MIN = 1 << 16
_DATA_URL_HEAD_MAX = 256


def load_reply(raw: bytes, route: str) -> tuple[Any, dict[str, bytes]]:
    """A generation reply's JSON, and the images already decoded from it, by marker.

    The result is always what ``json.loads(raw)`` gives, except that the base64 of large images
    may be replaced by markers, keys of the returned dict, which ``parse_chat_reply`` and
    ``parse_google_reply`` look up instead of decoding. A 4K reply is tens of megabytes, nearly
    all of it one base64 string: parsed as JSON, it is copied into a str, copied again as the JSON
    value, and a third time when the data URL is sliced, each copy slower than decoding it. Here
    each long string of clean base64 (alone, or after a ``data:...,`` head) is decoded straight
    from ``raw`` and the small rest parsed. A marker anywhere the route's parser does not decode
    images, or any doubt, and the whole reply is parsed as JSON instead.
    """
    if len(raw) > PAYLOAD_MIN:
        token = f"aigate-payload-{secrets.token_hex(8)}-"
        skeleton, payloads = _cut_payloads(raw, token)
        if payloads:
            try:
                data = json.loads(skeleton)
            except ValueError:
                pass  # so is raw, below: cutting only swaps base64 for other letters and digits
            else:
                if _markers_only_at(data, token, _IMAGE_PATHS[route]):
                    return data, payloads
    return json.loads(raw), {}


def _cut_payloads(raw: bytes, token: str) -> tuple[bytes, dict[str, bytes]]:
    """``raw`` with the base64 of each long JSON string of clean base64 (or data URL of it)
    replaced by a marker (``token`` and a number), and the decoded bytes by marker."""
    view = memoryview(raw)
    pieces: list[Any] = []
    payloads: dict[str, bytes] = {}
    kept = 0  # raw[kept:] is not in pieces yet
    quote = raw.find(b'"')
    while quote >= 0:
        end = raw.find(b'"', quote + 1)
        if end < 0:
            break
        start = _payload_start(raw, quote, end) if end - quote > PAYLOAD_MIN else None
        if start is not None:
            try:
                data = b64decode(bytes(view[start:end]))
            except ResponseError:
                pass  # not clean base64: json.loads reads it, the parser judges it
            else:
                marker = f"{token}{len(payloads)}"
                payloads[marker] = data
                pieces += (view[kept:start], marker.encode("ascii"))
                kept = end
        quote = end
    if not payloads:
        return raw, payloads
    pieces.append(view[kept:])
    return b"".join(pieces), payloads


def _payload_start(raw: bytes, quote: int, end: int) -> int | None:
    """Where base64 would start in the JSON string opened at ``quote`` and closed at ``end``.

    None when ``quote`` is escaped (it is inside a longer string). Otherwise, if the text from
    there to ``end`` is base64 (which has no quotes nor backslashes, so ``end`` is not escaped),
    alone or after a ``data:...,`` head (left to ``json.loads``, escapes and all), it is that
    whole string: outside strings, JSON has no room for a ``data:`` or a run of base64 letters.
    """
    backslashes = 0
    while quote > backslashes and raw[quote - backslashes - 1] == 0x5C:
        backslashes += 1
    if backslashes % 2:
        return None
    if raw.startswith(b"data:", quote + 1):
        comma = raw.find(b",", quote + 1, min(end, quote + 1 + _DATA_URL_HEAD_MAX))
        return comma + 1 if comma >= 0 else None
    return quote + 1


def _chat_image_path(path: tuple) -> bool:
    """``choices[0].message.images[i].image_url(.url)``, or the same in ``content[i]``."""
    return (
        len(path) in (6, 7)
        and path[:3] == ("choices", 0, "message")
        and path[3] in ("images", "content")
        and type(path[4]) is int
        and path[5] == "image_url"
        and path[6:] in ((), ("url",))
    )


def _google_image_path(path: tuple) -> bool:
    """``candidates[0].content.parts[i].inlineData.data`` (or ``inline_data``)."""
    return (
        len(path) == 7
        and path[:4] == ("candidates", 0, "content", "parts")
        and type(path[4]) is int
        and path[5] in ("inlineData", "inline_data")
        and path[6] == "data"
    )


_IMAGE_PATHS: dict[str, Callable[[tuple], bool]] = {"chat": _chat_image_path, "google": _google_image_path}


def _markers_only_at(data: Any, token: str, allowed: Callable[[tuple], bool]) -> bool:
    """Whether every string holding ``token`` sits where ``allowed`` says images are decoded."""
    stack: list[tuple[tuple, Any]] = [((), data)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            if token in value and not allowed(path):
                return False
        elif isinstance(value, dict):
            for key, item in value.items():
                if token in key:
                    return False
                stack.append(((*path, key), item))
        elif isinstance(value, list):
            stack.extend(((*path, index), item) for index, item in enumerate(value))
    return True


def _payload_bytes(payload: str, payloads: Mapping[str, bytes] | None) -> bytes:
    data = payloads.get(payload) if payloads else None
    return b64decode(payload) if data is None else data


def _data_url_image(url: str, payloads: Mapping[str, bytes] | None) -> ReplyImage:
    mime, payload = split_data_url(url)
    return ReplyImage(mime, _payload_bytes(payload, payloads))


# -- replies ----------------------------------------------------------------------------------

_MARKDOWN_DATA_URL = re.compile(r"!\[[^\]]*\]\((data:image/[a-z+.-]+;base64,[A-Za-z0-9+/=\s]+)\)")


def _require_dict(data: Any) -> dict:
    if not isinstance(data, dict):
        raise ResponseError(
            f"The gateway's reply is a JSON {type(data).__name__}, not an object; run the request again."
        )
    return data


def _raise_embedded_error(data: dict) -> None:
    """Some gateways report a failure inside a 200 body: ``{"error": {...}}``;
    its ``code`` gives the status when it is one, else it counts as a server error."""
    if "error" not in data or data.get("choices") or data.get("candidates"):
        return
    error = data["error"]
    code = error.get("code") if isinstance(error, dict) else None
    status = int(str(code)) if str(code).isdigit() and 400 <= int(str(code)) < 600 else 500
    raise error_from_body(status, json.dumps({"error": error}))


def _images_from_markdown(text: str) -> list[ReplyImage]:
    return [ReplyImage(*decode_data_url(re.sub(r"\s", "", m))) for m in _MARKDOWN_DATA_URL.findall(text)]


def parse_chat_reply(data: Any, payloads: Mapping[str, bytes] | None = None) -> Reply:
    """Read a ``/v1/chat/completions`` reply: images from ``message.images``
    (then, as some gateways do, from ``image_url`` parts or Markdown data URLs
    in ``content``), the text from ``content`` (which may be null), the finish
    reason and the usage. No image raises ``NoImageError``. ``payloads`` are
    images already decoded by ``load_reply``.
    """
    data = _require_dict(data)
    _raise_embedded_error(data)
    choices = _list(data.get("choices"))
    feedback = _dict(data.get("prompt_feedback") or data.get("promptFeedback"))
    usage = _dict(data.get("usage"))
    charged = reported_cost(usage.get("cost"))
    if not choices or not isinstance(choices[0], dict):
        raise NoImageError(
            block_reason=_str(feedback.get("block_reason") or feedback.get("blockReason")) or "UNKNOWN",
            usage=usage, cost=charged,
        )
    choice = choices[0]
    message = _dict(choice.get("message"))
    images: list[ReplyImage] = []
    for item in _list(message.get("images")):
        url = _image_url_of(item)
        if url and url.startswith("data:"):
            images.append(_data_url_image(url, payloads))
    texts: list[str] = []
    content = message.get("content")
    if isinstance(content, str):
        texts.append(content)
    elif isinstance(content, list):
        for part in content:
            if not isinstance(part, dict):
                continue
            if isinstance(part.get("text"), str):
                texts.append(part["text"])
            url = _image_url_of(part)
            if not images and url and url.startswith("data:"):
                images.append(_data_url_image(url, payloads))
    text = "\n".join(t for t in texts if t.strip()) or None
    if not images and text:
        images = _images_from_markdown(text)
        if images:
            text = _MARKDOWN_DATA_URL.sub("", text).strip() or None
    finish = _str(choice.get("finish_reason"))
    if not images:
        raise NoImageError(finish_reason=_str(choice.get("native_finish_reason")) or finish, text=text,
                           usage=usage, cost=charged)
    return Reply(images, text, finish, usage, response_id=_str(data.get("id")), cost=charged)


def _image_url_of(item: Any) -> str | None:
    if not isinstance(item, dict):
        return None
    inner = item.get("image_url")
    if isinstance(inner, dict):
        inner = inner.get("url")
    return inner if isinstance(inner, str) else None


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _inline_of(part: dict) -> dict | None:
    inline = part.get("inlineData") or part.get("inline_data")
    return inline if isinstance(inline, dict) else None


def parse_google_reply(data: Any, payloads: Mapping[str, bytes] | None = None) -> Reply:
    """Read a ``generateContent`` reply: every non-thought image part in order
    (the last thought image where only thought images came), the non-thought
    text, the finish reason and ``usageMetadata``. A blocked prompt or a
    candidate without an image raises ``NoImageError``. ``payloads`` are
    images already decoded by ``load_reply``.
    """
    data = _require_dict(data)
    _raise_embedded_error(data)
    candidates = _list(data.get("candidates"))
    feedback = _dict(data.get("promptFeedback") or data.get("prompt_feedback"))
    block = _str(feedback.get("blockReason") or feedback.get("block_reason"))
    metadata = _dict(data.get("usageMetadata") or data.get("usage_metadata"))
    charged = reported_cost(metadata.get("cost", _dict(data.get("usage")).get("cost")))  # some add OpenAI's usage
    if not candidates or not isinstance(candidates[0], dict):
        raise NoImageError(
            block_reason=block or "UNKNOWN",
            finish_message=_str(feedback.get("blockReasonMessage")),
            usage=metadata, cost=charged,
        )
    candidate = candidates[0]
    content = _dict(candidate.get("content"))
    parts = [p for p in _list(content.get("parts")) if isinstance(p, dict)]
    finish = _str(candidate.get("finishReason") or candidate.get("finish_reason"))
    finish_message = _str(candidate.get("finishMessage") or candidate.get("finish_message"))

    kept = [p for p in parts if not p.get("thought")]
    if not any(_inline_of(p) for p in kept):
        thought_images = [p for p in parts if p.get("thought") and _inline_of(p)]
        kept = kept + thought_images[-1:]
    images: list[ReplyImage] = []
    model_parts: list[dict[str, Any]] = []
    texts: list[str] = []
    for part in kept:
        inline = _inline_of(part)
        if inline is not None:
            mime = _str(inline.get("mimeType")) or _str(inline.get("mime_type")) or "image/png"
            if not mime.startswith("image/"):
                continue
            payload = inline.get("data")
            if not isinstance(payload, str):
                raise ResponseError("An image part of the reply has no data; run the request again.")
            stored = {k: v for k, v in part.items() if k not in ("inlineData", "inline_data")}
            stored["inlineData"] = {"mimeType": mime, "imageIndex": len(images)}
            model_parts.append(stored)
            images.append(ReplyImage(mime, _payload_bytes(payload, payloads)))
        elif isinstance(part.get("text"), str):
            texts.append(part["text"])
            model_parts.append(dict(part))
    text = "\n".join(t for t in texts if t.strip()) or None
    if not images:
        raise NoImageError(finish_reason=finish, block_reason=block, text=text, finish_message=finish_message,
                           usage=metadata, cost=charged)
    return Reply(
        images,
        text,
        finish,
        metadata,
        model_parts=model_parts,
        response_id=_str(data.get("responseId")),
        cost=charged,
    )


def parse_balance(data: Any) -> float | None:
    """The ``balance`` number of a ``GET /v1/balance`` reply (USD); every other field is optional.
    None when there is no such number."""
    value = data.get("balance") if isinstance(data, dict) else None
    if isinstance(value, str):  # "12.34" from a gateway that sends money as text
        try:
            value = float(value)
        except ValueError:
            return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        return None
    return float(value)  # may be below zero: an account in debt


def parse_model_ids(data: Any, image_only: bool = False) -> list[str]:
    """Model ids from a ``GET /v1/models`` list; with ``image_only`` those that output images."""
    data = _require_dict(data)
    ids = []
    for item in _list(data.get("data")):
        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
            continue
        if image_only and not _outputs_images(item):
            continue
        ids.append(item["id"])
    return ids


def _outputs_images(item: dict) -> bool:
    arch = item.get("architecture")
    if isinstance(arch, dict) and isinstance(arch.get("output_modalities"), list):
        return "image" in arch["output_modalities"]
    return "image" in item["id"]


# -- errors -----------------------------------------------------------------------------------

_TITLE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)
_TAGS = re.compile(r"<[^>]+>")


def _message_of(error: Any) -> tuple[str | None, str | None, str | None]:
    """(message, code, error_type) from an ``error`` member in any of the known shapes."""
    if isinstance(error, str):
        return error, None, None
    if not isinstance(error, dict):
        return None, None, None
    message = error.get("message") or error.get("detail")
    code = error.get("code")
    error_type = error.get("status") or error.get("type")
    for detail in _list(error.get("details")):
        if isinstance(detail, dict) and detail.get("reason"):
            code = code if isinstance(code, str) else detail["reason"]
    message = _unwrap_nested(message) if isinstance(message, str) else None
    return message, (str(code) if code is not None else None), (str(error_type) if error_type else None)


def _unwrap_nested(message: str) -> str:
    """Gateways wrap upstream errors: ``"... returned error: 400 {\"error\": {...}}"``."""
    start = message.find("{")
    if start < 0:
        return message
    try:
        inner = json.loads(message[start:])
    except (ValueError, RecursionError):  # RecursionError: nested deeper than json follows
        return message
    if isinstance(inner, dict) and "error" in inner:
        nested, _, _ = _message_of(inner["error"])
        if nested:
            return nested
    return message


def read_error_body(status: int, text: str) -> tuple[str, str | None, str | None]:
    """The gateway's own message, code and error type from an error body of any shape."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):  # RecursionError: nested deeper than json follows
        data = None
    if isinstance(data, list) and data and isinstance(data[0], dict):
        data = data[0]
    if isinstance(data, dict):
        message, code, error_type = _message_of(data.get("error", data))
        if message:
            return one_line(message, MESSAGE_LIMIT), code, error_type
    stripped = text.strip()
    if stripped.startswith("<") or "<html" in stripped[:500].lower():
        title = _TITLE.search(stripped)
        summary = title.group(1) if title else _TAGS.sub(" ", stripped)
        summary = " ".join(summary.split())[:120] or "no detail"
        return (
            f"the gateway answered with an HTML page ({summary}) instead of JSON; "
            "a proxy in front of it may be failing",
            None,
            None,
        )
    return (one_line(stripped, 200) or "the gateway gave no detail"), None, None


#: The longest gateway message passed on: errors are read in one line, not a page.
MESSAGE_LIMIT = 500


def error_from_body(status: int, text: str, *, retry_after: float | None = None, attempts: int = 1) -> GatewayError:
    """The typed error for an HTTP error status and its body; a 429 for a daily quota is
    ``QuotaExhausted`` (see ``daily_quota``)."""
    message, code, error_type = read_error_body(status, text)
    kind: type[GatewayError]
    refused = code == "API_KEY_INVALID" or error_type in (
        "UNAUTHENTICATED", "PERMISSION_DENIED", "authentication_error"
    )
    if status in (401, 403) or refused:
        kind = AuthenticationError
    elif status == 429:
        quota = daily_quota(text)
        if quota is not None:
            return QuotaExhausted(f"The daily quota is used up ({quota})", quota=quota, status=status or None,
                                  code=code, error_type=error_type, attempts=attempts)
        return RateLimitError(message, retry_after=retry_after, status=status or None, code=code,
                              error_type=error_type, attempts=attempts)
    else:
        kind = ServerError if status >= 500 else BadRequestError
    return kind(message, status=status or None, code=code, error_type=error_type, attempts=attempts)


# -- what a 429 says about waiting ---------------------------------------------------------------

#: The ``@type`` endings of the google.rpc details a 429 carries (facts: next-capabilities §3).
_RETRY_INFO = "google.rpc.RetryInfo"
_QUOTA_FAILURE = "google.rpc.QuotaFailure"
#: A quota counted per day (``GenerateRequestsPerDayPerProjectPerModel``, ``..._per_day``).
_PER_DAY = re.compile(r"per[_ -]?day", re.IGNORECASE)
#: What an OpenAI-style body says when the key's quota, not its rate, is used up.
_INSUFFICIENT_QUOTA = "insufficient_quota"
_DURATION = re.compile(r"\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)s\s*")


def retry_delay(text: str) -> float | None:
    """Seconds to wait that an error body asks for, where no header does: Google's 429 puts it
    in ``error.details[]``, a ``google.rpc.RetryInfo`` with ``retryDelay`` such as ``"1.5s"``
    (or ``{"seconds": 1, "nanos": 500000000}``). None when there is none or it is unreadable."""
    for detail in _error_details(text):
        if str(detail.get("@type", "")).endswith(_RETRY_INFO):
            return _seconds(detail.get("retryDelay", detail.get("retry_delay")))
    return None


def daily_quota(text: str) -> str | None:
    """The name of the per-day quota a 429's body says is used up, else None.

    Google's ``google.rpc.QuotaFailure`` names each quota that ran out in ``violations[]``
    (``quotaId``, ``quotaMetric``); one counted per day will not clear by waiting. An
    OpenAI-style body says so with the code or type ``insufficient_quota``."""
    for detail in _error_details(text):
        if not str(detail.get("@type", "")).endswith(_QUOTA_FAILURE):
            continue
        for violation in _list(detail.get("violations")):
            if not isinstance(violation, dict):
                continue
            names = [violation.get(key) for key in ("quotaId", "quota_id", "quotaMetric", "quota_metric")]
            for name in names:
                if isinstance(name, str) and _PER_DAY.search(name):
                    return one_line(next(n for n in names if isinstance(n, str) and n), 120)
    error = _error_member(text)
    if isinstance(error, dict) and _INSUFFICIENT_QUOTA in (error.get("code"), error.get("type")):
        return _INSUFFICIENT_QUOTA
    return None


def _error_member(text: str) -> Any:
    """The ``error`` member of an error body (or the body itself), None if it is not JSON."""
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if isinstance(data, list) and data and isinstance(data[0], dict):
        data = data[0]
    return data.get("error", data) if isinstance(data, dict) else None


def _error_details(text: str) -> list[dict[str, Any]]:
    error = _error_member(text)
    details = error.get("details") if isinstance(error, dict) else None
    return [detail for detail in _list(details) if isinstance(detail, dict)]


def _seconds(duration: Any) -> float | None:
    """A protobuf Duration as JSON (``"1.5s"``, or seconds and nanos) in seconds."""
    if isinstance(duration, str):
        match = _DURATION.fullmatch(duration)
        seconds = float(match.group(1)) if match else math.nan
    elif isinstance(duration, dict):
        try:
            seconds = float(duration.get("seconds") or 0) + float(duration.get("nanos") or 0) / 1e9
        except (TypeError, ValueError):
            seconds = math.nan
    else:
        seconds = math.nan
    return seconds if 0 <= seconds < math.inf else None


def with_seed(body: dict[str, Any], route: str, seed: int) -> dict[str, Any]:
    """``body`` (left unchanged) with ``seed`` where each route's API has one: at the top level of
    a chat completion (as OpenAI's), in ``generationConfig`` on the Google route."""
    if route == "chat":
        return {**body, "seed": seed}
    return {**body, "generationConfig": {**body.get("generationConfig", {}), "seed": seed}}
