"""A multi-turn edit's conversation: the earlier turns of a result's lineage, read
from the history, as the Google route takes them (between the session and wire).

Gemini 3 image models continue an image only from their own signed turns: each step
of the lineage made by the Google route and the same model gives its prompt (a user
turn) and the model's reply as received (a model turn, thought signatures included).
"""

from __future__ import annotations

import warnings
from typing import Any

from ..core.errors import HistoryError, InputError
from ..core.images import b64encode
from ..core.models import same_model
from ..core.results import ImageResult
from ..gateway.wire import inline_size, model_turn, user_turn
from ..records.store import History, HistoryEntry


def continued_model(history: History, ref: Any) -> str | None:
    """The model that made ``ref`` (an index, id, entry or result), which a conversation goes on with."""
    if isinstance(ref, (int, str)) and not isinstance(ref, bool):
        try:
            ref = history.get(ref)
        except HistoryError:
            return None  # a path or URL: conversation_turns() says why it cannot be continued
    return getattr(ref, "model", None)


def conversation_turns(
    history: History, ref: Any, *, model: str | None, budget: int, reserve: int = 0
) -> tuple[list[dict[str, Any]], str | None]:
    """The earlier turns of a multi-turn edit of ``ref`` (a history entry or a result), and
    the id of the entry it continues.

    The turns are the prompts and the model's replies (with their thought signatures) along
    ``ref``'s lineage, as far back as each step came by the Google route from the same
    model; the first step's user turn also holds the image it edited, where that is in this
    history. Where the images would pass the inline ``budget``, less ``reserve`` (base64
    characters of other input images; up to half the budget is kept for them), the image
    of the first step and then the first steps are left out, with a warning.
    """
    chain = _lineage_of(history, ref)
    last = chain[-1]
    where = f"[{last.index}]" if getattr(last, "index", None) is not None else "That result"
    if not last.model_parts:
        raise InputError(
            f"{where} came by the chat route, which keeps no model turn to continue; edit it "
            "without --multi-turn, or make it with --route google first."
        )
    if model and not same_model(last.model, model):
        raise InputError(
            f"{where} was made by {last.model}, and a conversation goes on with the model that made it "
            "(another model cannot read its signed turns); leave out -m, or edit without --multi-turn."
        )
    available = budget - min(reserve, budget // 2)
    # Newest first, so that a long chain of large images is read only as far as it is sent.
    steps: list[Any] = []
    replies: list[dict[str, Any]] = []
    size = 0
    left_out = 0
    tail = []
    for item in reversed(chain):
        if not item.model_parts or not same_model(item.model, last.model):
            break
        tail.append(item)
    for position, item in enumerate(tail):
        reply = model_turn(item.model_parts, _images_of(item))
        if steps and size + inline_size([reply]) > available:
            left_out = len(tail) - position
            break
        steps.insert(0, item)
        replies.insert(0, reply)
        size += inline_size([reply])
    if size > budget:
        raise InputError(
            f"The image to continue from is {size / 1e6:.1f} MB as base64, more than the "
            f"{budget / 1e6:.3g} MB a request may carry; edit it without --multi-turn, which sends it "
            "re-encoded to fit."
        )
    if size > available:
        raise InputError(
            f"The image to continue from and the other input images together pass the {budget / 1e6:.3g} MB "
            "a request may carry; pass fewer or smaller images with -i, or edit without --multi-turn."
        )
    turns: list[dict[str, Any]] = []
    for item, reply in zip(steps, replies):
        turns += [user_turn(item.prompt), reply]
    source = None if left_out else _edited_image_part(history, steps[0])
    if source is not None and size + inline_size([{"parts": [source]}]) <= available:
        turns[0]["parts"].append(source)
        source = None
    if left_out or source is not None:
        if left_out:
            steps_word = "step was" if left_out == 1 else f"{left_out} steps were"
            what = f"The conversation's first {steps_word} left out"
        else:
            what = "The image the conversation's first step edited was left out"
        warnings.warn(
            f"{what}: with them its images would pass the {budget / 1e6:.3g} MB a request may carry.",
            RuntimeWarning,
            stacklevel=4,
        )
    return turns, getattr(last, "id", None)


def _edited_image_part(history: History, item: Any) -> dict[str, Any] | None:
    """The image ``item`` was made from, as a user part, if that is an entry of this history."""
    if not item.parent_id:
        return None
    try:
        entry = history.get(item.parent_id)
        data = entry.data
    except HistoryError:
        return None  # not in this history, or its file is gone: the step goes without it
    return {"inlineData": {"mimeType": entry.mime, "data": b64encode(data)}}


def _lineage_of(history: History, ref: Any) -> list[Any]:
    """``ref``'s chain of edits, first ancestor first: from this history where it is kept here."""
    if isinstance(ref, int) and not isinstance(ref, bool):
        return history.lineage(ref)
    if isinstance(ref, str):
        try:
            return history.lineage(ref.strip())
        except HistoryError:
            pass  # a path or URL: said below
    elif isinstance(ref, HistoryEntry) or (isinstance(ref, ImageResult) and ref.id is not None):
        try:
            entry = history.get(str(ref.id))
        except HistoryError:
            return [ref]  # from another history: its own turn only
        return history.lineage(entry)
    elif isinstance(ref, ImageResult):
        return [ref]
    what = repr(ref) if isinstance(ref, str) else f"a {type(ref).__name__}"
    raise InputError(
        f"A multi-turn edit continues an earlier result, not {what}; pass -e with a history index "
        "such as -1 or a variable holding a result (an ordinary edit takes any image)."
    )


def _images_of(item: Any) -> list[tuple[str, bytes]]:
    """The original images of a result or history entry, as (mime, bytes)."""
    return [(original.mime, original.data) for original in item.originals]
