"""The letters of the emulator's pictures: Pillow's built-in font, and for each character it
cannot draw (accents, Greek, Cyrillic, CJK, ...) the first font of this machine that can.

Text the built-in font covers is drawn exactly as before any fallback existed, so pictures of
plain prompts never change. Which font draws a character depends only on the fonts installed,
so the same request still gives the same picture on the same machine.
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import threading
import unicodedata
from bisect import bisect_right
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from PIL import ImageFont

_WINDOWS_FONTS = os.path.join(os.environ.get("WINDIR", r"C:\Windows"), "Fonts")

#: Fonts tried in this order for a character the built-in font lacks: sans serifs for Latin,
#: Greek and Cyrillic first (their letters sit best beside the built-in ones), then CJK fonts.
#: Paths of Debian's packages (named in the comments), macOS and Windows. ``PACKAGED`` stands
#: for the fonts of the optional ``fonts`` extra; ``fc-match`` is asked about what none covers.
PACKAGED = "(the fonts extra)"
CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",  # fonts-dejavu-core
    "/usr/share/fonts/truetype/noto/NotoSans-Regular.ttf",  # fonts-noto-core
    "/usr/share/fonts/truetype/freefont/FreeSans.ttf",  # fonts-freefont-ttf
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",  # fonts-liberation
    "/System/Library/Fonts/Supplemental/Arial Unicode.ttf",
    "/Library/Fonts/Arial Unicode.ttf",
    os.path.join(_WINDOWS_FONTS, "arial.ttf"),
    PACKAGED,
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",  # fonts-noto-cjk
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",  # fonts-wqy-microhei
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",  # fonts-wqy-zenhei
    "/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf",  # fonts-droid-fallback
    "/System/Library/Fonts/Hiragino Sans GB.ttc",
    os.path.join(_WINDOWS_FONTS, "msyh.ttc"),
    os.path.join(_WINDOWS_FONTS, "msgothic.ttc"),
)


@dataclass(frozen=True)
class FontFile:
    """A font on disk: the file and, in a collection (.ttc), the face."""

    path: str
    index: int = 0


class Lettering:
    """The built-in font at one size, with the fallbacks for what it cannot draw.

    Made afresh for each drawing, like the built-in font before it: Pillow's fonts are not
    shared between the emulator's threads.
    """

    def __init__(self, size: int) -> None:
        self.size = size
        self.font: ImageFont.FreeTypeFont = ImageFont.load_default(size=size)  # type: ignore[assignment]
        self._fallbacks: dict[FontFile, ImageFont.FreeTypeFont] = {}

    def plain(self, text: str) -> bool:
        """True when the built-in font draws all of ``text``: itself, or as its box where no
        font of this machine has a character. Such text is drawn as it always was."""
        if text.isascii() and text.isprintable():
            return True  # the built-in font has all of printable ASCII: the common case, made quick
        return all(self._font_for(cluster) is self.font for cluster in _clusters(text))

    def runs(self, text: str) -> list[tuple[ImageFont.FreeTypeFont, str]]:
        """``text`` cut into runs of characters drawn by the same font, in order."""
        runs: list[tuple[ImageFont.FreeTypeFont, str]] = []
        for cluster in _clusters(text):
            font = self._font_for(cluster)
            if runs and runs[-1][0] is font:
                runs[-1] = (font, runs[-1][1] + cluster)
            else:
                runs.append((font, cluster))
        return runs

    def getlength(self, text: str) -> float:
        if self.plain(text):
            return self.font.getlength(text)
        return sum(font.getlength(piece) for font, piece in self.runs(text))

    def _font_for(self, cluster: str) -> ImageFont.FreeTypeFont:
        if all(_builtin_covers(ord(char)) for char in cluster):
            return self.font
        found = fallback_for(cluster)
        if found is None:
            return self.font  # drawn as the built-in font's box: nothing on this machine has it
        if found not in self._fallbacks:
            self._fallbacks[found] = ImageFont.truetype(found.path, self.size, index=found.index)
        return self._fallbacks[found]


@lru_cache(maxsize=4096)
def fallback_for(cluster: str) -> FontFile | None:
    """The first font that draws every character of ``cluster`` (a letter and its marks)."""
    code_points = [ord(char) for char in cluster]
    for font in _installed_candidates():
        if all(covers(font, point) for point in code_points):
            return font
    matched = _fontconfig_match(code_points)
    if matched is not None and all(covers(matched, point) for point in code_points):
        return matched
    return None


def covers(font: FontFile, code_point: int) -> bool:
    """True when ``font`` maps ``code_point`` to a glyph of its own."""
    starts, ends = _coverage(font)
    at = bisect_right(starts, code_point) - 1
    return at >= 0 and code_point <= ends[at]


# -- which fonts there are ----------------------------------------------------------------------


@lru_cache(maxsize=1)
def _installed_candidates() -> tuple[FontFile, ...]:
    found: list[FontFile] = []
    for candidate in CANDIDATES:
        if candidate == PACKAGED:
            found += _packaged_fonts()
        elif os.path.isfile(candidate):
            found.append(FontFile(candidate))
    return tuple(found)


def _packaged_fonts() -> list[FontFile]:
    """The font of ``pip install 'aigate_nb[fonts]'``: Noto Sans CJK JP (SIL OFL 1.1), which
    also draws accented Latin, Greek and Cyrillic."""
    try:
        from noto_cjk_sans_jp_regular import FONT_PATH
    except ImportError:
        return []
    path = os.fspath(FONT_PATH)
    return [FontFile(path)] if os.path.isfile(path) else []


def _fontconfig_match(code_points: list[int]) -> FontFile | None:
    """The font fontconfig would pick for these characters, where fontconfig is installed."""
    program = shutil.which("fc-match")
    if program is None:
        return None
    charset = " ".join(f"{point:x}" for point in code_points)
    try:
        answer = subprocess.run(
            [program, "--format=%{file}\n%{index}", f":charset={charset}"],
            capture_output=True, text=True, timeout=10, check=False,
        ).stdout.split("\n")
    except (OSError, subprocess.SubprocessError):
        return None
    if len(answer) != 2 or not os.path.isfile(answer[0]) or not answer[1].isdigit():
        return None
    return FontFile(answer[0], int(answer[1]))


def _clusters(text: str) -> Iterator[str]:
    """Each character with the combining marks that follow it: drawn by one font, or misplaced."""
    cluster = ""
    for char in text:
        if cluster and (unicodedata.category(char).startswith("M") or 0xFE00 <= ord(char) <= 0xFE0F):
            cluster += char
        else:
            if cluster:
                yield cluster
            cluster = char
    if cluster:
        yield cluster


# -- which characters a font has: its cmap table ------------------------------------------------


_builtin_lock = threading.Lock()
_builtin: tuple[list[int], list[int]] | None = None


def _builtin_covers(code_point: int) -> bool:
    global _builtin
    if code_point < 0x7F:
        return code_point >= 0x20  # the built-in font has all of printable ASCII
    with _builtin_lock:
        if _builtin is None:
            source = ImageFont.load_default(size=10).path  # type: ignore[union-attr]
            data = source.getvalue() if hasattr(source, "getvalue") else Path(str(source)).read_bytes()
            _builtin = _cmap_ranges(data)
    starts, ends = _builtin
    at = bisect_right(starts, code_point) - 1
    return at >= 0 and code_point <= ends[at]


@lru_cache(maxsize=64)
def _coverage(font: FontFile) -> tuple[list[int], list[int]]:
    try:
        return _cmap_ranges(Path(font.path).read_bytes(), font.index)
    except (OSError, struct.error, ValueError):
        return [], []  # unreadable or not a font: it covers nothing


def _cmap_ranges(data: bytes, index: int = 0) -> tuple[list[int], list[int]]:
    """The code points an OpenType/TrueType font (or a face of a collection) maps to a glyph,
    as sorted, disjoint ranges: (starts, ends), both inclusive."""
    offset = 0
    if data[:4] == b"ttcf":
        (offset,) = struct.unpack_from(">I", data, 12 + 4 * index)
    (tables,) = struct.unpack_from(">H", data, offset + 4)
    cmap = None
    for n in range(tables):
        tag, _, start, _ = struct.unpack_from(">4sIII", data, offset + 12 + 16 * n)
        if tag == b"cmap":
            cmap = start
    if cmap is None:
        raise ValueError("no cmap table")
    subtables = {}
    for n in range(struct.unpack_from(">H", data, cmap + 2)[0]):
        platform, encoding, start = struct.unpack_from(">HHI", data, cmap + 4 + 8 * n)
        subtables[(platform, encoding)] = cmap + start
    # The fullest Unicode table there is: format 12 (all planes), else format 4 (the BMP).
    for key in ((3, 10), (0, 6), (0, 4), (3, 1), (0, 3), (0, 2), (0, 1), (0, 0)):
        start = subtables.get(key)
        if start is None:
            continue
        (form,) = struct.unpack_from(">H", data, start)
        if form == 12:
            return _merged(_format_12(data, start))
        if form == 4:
            return _merged(_format_4(data, start))
    raise ValueError("no Unicode cmap of format 4 or 12")


def _format_12(data: bytes, start: int) -> Iterator[tuple[int, int]]:
    (groups,) = struct.unpack_from(">I", data, start + 12)
    for n in range(groups):
        first, last, glyph = struct.unpack_from(">III", data, start + 16 + 12 * n)
        if glyph == 0:
            first += 1  # that one code point maps to the missing-glyph box
        if first <= last:
            yield first, last


def _format_4(data: bytes, start: int) -> Iterator[tuple[int, int]]:
    segments = struct.unpack_from(">H", data, start + 6)[0] // 2
    ends_at = start + 14
    starts_at = ends_at + 2 * segments + 2
    deltas_at = starts_at + 2 * segments
    offsets_at = deltas_at + 2 * segments
    for n in range(segments):
        (last,) = struct.unpack_from(">H", data, ends_at + 2 * n)
        (first,) = struct.unpack_from(">H", data, starts_at + 2 * n)
        (delta,) = struct.unpack_from(">h", data, deltas_at + 2 * n)
        range_offset_at = offsets_at + 2 * n
        (range_offset,) = struct.unpack_from(">H", data, range_offset_at)
        for point in range(first, min(last, 0xFFFE) + 1):
            if range_offset == 0:
                glyph = (point + delta) & 0xFFFF
            else:
                (glyph,) = struct.unpack_from(">H", data, range_offset_at + range_offset + 2 * (point - first))
                glyph = (glyph + delta) & 0xFFFF if glyph else 0
            if glyph:
                yield point, point


def _merged(ranges: Iterator[tuple[int, int]]) -> tuple[list[int], list[int]]:
    starts: list[int] = []
    ends: list[int] = []
    for first, last in sorted(ranges):
        if ends and first <= ends[-1] + 1:
            ends[-1] = max(ends[-1], last)
        else:
            starts.append(first)
            ends.append(last)
    return starts, ends
