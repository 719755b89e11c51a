"""A batch's rows read, and its prompt template filled from each row's columns.

Pure: no request is built and nothing is sent here. pandas is never imported: a DataFrame
is known by its ``to_dict``, its gaps by their type's name.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from typing import Any

from ..core.errors import InputError
from ..core.text import one_line

#: The most rows one call takes: a typo must not queue a million paid requests.
MAX_ROWS = 10_000

_FORMATTER = string.Formatter()


def read_rows(rows: Any) -> list[tuple[Any, dict[str, Any]]]:
    """``rows`` as ``(label, columns)`` pairs: a list of prompts, of dicts, or a pandas DataFrame
    (its index gives the labels). pandas is never imported here: a DataFrame is known by its
    ``to_dict``."""
    if isinstance(rows, (str, bytes)) or rows is None:
        raise InputError(
            "batch() takes a list of prompts, a list of dicts or a DataFrame, not a single "
            f"{type(rows).__name__}; e.g. batch(['a red door', 'a blue door'])."
        )
    if hasattr(rows, "to_dict") and hasattr(rows, "columns") and hasattr(rows, "index"):
        records = rows.to_dict(orient="records")
        pairs = [(label, dict(record)) for label, record in zip(list(rows.index), records)]
        return [(plain(label), {str(key): value for key, value in record.items()}) for label, record in pairs]
    if not isinstance(rows, Iterable) or isinstance(rows, Mapping):
        raise InputError(
            f"batch() takes a list of prompts, a list of dicts or a DataFrame, not {type(rows).__name__}."
        )
    pairs = []
    for number, row in enumerate(rows):
        if isinstance(row, str):
            pairs.append((None, {"prompt": row}))
        elif isinstance(row, Mapping):
            pairs.append((None, {str(key): value for key, value in row.items()}))
        else:
            raise InputError(
                f"Row {number} is a {type(row).__name__}; each row is a prompt (str) or a dict of columns."
            )
        if len(pairs) > MAX_ROWS:
            raise InputError(f"A batch takes at most {MAX_ROWS} rows; split it into several.")
    return pairs


def template_fields(template: str) -> list[str]:
    """The names of the ``{column}`` fields of a prompt template (``{{`` is a brace)."""
    names = []
    try:
        for _, name, _, _ in _FORMATTER.parse(template):
            if name:
                root = name.split(".", 1)[0].split("[", 1)[0]
                if root and root not in names:
                    names.append(root)
    except ValueError as exc:
        raise InputError(f"The prompt template cannot be read: {exc}; write {{{{ and }}}} for braces.") from None
    return names


def fill_template(template: str, values: Mapping[str, Any], number: int) -> str:
    """``template`` with its fields from ``values``, or one line naming the field that cannot be
    filled: a column that is missing, or one whose value the field cannot index, format or convert."""
    try:
        return template.format_map(_Strict(values))
    except _NoColumn as exc:
        missing = exc.args[0]
        columns = ", ".join(sorted(k for k in values if not k.startswith("_"))) or "none"
        raise InputError(
            f"Row {number}: the template's {{{missing}}} is not a column of the rows (columns: {columns})."
        ) from None
    except Exception as exc:  # noqa: BLE001 - a field may index, format or call into any value a row holds
        field = _failing_field(template, values)
        reason = one_line(str(exc)) or type(exc).__name__
        raise InputError(
            f"Row {number}: the template's {field or 'field'} cannot be filled ({reason}); "
            "check what that column holds in this row."
        ) from None


def _failing_field(template: str, values: Mapping[str, Any]) -> str | None:
    """The first ``{field}`` of ``template`` (as written) that cannot be filled from ``values``."""
    try:
        for _, name, spec, conversion in _FORMATTER.parse(template):
            if name is None:
                continue
            field = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            try:
                field.format_map(_Strict(values))
            except Exception:  # noqa: BLE001 - this is the one
                return field
    except ValueError:
        pass
    return None


class _NoColumn(KeyError):
    """A field names no column: told apart from a ``KeyError`` of indexing a column's value."""


class _Strict(dict):
    def __missing__(self, key: str) -> Any:
        raise _NoColumn(key)


def given(value: Any) -> bool:
    """A cell that says something: not None, not NaN, not an empty string."""
    return not missing(value) and not (isinstance(value, str) and not value.strip())


def missing(value: Any) -> bool:
    """None, NaN, or pandas' NA and NaT (known by name: pandas is never imported here)."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return True
    return isinstance(value, float) and value != value


def reference(value: Any) -> Any:
    """A history index read from a DataFrame column that also holds gaps (NaN makes ``0`` a
    ``0.0``) as the whole number it is; anything else as it is."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    item = getattr(value, "item", None)  # a numpy integer
    if callable(item) and type(value).__name__.startswith(("int", "uint")):
        return item()
    return value


def text_or_none(value: Any) -> str | None:
    return str(value).strip() if given(value) else None


def plain(value: Any) -> Any:
    """A value as JSON can hold it (an image or a numpy number as text)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return item()
        except (TypeError, ValueError):
            pass
    return str(value) if not hasattr(value, "_aigate_image_bytes") else repr(value)
