"""A ``%%gemini_image`` cell as a command: its options line and body turned into a
``Request`` and the front end's own options (variants, where to save, a variable to
bind). Plain Python with no IPython, so any caller can build one and tests need no kernel.
"""

from __future__ import annotations

import argparse
import difflib
import shlex
import string
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NoReturn

from ..core.errors import CommandError, InputError
from ..core.images import mime_for_suffix
from ..core.models import ROUTES
from ..core.results import names_a_folder
from ..gateway.pacing import parse_rate
from ..runs.runner import MAX_CONCURRENCY
from ..session.session import MAX_VARIANTS, Request

NAME = "%%gemini_image"


@dataclass(frozen=True)
class ImageCommand:
    """What one ``%%gemini_image`` cell asks for."""

    #: The request, its images still as written (``-e``, ``-i``): the session resolves them.
    request: Request
    sources: tuple[str, ...]
    count: int = 1
    out: str | None = None
    as_name: str | None = None
    #: ``--each ROWS``: the name of the variable whose rows make a batch (the body is the template).
    each: str | None = None
    #: Options given as comma lists (``-m a,b -a 1:1,16:9``): a comparison grid, one request per combination.
    grid: dict[str, list[str]] | None = None
    #: ``--concurrency N`` and ``--rate N/UNIT`` for a batch.
    concurrency: int | None = None
    rate: str | None = None


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise CommandError(_explain_parse_error(message, list(self._option_string_actions)))


def build_parser() -> argparse.ArgumentParser:
    """The options of ``%%gemini_image``; its help is the magic's help."""
    parser = _Parser(prog=NAME, add_help=False, allow_abbrev=False)
    add = parser.add_argument
    add("-m", "--model", metavar="ID",
        help="model id, e.g. google/gemini-3-pro-image (default: %%aigate config); a comma list (-m a,b) "
        "compares models in a grid")
    add("-a", "--aspect-ratio", metavar="R",
        help="aspect ratio, e.g. 16:9, 1:1, 21:9; a comma list (-a 1:1,16:9) compares them in a grid")
    add("-s", "--image-size", metavar="S",
        help="image size: 512, 1K, 2K or 4K (as the model allows); a comma list compares them in a grid")
    add("-e", "--edit", metavar="REF",
        help="edit an earlier result: a history index (3, -1), a history id, or a variable holding an image")
    add("-i", "--image", metavar="SRC", action="append", default=[],
        help="another input image: a path, an http(s) URL or a variable; repeatable")
    add("-n", type=int, default=1, metavar="N",
        help=f"make N variants, requested concurrently (at most {MAX_VARIANTS})")
    add("--route", choices=ROUTES, help="chat (/v1/chat/completions) or google (generateContent)")
    add("--multi-turn", action="store_true",
        help="with -e: continue that result's conversation, sending its lineage's prompts and the model's "
        "replies too (Google route)")
    add("--region", metavar="X,Y,W,H",
        help="with -e: change only this box of the image, in its pixels (120,80,400,300) or as fractions "
        "(0.5,0.25,0.3,0.3); every pixel outside the box and its padding stays as it was")
    add("--region-mode", choices=("crop", "guide"),
        help="crop (default): send only the box with some context around it; guide: send the whole image "
        "with the box outlined, for changes that need all of it")
    add("-o", "--out", metavar="PATH", help="also save the full-size image there (PATH-1, PATH-2, ... with -n)")
    add("--as", dest="as_name", metavar="NAME", help="also bind the result to the variable NAME")
    add("--no-interpolate", action="store_true", help="send {name} in the prompt as written")
    add("--new", action="store_true",
        help="send the request even if this notebook's history already has its picture (which is replayed otherwise)")
    add("--each", metavar="ROWS",
        help="a batch: one image per row of the variable ROWS (a list of prompts, of dicts, or a DataFrame); "
        "the body is the prompt template, its {column} fields filled from each row")
    add("--concurrency", type=int, metavar="N", help="with --each: requests in flight at once (default 4)")
    add("--rate", metavar="N/UNIT", help="with --each: start at most N requests per s, min or h, e.g. 60/min")
    return parser


PARSER = build_parser()


def parse_command(line: str, cell: str, namespace: Mapping[str, Any]) -> ImageCommand:
    """The command of a cell whose options line is ``line`` and body ``cell``; ``{name}`` in
    the body takes its value from ``namespace``. Raises ``InputError`` (``CommandError``
    for an options line that cannot be read) before anything is sent."""
    try:
        # Quotes group words as in a shell and are not part of the value: -i 'my photo.png'.
        words = [_unquote(word) for word in split_line(line)]
    except ValueError as exc:  # an unclosed quote
        raise CommandError(f"{NAME}: {exc} in the options line; close the quote.") from None
    args = PARSER.parse_args(words)
    if args.each is not None:
        return _each_command(args, cell)
    grid = {name: _comma_list(flag, value) for name, flag, value in (
        ("models", "-m", args.model), ("aspect_ratios", "-a", args.aspect_ratio), ("image_sizes", "-s", args.image_size)
    ) if value is not None and "," in value}
    for option, value in (("--concurrency", args.concurrency), ("--rate", args.rate)):
        if value is not None:
            raise InputError(f"{option} goes with --each ROWS (a batch).")
    prompt = (cell if args.no_interpolate else interpolate(cell, namespace)).strip()
    if not prompt:
        raise InputError(f"The cell is empty: write the prompt in the cell body, below the {NAME} line.")
    if args.as_name is not None and not args.as_name.isidentifier():
        raise InputError(f"--as {args.as_name!r} is not a variable name; use letters, digits and _.")
    if args.out:
        check_out_path(args.out)
    request = Request(
        prompt=prompt,
        model=args.model,
        aspect_ratio=args.aspect_ratio,
        image_size=args.image_size,
        route=args.route,
        multi_turn=args.multi_turn,
        new=args.new,
        region=args.region,
        region_mode=args.region_mode,
    )
    sources = ([args.edit] if args.edit is not None else []) + args.image
    if grid:
        _refuse_single_image_options(args, "a comparison grid (the comma lists)")
        request = replace(request, model=None if "models" in grid else request.model,
                          aspect_ratio=None if "aspect_ratios" in grid else request.aspect_ratio,
                          image_size=None if "image_sizes" in grid else request.image_size)
        return ImageCommand(request=request, sources=tuple(sources), as_name=args.as_name, grid=grid)
    return ImageCommand(request=request, sources=tuple(sources), count=args.n, out=args.out, as_name=args.as_name)


def _each_command(args: argparse.Namespace, cell: str) -> ImageCommand:
    """``--each ROWS``: the body is a template filled from each row, not from the notebook."""
    if not args.each.isidentifier():
        raise InputError(f"--each {args.each!r}: name a variable holding the rows, e.g. --each shots.")
    _refuse_single_image_options(args, "--each (one image per row)")
    if args.concurrency is not None and not 1 <= args.concurrency <= MAX_CONCURRENCY:
        raise InputError(f"--concurrency {args.concurrency}: send 1 to {MAX_CONCURRENCY} requests at once.")
    if args.as_name is not None and not args.as_name.isidentifier():
        raise InputError(f"--as {args.as_name!r} is not a variable name; use letters, digits and _.")
    for flag, value in (("-m", args.model), ("-a", args.aspect_ratio), ("-s", args.image_size)):
        if value is not None and "," in value:
            raise InputError(f"{flag} {value}: a batch takes one value per option (or a column per row), not a list.")
    request = Request(
        prompt=cell.strip(),
        model=args.model,
        aspect_ratio=args.aspect_ratio,
        image_size=args.image_size,
        route=args.route,
        new=args.new,
    )
    sources = ([args.edit] if args.edit is not None else []) + args.image
    if args.rate is not None:
        parse_rate(args.rate)
    return ImageCommand(request=request, sources=tuple(sources), as_name=args.as_name, each=args.each,
                        concurrency=args.concurrency, rate=args.rate)


def _refuse_single_image_options(args: argparse.Namespace, what: str) -> None:
    """-n, --multi-turn and -o are about one cell's image(s): a batch or a grid has its own."""
    for option, given in (("-n", args.n != 1), ("--multi-turn", args.multi_turn), ("-o", args.out)):
        if given:
            raise InputError(f"{option} does not go with {what}; leave it out.")


def _comma_list(flag: str, value: str) -> list[str]:
    items = [item.strip() for item in value.split(",")]
    if not all(items):
        raise InputError(f"{flag} {value}: a comma list needs a value between each comma, e.g. {flag} a,b.")
    return items


def split_line(line: str) -> list[str]:
    """The words of an options line, quotes kept (as IPython's ``arg_split`` gives them)."""
    lexer = shlex.shlex(line, posix=False)
    lexer.whitespace_split = True
    lexer.commenters = ""
    return list(lexer)


def check_out_path(out: str) -> None:
    """``-o PATH`` is checked before anything is sent: a result is not made to be lost."""
    suffix = Path(out).suffix
    if not names_a_folder(out) and suffix and mime_for_suffix(suffix) is None:
        raise InputError(
            f"-o {out}: cannot tell which format '{suffix}' is; use .png, .jpg or .webp, or leave the "
            "suffix out to keep the original format."
        )


def _unquote(word: str) -> str:
    """``word`` without one pair of matching quotes around it."""
    if len(word) >= 2 and word[0] == word[-1] and word[0] in "'\"":
        return word[1:-1]
    return word


# -- prompt interpolation -------------------------------------------------------------------

_FORMATTER = string.Formatter()


def interpolate(text: str, namespace: Mapping[str, Any]) -> str:
    """Fill each ``{field}`` of ``text`` from ``namespace`` as ``str.format`` would
    (``{cfg.style}``, ``{items[0]}``, ``{x!r}``, ``{x:>10}``); ``{{`` and ``}}`` are braces.

    A field that cannot be filled (an unknown name, JSON, a bad format spec, an
    object whose ``__format__`` fails) keeps its braces and its text, and the
    fields inside it are still filled (``{"style": "{style}"}``); a stray brace
    stays too: a prompt is never refused for its braces.
    """
    out: list[str] = []
    try:
        _interpolate_span(text, 0, len(text), _matching_braces(text), namespace, out)
    except RecursionError:  # braces nested thousands deep: not a template
        return text
    return "".join(out)


def _interpolate_span(
    text: str, start: int, end: int, closing: dict[int, int], namespace: Mapping[str, Any], out: list[str]
) -> None:
    i = start
    while i < end:
        char = text[i]
        if char in "{}" and i + 1 < end and text[i + 1] == char:
            out.append(char)
            i += 2
        elif char == "{" and closing.get(i, end) < end:
            close = closing[i]
            value = _fill(text[i : close + 1], namespace)
            if value is None:
                out.append("{")
                _interpolate_span(text, i + 1, close, closing, namespace, out)
                out.append("}")
            else:
                out.append(value)
            i = close + 1
        else:
            out.append(char)
            i += 1


def _matching_braces(text: str) -> dict[int, int]:
    """Position of each ``{`` -> position of the ``}`` that closes it, nesting counted."""
    opened: list[int] = []
    closing: dict[int, int] = {}
    for i, char in enumerate(text):
        if char == "{":
            opened.append(i)
        elif char == "}" and opened:
            closing[opened.pop()] = i
    return closing


def _fill(field: str, namespace: Mapping[str, Any]) -> str | None:
    """One ``{...}`` field's value, or None if it has none."""
    try:
        [(_, name, spec, conversion)] = list(_FORMATTER.parse(field))
        if name is None:
            return None  # literal text only: no field to fill
        value, _ = _FORMATTER.get_field(name, (), namespace)
        value = _FORMATTER.convert_field(value, conversion)
        return _FORMATTER.format_field(value, interpolate(spec, namespace) if spec else "")
    except Exception:  # whatever the field or the object does, the prompt keeps the text
        return None


def _explain_parse_error(message: str, option_strings: list[str]) -> str:
    if message.startswith("unrecognized arguments:"):
        extra = message.split(":", 1)[1].split()
        flag = next((word.split("=", 1)[0] for word in extra if word.startswith("-")), None)
        if flag is None:
            hint = "; the prompt goes in the cell body, below the %%gemini_image line."
        else:
            close = difflib.get_close_matches(flag, option_strings, n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]}?" if close else "; %%gemini_image? lists the options."
    else:
        hint = "; %%gemini_image? lists the options."
    return f"{NAME}: {message}{hint}"
