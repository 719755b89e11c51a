"""The checks an index line goes through as it is read: a history folder is input (it can be
copied, cloned or edited by hand), so every kept value is checked for its type and range, and
one bad line is skipped before it reaches a caption, the report, the budget or a file name."""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from .costs import Usage

#: Longest short value (a model id, a ratio, a hash...), longest prompt or model text,
#: most images, inputs or parts in one entry, and deepest nesting of a kept JSON value.
SHORT_TEXT_LIMIT = 512
LONG_TEXT_LIMIT = 10_000_000
ITEM_LIMIT = 256
DEPTH_LIMIT = 32
#: An entry id names its files (``images/<id>-1.png``): letters, digits, ``_`` and ``-`` only.
_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _kind(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "text", bool: "true/false", type(None): "null"}.get(
        type(value), "a number")


def text_up_to(limit: int) -> Callable[[Any], str]:
    """A check of text at most ``limit`` characters long."""
    def checked(value: Any) -> str:
        if not isinstance(value, str):
            raise ValueError(f"is {_kind(value)}, not text")
        if len(value) > limit:
            raise ValueError(f"is longer than {limit:,} characters")
        return value
    return checked


short_text = text_up_to(SHORT_TEXT_LIMIT)  # a model id, a ratio, a hash, a time...
long_text = text_up_to(LONG_TEXT_LIMIT)  # a prompt, the model's text


def entry_id(value: Any) -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise ValueError("is not an entry id (up to 64 letters, digits, _ or -)")
    return value


def count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 2**53:
        raise ValueError("is not a whole number of 0 or more")
    return value


def amount(value: Any) -> float:
    """A finite number of 0 or more: a cost or a duration (NaN would poison every sum)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ValueError("is not a finite number of 0 or more")
    return float(value)


def flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"is {_kind(value)}, not true/false")
    return value


def json_value(value: Any, depth: int = 0) -> Any:
    """Any JSON value, nested at most ``DEPTH_LIMIT`` deep, no list or object longer than ``ITEM_LIMIT``."""
    if depth > DEPTH_LIMIT:
        raise ValueError(f"is nested more than {DEPTH_LIMIT} deep")
    if isinstance(value, (list, dict)):
        if len(value) > ITEM_LIMIT:
            raise ValueError(f"holds more than {ITEM_LIMIT} items")
        for item in value.values() if isinstance(value, dict) else value:
            json_value(item, depth + 1)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError("holds a number that is not finite")
    return value


def list_of(check: Callable[[Any], Any], limit: int = ITEM_LIMIT) -> Callable[[Any], list]:
    """A check of a list, at most ``limit`` long, each item passing ``check``."""
    def checked(value: Any) -> list:
        if not isinstance(value, list):
            raise ValueError(f"is {_kind(value)}, not a list")
        if len(value) > limit:
            raise ValueError(f"holds more than {limit} items")
        try:
            return [check(item) for item in value]
        except ValueError as exc:
            raise ValueError(f"holds an item that {exc}") from None
    return checked


def input_record(value: Any) -> dict[str, str]:
    """An input image as kept: ``{"sha256", "name"?, "entry"?}``, each text."""
    if not isinstance(value, dict):
        raise ValueError(f"is {_kind(value)}, not an object")
    return {short_text(key): long_text(item) for key, item in value.items()}


def part_record(value: Any) -> dict[str, Any]:
    """A model part of the reply (kept to continue a conversation)."""
    if not isinstance(value, dict):
        raise ValueError(f"is {_kind(value)}, not an object")
    return json_value(value, 1)


def region_record(value: Any) -> dict[str, Any]:
    """A region edit's region: ``box`` and ``crop`` of four whole numbers, ``mode`` and ``padding``."""
    if not isinstance(value, dict):
        raise ValueError(f"is {_kind(value)}, not an object")
    for key in ("box", "crop"):
        box = value.get(key)
        if not (isinstance(box, list) and len(box) == 4
                and all(isinstance(v, int) and not isinstance(v, bool) for v in box)):
            raise ValueError(f"has a {key} that is not four whole numbers")
    short_text(value.get("mode", "crop"))
    if value.get("padding") is not None:
        amount(value["padding"])
    return json_value(value)


def usage_record(value: Any) -> Usage:
    if not isinstance(value, dict):
        raise ValueError(f"is {_kind(value)}, not an object")
    try:
        return Usage.from_record(json_value(value))
    except (TypeError, AttributeError):
        raise ValueError("is not a usage record") from None


def pixel_size(value: Any) -> tuple[int, int]:
    if not (isinstance(value, list) and len(value) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) and 0 < v <= 1_000_000 for v in value)):
        raise ValueError("is not a width and height in pixels")
    return value[0], value[1]


def image_mime(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"image/[\w.+-]{1,60}", value):
        raise ValueError("is not an image type such as image/png")
    return value


def checked(record: Mapping[str, Any], key: str, check: Callable[[Any], Any]) -> Any:
    """``record[key]`` through ``check``; a ``ValueError`` naming the field otherwise."""
    try:
        return check(record[key])
    except KeyError:
        raise ValueError(f"it has no {key!r}") from None
    except ValueError as exc:
        raise ValueError(f"its {key!r} {exc}") from None


def relative_file_name(name: Any) -> str:
    """An index line's file name, which must stay inside the history folder."""
    if (not isinstance(name, str) or not name or len(name) > SHORT_TEXT_LIMIT or "\0" in name
            or name.startswith(("/", "\\")) or ".." in re.split(r"[\\/]", name) or re.match(r"[A-Za-z]:", name)):
        raise ValueError("is not a file name inside the history folder")
    return name
