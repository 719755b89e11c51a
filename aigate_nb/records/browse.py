"""Finding one's way in a history: the lineage as a tree, search by words, filters by model,
time and route, and pages of a gallery. Pure functions over entries, which ``History``
offers as methods (``tree``, ``children``, ``search``, ``filter``, ``page``).

Search rules (the HTML report's search box follows the same ones): the query is split into
words, a double-quoted part being one term; an entry matches when every term is found in
its prompt, its model id or its number (``[3]``), ignoring case and accents. A term must
start a word (``door`` finds "doors", not "indoor"), except in scripts written without
spaces (Chinese, Japanese, Thai, ...), where it may start anywhere.
"""

from __future__ import annotations

import difflib
import math
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING

from ..core.errors import InputError
from ..core.text import clip

if TYPE_CHECKING:
    from .store import HistoryEntry

ROUTES = ("chat", "google")
#: Entries on one page of a gallery, unless asked otherwise.
PAGE_SIZE = 24
#: Letters of scripts written without spaces between words (the report's script has the same ranges).
UNSPACED = re.compile(
    "[\u0e00-\u0eff\u1000-\u109f\u1780-\u17ff\u2e80-\u2fff\u3000-\u30ff\u3400-\u4dbf\u4e00-\u9fff"
    "\uf900-\ufaff\uff66-\uff9f\U00020000-\U0003ffff]"
)


# -- the lineage as a tree ------------------------------------------------------------------------


@dataclass(eq=False)
class LineageNode:
    """One entry of the tree and the entries edited from it (its ``children``), oldest first."""

    entry: HistoryEntry
    children: list[LineageNode] = field(default_factory=list)

    def walk(self, depth: int = 0) -> Iterator[tuple[int, LineageNode]]:
        """This node and everything below it, depth first, each with its depth (this one's is ``depth``)."""
        yield depth, self
        for child in self.children:
            yield from child.walk(depth + 1)

    def __repr__(self) -> str:
        return f"<LineageNode [{self.entry.index}] with {len(self.children)} children>"


class LineageTree:
    """A history's entries as a forest: each first picture is a root, each edit hangs under
    the entry it was edited from. One source edited three ways is a fork of three branches;
    a multi-turn chain is a line. Iterating gives the roots, oldest first; ``repr`` draws it."""

    def __init__(self, roots: list[LineageNode]) -> None:
        self.roots = roots

    def __iter__(self) -> Iterator[LineageNode]:
        return iter(self.roots)

    def __len__(self) -> int:
        return len(self.roots)

    def walk(self) -> Iterator[tuple[int, LineageNode]]:
        """Every node, depth first, each with its depth (0 for a root)."""
        for root in self.roots:
            yield from root.walk()

    def __repr__(self) -> str:
        if not self.roots:
            return "(an empty history)"
        lines: list[str] = []
        for root in self.roots:
            lines.append(_node_line(root, root_of_history=True))
            _draw(root.children, "", lines)
        return "\n".join(lines)


def _node_line(node: LineageNode, root_of_history: bool = False) -> str:
    entry = node.entry
    line = f"[{entry.index}] {clip(' '.join(entry.prompt.split()), 60)}"
    if root_of_history and entry.parent:  # edited from something this history does not hold
        line += f"  (edited from {entry.parent})"
    return line


def _draw(children: list[LineageNode], indent: str, lines: list[str]) -> None:
    for k, child in enumerate(children):
        last = k == len(children) - 1
        lines.append(f"{indent}{'└─ ' if last else '├─ '}{_node_line(child)}")
        _draw(child.children, indent + ("   " if last else "│  "), lines)


def build_tree(entries: Sequence[HistoryEntry]) -> LineageTree:
    """The tree of ``entries`` (in history order). An entry hangs under its parent when the
    parent comes before it; any other entry (a first picture, or one edited from an entry of
    another history or a file) is a root. Taking only earlier parents keeps it a tree even
    if an index file was edited by hand."""
    nodes: dict[str, LineageNode] = {}
    roots: list[LineageNode] = []
    for entry in entries:
        node = LineageNode(entry)
        parent = nodes.get(entry.parent) if entry.parent else None
        (parent.children if parent is not None else roots).append(node)
        nodes.setdefault(entry.id, node)
    return LineageTree(roots)


def children_of(entries: Sequence[HistoryEntry], entry: HistoryEntry) -> list[HistoryEntry]:
    """The entries edited from ``entry``, oldest first."""
    return [other for other in entries if other.parent == entry.id and other.id != entry.id]


# -- search -----------------------------------------------------------------------------------


def fold(text: str) -> str:
    """``text`` for comparing: compatibility forms, no accents, lower case."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.category(c).startswith("M")).lower()


def search_terms(query: str) -> list[str]:
    """The terms of a query: its words, a double-quoted part being one term; folded."""
    found = re.findall(r'"([^"]*)"?|(\S+)', query)
    return [fold(term) for quoted, word in found if (term := (quoted or word).strip())]


def term_in(term: str, text: str) -> bool:
    """Whether ``term`` occurs in ``text`` (both folded) at the start of a word, or anywhere
    for a term that does not start with a letter or digit or starts in a script without spaces."""
    anywhere = not term[0].isalnum() or UNSPACED.match(term[0]) is not None
    start = text.find(term)
    while start != -1:
        if anywhere or start == 0 or not text[start - 1].isalnum():
            return True
        start = text.find(term, start + 1)
    return False


def searchable_text(entry: HistoryEntry, prompt_limit: int | None = None) -> str:
    """What a search looks in: the prompt (its first ``prompt_limit`` characters, if given),
    the model id and the entry's number."""
    prompt = entry.prompt if prompt_limit is None else entry.prompt[:prompt_limit]
    return f"{prompt}\n{entry.model}\n[{entry.index}]"


def matches(entry: HistoryEntry, terms: list[str]) -> bool:
    text = fold(searchable_text(entry))
    return all(term_in(term, text) for term in terms)


# -- filters ------------------------------------------------------------------------------------


def filter_entries(
    entries: Sequence[HistoryEntry],
    *,
    text: str | None = None,
    model: str | None = None,
    since: datetime | date | timedelta | str | None = None,
    until: datetime | date | str | None = None,
    route: str | None = None,
    now: datetime | None = None,
) -> list[HistoryEntry]:
    """The entries that pass every filter given, in their order (see ``History.filter``).
    Bad values raise ``InputError`` before anything is looked at."""
    if text is not None and not isinstance(text, str):
        raise InputError(f"The search text must be a string, not {type(text).__name__}; e.g. search('red door').")
    terms = search_terms(text or "")
    model_terms = _model_terms(model)
    start = _moment(since, "since", now) if since is not None else None
    end = _moment(until, "until", now, end_of_day=True) if until is not None else None
    if route is not None:
        route = _route(route)
    found = []
    for entry in entries:
        if route is not None and entry.route != route:
            continue
        if model_terms and not all(term_in(term, fold(entry.model)) for term in model_terms):
            continue
        if (start is not None or end is not None) and not _within(entry, start, end):
            continue
        if terms and not matches(entry, terms):
            continue
        found.append(entry)
    return found


def _model_terms(model: str | None) -> list[str]:
    if model is None:
        return []
    if not isinstance(model, str) or not model.strip():
        raise InputError("model= takes a model id or a part of one, e.g. model='gemini-3-pro-image' or model='flash'.")
    return [fold(model.strip())]


def _route(route: str) -> str:
    value = route.strip().lower() if isinstance(route, str) else route
    if value in ROUTES:
        return value
    close = difflib.get_close_matches(str(value), ROUTES, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else "."
    raise InputError(f"route must be 'chat' or 'google', not {route!r}{hint}")


def _moment(value: object, name: str, now: datetime | None, end_of_day: bool = False) -> datetime:
    """A filter's bound as an aware datetime (naive ones are local time). A date, or a string
    with only a date, means the start of that day for ``since`` and its end for ``until``."""
    now = now or datetime.now().astimezone()
    given = value
    if isinstance(value, timedelta) and name == "since":
        return now - value
    if isinstance(value, str):
        text = value.strip()
        try:
            value = date.fromisoformat(text) if len(text) == 10 else datetime.fromisoformat(text)
        except ValueError:
            value = None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.astimezone()
    if isinstance(value, date):
        day = datetime.combine(value, time.max if end_of_day else time.min)
        return day.astimezone()
    what = "a datetime, a date, a timedelta (the last hour: timedelta(hours=1))" if name == "since" else (
        "a datetime or a date")
    raise InputError(f"{name}= takes {what} or an ISO date such as '2026-12-01', not {given!r}.")


def _within(entry: HistoryEntry, start: datetime | None, end: datetime | None) -> bool:
    if entry.created is None:
        return False  # no time recorded: it cannot be said to fall within
    try:
        made = datetime.fromisoformat(entry.created)
    except ValueError:
        return False
    made = made if made.tzinfo else made.astimezone()
    return (start is None or made >= start) and (end is None or made <= end)


# -- pages ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """One page of a gallery: its ``entries``, which page it is (``number``, from 0) of how
    many (``count``, at least 1), and how many entries there are in all (``total``)."""

    entries: list[HistoryEntry]
    number: int
    count: int
    total: int
    size: int

    @property
    def has_previous(self) -> bool:
        return self.number > 0

    @property
    def has_next(self) -> bool:
        return self.number < self.count - 1

    def __repr__(self) -> str:
        shown = ", ".join(f"[{entry.index}]" for entry in self.entries)
        return f"<Page {self.number + 1} of {self.count}: {shown or 'no entries'} ({self.total} in all)>"


def page_of(entries: Sequence[HistoryEntry], number: int, size: int, newest_first: bool) -> Page:
    """Page ``number`` (from 0; negative counts back from the last) of ``entries``, ``size``
    to a page. A number past either end gives the nearest page, so a gallery whose search
    just narrowed stays on a page that exists."""
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        raise InputError(f"A page holds at least one entry; size must be a whole number from 1, not {size!r}.")
    if not isinstance(number, int) or isinstance(number, bool):
        raise InputError(f"The page number must be a whole number (0 is the first, -1 the last), not {number!r}.")
    ordered = list(entries)[::-1] if newest_first else list(entries)
    count = max(1, math.ceil(len(ordered) / size))
    if number < 0:
        number += count
    number = min(max(number, 0), count - 1)
    return Page(ordered[number * size:(number + 1) * size], number, count, len(ordered), size)
