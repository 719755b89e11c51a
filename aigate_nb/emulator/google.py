"""The Google-compatible route, POST /v1beta/models/{model}:generateContent: checks and replies.

Requests may spell every field in camelCase or snake_case, as Google accepts; replies are always
camelCase. Gemini 3 models sign their parts with thought signatures and insist on getting them
back in a conversation's model turns (facts §1.8, §7.2).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Any

from .billing import Bill
from .errors import ApiError
from .generation import (
    GOOGLE,
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
from .inputs import SourceImage, decode_image
from .models import find_google_model
from .render import Rendered

_PART_FIELDS = {
    "text", "inlineData", "inline_data", "fileData", "file_data", "thought", "thoughtSignature",
    "thought_signature", "functionCall", "function_call", "functionResponse", "function_response",
    "executableCode", "executable_code", "codeExecutionResult", "code_execution_result",
    "videoMetadata", "video_metadata", "mediaResolution", "media_resolution",
}
_IMAGE_CONFIG_FIELDS = {
    "aspectRatio", "aspect_ratio", "imageSize", "image_size", "personGeneration", "person_generation",
}
_SAFETY_MESSAGE = (
    "The model output could not be generated. The generated image was blocked by safety filters "
    "that follow Google's Responsible AI practices. Try rephrasing the prompt."
)


def _field(container: dict[str, Any], camel: str, snake: str) -> Any:
    """A field under either spelling (Google accepts both)."""
    return container[camel] if camel in container else container.get(snake)


def _bad(message: str) -> ApiError:
    return ApiError(400, message)


def _unknown_name(name: str, where: str) -> ApiError:
    return _bad(f"Invalid JSON payload received. Unknown name \"{name}\" at '{where}': Cannot find field.")


def parse_generate(model_name: str, body: Any) -> Plan:
    """Check a generateContent body the way Google does and say what to make."""
    model = find_google_model(model_name)
    if model is None:
        raise ApiError(
            404,
            f"models/{model_name} is not found for API version v1beta, or is not supported for "
            "generateContent. Call ListModels to see the list of available models and their "
            "supported methods.",
        )
    if not isinstance(body, dict):
        raise _bad("Invalid JSON payload received. Expected an object at the top level.")
    config = _object(_field(body, "generationConfig", "generation_config"), "request.generation_config")
    for name in ("aspectRatio", "aspect_ratio", "imageSize", "image_size"):
        if name in config:
            raise _unknown_name(name, "request.generation_config")
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise _bad("* GenerateContentRequest.contents: contents is not specified\n")
    for index, content in enumerate(contents):
        _check_content(content, index, signed=bool(model.image and model.image.thinking))
    if contents[-1].get("role", "user") != "user":
        raise _bad("The last content must have role 'user': it holds the prompt and any images to edit.")

    requested = _field(config, "responseModalities", "response_modalities")
    modalities = _modalities(requested, model.image is not None)
    if "IMAGE" in modalities and model.image is None:
        raise _bad("Model does not support the requested response modalities: image")
    if model.image is not None and "IMAGE" not in modalities:
        raise _bad("Model does not support the requested response modalities: text")

    last = len(contents) - 1
    parts = contents[last]["parts"]
    texts = [p["text"] for p in parts if isinstance(p.get("text"), str) and not p.get("thought")]
    prompt = "\n".join(texts).strip()
    inline = [(j, _field(p, "inlineData", "inline_data")) for j, p in enumerate(parts)]
    inline = [(j, data) for j, data in inline if data is not None]
    check_input_count(model, len(inline))
    sources = [_decode(data, last, j) for j, data in inline] or _latest_earlier_image(contents[:last])
    if not prompt and not sources:
        raise _bad(f"* GenerateContentRequest.contents[{last}].parts: the prompt is empty\n")

    thinking = _object(
        _field(config, "thinkingConfig", "thinking_config"), "request.generation_config.thinking_config"
    )
    ratio = size = None
    if model.image is not None:
        image_config = _object(
            _field(config, "imageConfig", "image_config"), "request.generation_config.image_config"
        )
        for name in image_config:
            if name not in _IMAGE_CONFIG_FIELDS:
                raise _unknown_name(name, "request.generation_config.image_config")
        value = _field(image_config, "aspectRatio", "aspect_ratio")
        ratio = default_ratio(model, tuple(sources)) if value is None else check_ratio(model, value, GOOGLE)
        size = check_size(model, _field(image_config, "imageSize", "image_size"), GOOGLE)
    return Plan(
        model,
        prompt,
        "IMAGE" in modalities,
        ratio,
        size,
        tuple(sources),
        with_text="TEXT" in modalities,
        include_thoughts=_field(thinking, "includeThoughts", "include_thoughts") is True,
        seed=check_seed(config.get("seed"), GOOGLE),
    )


def google_reply(
    plan: Plan, rendered: Rendered | None, outcome: str | None, bill: Bill | None = None
) -> dict[str, Any]:
    """The GenerateContentResponse body; ``outcome`` names a simulated 200 without an image.
    ``bill`` charges the reply and says what cost to report in ``usageMetadata.cost`` (None: none)."""
    ending = {"modelVersion": plan.model.bare_id, "responseId": _response_id(plan)}
    if outcome == "prompt-blocked":
        usage = usage_for(plan, image=False, text=None)
        metadata = {"promptTokenCount": usage.prompt, "totalTokenCount": usage.prompt}
        metadata = _with_cost(metadata, plan, usage, bill)
        return {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": metadata, **ending}
    if outcome == "image-safety":
        usage = usage_for(plan, image=False, text=None)
        candidate = {
            "content": {"role": "model"},
            "finishReason": "IMAGE_SAFETY",
            "finishMessage": _SAFETY_MESSAGE,
            "index": 0,
        }
    else:
        parts: list[dict[str, Any]] = []
        if plan.image and rendered is not None and outcome is None:
            if plan.with_draft and rendered.draft is not None:
                # Thought parts come first and are never signed (facts §1.8).
                draft = {"mimeType": rendered.mime, "data": rendered.draft}
                parts.append({"text": "**Planning the composition**\n\nLaying out the picture.", "thought": True})
                parts.append({"inlineData": draft, "thought": True})
            text = reply_text(plan) if plan.with_text else None
            if text:
                parts.append(_signed(plan, {"text": text}, len(parts)))
            final = {"mimeType": rendered.mime, "data": rendered.data}
            parts.append(_signed(plan, {"inlineData": final}, len(parts)))
            usage = usage_for(plan, image=True, text=text)
        else:
            text = REFUSAL_TEXT if outcome == "no-image" else text_only_reply(plan)
            parts.append(_signed(plan, {"text": text}, 0))
            usage = usage_for(plan, image=False, text=text)
        candidate = {"content": {"role": "model", "parts": parts}, "finishReason": "STOP", "index": 0}
    metadata = _with_cost(_usage_metadata(usage), plan, usage, bill)
    return {"candidates": [candidate], "usageMetadata": metadata, **ending}


def _with_cost(metadata: dict[str, Any], plan: Plan, usage: Usage, bill: Bill | None) -> dict[str, Any]:
    """usageMetadata, with the gateway's ``cost`` beside Google's counts when the bill says one."""
    cost = bill(plan, usage) if bill is not None else None
    if cost is not None:
        metadata["cost"] = cost
    return metadata


def _check_content(content: Any, index: int, signed: bool) -> None:
    """Check one content's shape, its parts' fields, and (Gemini 3) the model turns' signatures."""
    if not isinstance(content, dict):
        raise _bad(f"Invalid JSON payload received. contents[{index}] must be an object with role and parts.")
    role = content.get("role", "user")
    if role not in ("user", "model"):
        raise _bad("Please use a valid role: user, model.")
    parts = content.get("parts")
    if not isinstance(parts, list) or not parts:
        raise _bad(f"* GenerateContentRequest.contents[{index}].parts: contents.parts must not be empty.\n")
    for number, part in enumerate(parts):
        where = f"contents[{index}].parts[{number}]"
        if not isinstance(part, dict):
            raise _bad(f"Invalid JSON payload received. {where} must be an object.")
        if "fileData" in part or "file_data" in part or any(
            _holds_url(value) for name, value in part.items() if name != "text"
        ):
            raise _bad(
                f"The Google-compatible route takes inline images only ({where}): send the image "
                "bytes as inlineData {mimeType, data} in base64; URLs and fileData are not fetched."
            )
        for name in part:
            if name not in _PART_FIELDS:
                raise _unknown_name(name, where)
        inline = _field(part, "inlineData", "inline_data")
        mime = _field(inline, "mimeType", "mime_type") if isinstance(inline, dict) else None
        is_image = isinstance(mime, str) and mime.startswith("image/")
        if (
            signed
            and role == "model"
            and is_image
            and not part.get("thought")
            and not _field(part, "thoughtSignature", "thought_signature")
        ):
            # 1-based positions, as in the real message (facts §7.2).
            raise _bad(
                f"Image part is missing a thought_signature in content position {index + 1}, part "
                f"position {number + 1}. Please refer to "
                "https://ai.google.dev/gemini-api/docs/thought-signatures#model-behavior for more details."
            )


def _holds_url(value: Any) -> bool:
    """Whether a part's field is (or holds) an http(s) URL, as a URL-passing client would send."""
    if isinstance(value, str):
        return value.startswith(("http://", "https://"))
    return isinstance(value, dict) and any(_holds_url(inner) for inner in value.values())


def _object(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _bad(f"Invalid JSON payload received. '{where}' must be an object.")
    return value


def _modalities(value: Any, draws: bool) -> set[str]:
    """Requested modalities, upper-cased; TEXT and IMAGE by default, as Google does (facts §1.6)."""
    if value is None:
        return {"TEXT", "IMAGE"} if draws else {"TEXT"}
    if not isinstance(value, list):
        raise _bad("Invalid JSON payload received. 'generation_config.response_modalities' must be a list.")
    for index, item in enumerate(value):
        if not isinstance(item, str) or item.upper() not in ("TEXT", "IMAGE"):
            raise _bad(
                f"Invalid value at 'generation_config.response_modalities[{index}]' "
                f"(type.googleapis.com/google.ai.generativelanguage.v1beta.GenerationConfig.Modality), {item!r}"
            )
    return {item.upper() for item in value}


def _decode(inline: Any, content: int, part: int) -> SourceImage:
    """Decode one inlineData part of the prompt into an input image."""
    where = f"contents[{content}].parts[{part}].inline_data"
    mime = _field(inline, "mimeType", "mime_type") if isinstance(inline, dict) else None
    data = inline.get("data") if isinstance(inline, dict) else None
    if not isinstance(mime, str) or not isinstance(data, str):
        raise _bad(f"Unable to process input image: {where} needs both mimeType and data.")
    if not mime.startswith("image/"):
        raise _bad(f"Unable to process input image: {where} has mimeType '{mime}', which is not an image type.")
    if data.startswith("data:"):
        raise _bad(
            f"Unable to process input image: {where}.data must be bare base64, "
            "without a 'data:...;base64,' prefix."
        )
    try:
        # Google takes standard and URL-safe base64 alike.
        raw = base64.b64decode(data.replace("-", "+").replace("_", "/"), validate=True)
    except binascii.Error:
        raise _bad(f"Invalid value at '{where}.data' (TYPE_BYTES), Base64 decoding failed") from None
    return decode_image(raw, mime, where)


def _latest_earlier_image(contents: list[dict[str, Any]]) -> list[SourceImage]:
    """The latest non-thought image of the conversation, which a text-only follow-up edits."""
    for index in range(len(contents) - 1, -1, -1):
        for number in range(len(contents[index]["parts"]) - 1, -1, -1):
            part = contents[index]["parts"][number]
            inline = _field(part, "inlineData", "inline_data")
            if inline is not None and not part.get("thought"):
                return [_decode(inline, index, number)]
    return []


def _signed(plan: Plan, part: dict[str, Any], position: int) -> dict[str, Any]:
    """Add a deterministic thoughtSignature on Gemini 3 models (2.5 never signs)."""
    if plan.thinking:
        seed = plan.digest + position.to_bytes(2, "big")
        signature = hashlib.sha256(seed + b"a").digest() + hashlib.sha256(seed + b"b").digest()
        part["thoughtSignature"] = base64.b64encode(signature).decode("ascii")
    return part


def _response_id(plan: Plan) -> str:
    return base64.urlsafe_b64encode(plan.digest[:17]).decode("ascii").rstrip("=")


def _usage_metadata(usage: Usage) -> dict[str, Any]:
    """usageMetadata as Google sends it: zero counts left out, details per modality."""
    prompt_details = [{"modality": "TEXT", "tokenCount": usage.prompt_text}]
    if usage.prompt_images:
        prompt_details.append({"modality": "IMAGE", "tokenCount": usage.prompt_images})
    candidate_details = [
        {"modality": modality, "tokenCount": count}
        for modality, count in (("IMAGE", usage.image), ("TEXT", usage.text))
        if count
    ]
    metadata: dict[str, Any] = {"promptTokenCount": usage.prompt}
    if usage.candidates:
        metadata["candidatesTokenCount"] = usage.candidates
    metadata["totalTokenCount"] = usage.total
    if usage.thoughts:
        metadata["thoughtsTokenCount"] = usage.thoughts
    metadata["promptTokensDetails"] = prompt_details
    if candidate_details:
        metadata["candidatesTokensDetails"] = candidate_details
    return metadata
