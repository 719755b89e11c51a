"""The letters on the emulator's pictures: what the built-in font draws is drawn exactly as
before, and accented, Greek, Cyrillic and CJK letters come from another font of the machine
instead of the built-in font's box. The test extra brings a font for CJK."""

from __future__ import annotations

import base64
import hashlib
import io

import PIL
import pytest
from PIL import Image, ImageChops

from aigate_nb.emulator import fonts
from aigate_nb.emulator.fonts import Lettering
from aigate_nb.emulator.render import Artwork, render, url_placeholder

WIDTH, HEIGHT = 640, 480
MISSING = "\U0010fffd"  # a private-use code point that no font maps: the built-in font draws its box
LABEL = "aigate_nb emulator · google/gemini-3.1-flash-image-preview · 4:3 512"


def picture(prompt: str) -> Image.Image:
    data = render(Artwork(WIDTH, HEIGHT, "image/png", prompt, "label", (), False)).data
    return Image.open(io.BytesIO(base64.b64decode(data))).convert("RGB")


def letters(prompt: str) -> Image.Image:
    """The pixels of the prompt's letters: pure white (the backgrounds never are), above the label."""
    region = picture(prompt).crop((0, 0, WIDTH, round(HEIGHT * 0.88)))
    red, green, blue = (band.point(lambda value: 255 if value == 255 else 0) for band in region.split())
    return ImageChops.darker(ImageChops.darker(red, green), blue)


def sha256_of(data: str) -> str:
    return hashlib.sha256(base64.b64decode(data)).hexdigest()


@pytest.fixture
def no_fallback_fonts(monkeypatch):
    """A machine with no font but the built-in one: no candidates, no fontconfig."""
    monkeypatch.setattr(fonts, "CANDIDATES", ())
    monkeypatch.setenv("PATH", "")
    fonts.fallback_for.cache_clear()
    fonts._installed_candidates.cache_clear()
    yield
    fonts.fallback_for.cache_clear()
    fonts._installed_candidates.cache_clear()


@pytest.mark.parametrize("word,as_boxes", [
    ("café", f"caf{MISSING}"),
    ("Ελληνικά", MISSING * 8),
    ("Кириллица", MISSING * 9),
    ("日本語", MISSING * 3),
])
def test_letters_the_builtin_font_lacks_are_not_drawn_as_its_box(word, as_boxes):
    assert all(fonts.fallback_for(char) for char in word if ord(char) > 0x7E), (
        f"no font of this machine draws {word!r}; the test extra brings one (noto-cjk-sans-jp-regular)")
    drawn, boxes = letters(word), letters(as_boxes)
    assert drawn.getbbox() is not None and boxes.getbbox() is not None
    assert ImageChops.difference(drawn, boxes).getbbox() is not None, f"{word!r} is drawn as boxes"


@pytest.mark.parametrize("char", ["é", "λ", "Ж", "日"])
def test_a_single_letter_is_not_the_builtin_fonts_box(char):
    assert ImageChops.difference(letters(char), letters(MISSING)).getbbox() is not None


@pytest.mark.skipif(not PIL.__version__.startswith("13.0."), reason="pinned for the Pillow of the test extra")
def test_pictures_of_plain_prompts_are_byte_identical_to_those_before_the_fallback():
    # sha256s computed before fonts.py existed; the tutorials' captions pin more of them.
    generated = render(Artwork(640, 480, "image/png", "a lighthouse at dusk, oil painting", LABEL, (), True))
    assert sha256_of(generated.data) == "ac8b12230f4bd9c0077cdda6f2cd6466b0a355948748a9aab3cb4f8e672836d4"
    assert sha256_of(generated.draft) == "d217179dc4f168e28b406078dadd96237cbd76ede6417a33db2617cdfe23f057"
    source = Image.new("RGB", (300, 200), (10, 120, 200))
    edited = render(Artwork(512, 512, "image/jpeg", "make it red", "aigate_nb emulator · x · 1:1", (source, source),
                            False))
    assert sha256_of(edited.data) == "a73205e5cd360369ebb597aa01f8bfc9d4a8fcc1f91f58c441b962e9cb232b39"
    placeholder = url_placeholder("https://example.org/a/b.png").tobytes()
    assert hashlib.sha256(placeholder).hexdigest() == "572a2fed9c69f87759d7a635e42cdfe911b10a8a7a01e898611ba6322bc241ac"
    # Letters no font has are still the built-in font's boxes, drawn as before.
    unknown = render(Artwork(640, 480, "image/png", f"caf{MISSING}", "label", (), False))
    assert sha256_of(unknown.data) == "4228e449e1a76a7c22561e11814fd8cfb4e5b77ff8e744f81e7dbf80ad29b548"


def test_only_the_letters_the_builtin_font_lacks_come_from_another_font():
    lettering = Lettering(20)
    runs = lettering.runs("café au lait, cafe\u0301")
    assert [piece for _, piece in runs] == ["caf", "é", " au lait, caf", "e\u0301"]  # a letter keeps its accent
    assert [font is lettering.font for font, _ in runs] == [True, False, True, False]
    assert lettering.plain("a lighthouse · …") and not lettering.plain("café")


def test_the_same_request_gives_the_same_picture_with_fallback_letters():
    prompt = "café Ελληνικά Кириллица 日本語"
    first = picture(prompt).tobytes()
    fonts.fallback_for.cache_clear()
    assert picture(prompt).tobytes() == first


def test_without_any_other_font_missing_letters_are_boxes_and_nothing_fails(no_fallback_fonts):
    assert fonts.fallback_for("日") is None
    assert letters("日本語").tobytes() == letters(MISSING * 3).tobytes()
    assert letters("café").tobytes() == letters(f"caf{MISSING}").tobytes()


def test_a_font_covers_exactly_what_its_cmap_maps():
    dejavu = fonts.FontFile("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    if not fonts.os.path.isfile(dejavu.path):
        pytest.skip("Debian's fonts-dejavu-core is not installed")
    assert all(fonts.covers(dejavu, ord(char)) for char in "aé€λЖ")
    assert not fonts.covers(dejavu, ord("日")) and not fonts.covers(dejavu, ord(MISSING))
