"""ImageResult: inline display within the notebook budget, the caption nbval
compares, provenance metadata, and saving full-size files."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re

import nbformat
import pytest
from PIL import Image

from aigate_nb.core import images as images_module
from aigate_nb.core.errors import InputError
from aigate_nb.core.images import ReplyImage
from aigate_nb.core.results import ImageResult
from aigate_nb.records.store import History
from support import FLASH

BUDGET = 250_000
ELAPSED = re.compile(r"in \d+\.\d\d s")


# -- helpers ----------------------------------------------------------------------------------

def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format=fmt, **options)
    return buf.getvalue()


def noise(size, mode="RGB") -> Image.Image:
    return Image.frombytes(mode, size, os.urandom(size[0] * size[1] * len(mode)))


def result_of(data: bytes, mime: str = "image/png", **fields) -> ImageResult:
    fields.setdefault("prompt", "a red fox")
    fields.setdefault("model", FLASH)
    return ImageResult([ReplyImage(mime, data)], **fields)


def plain_png(size=(64, 48), color=(200, 30, 30), mode="RGB") -> bytes:
    return encoded(Image.new(mode, size, color), "PNG")


def notebook_growth(data: dict, metadata: dict) -> int:
    """Bytes a display output adds to a saved .ipynb, measured with nbformat itself."""
    def saved(outputs):
        nb = nbformat.v4.new_notebook()
        nb.cells.append(nbformat.v4.new_code_cell("x", outputs=outputs))
        return len(nbformat.writes(nb).encode("utf-8"))

    output = nbformat.v4.new_output("display_data", data=data, metadata=metadata)
    return saved([output]) - saved([])


def preview_of(data: dict) -> Image.Image:
    mime = next(k for k in data if k.startswith("image/"))
    return Image.open(io.BytesIO(images_module.b64decode(data[mime])))


# -- display budget ---------------------------------------------------------------------------

@pytest.mark.parametrize("size", ["1K", "2K", "4K"])
def test_emulator_results_display_within_the_budget(client, size):
    result = client.generate("a red fox in the snow", model=FLASH, aspect_ratio="16:9", image_size=size)
    data, metadata = result._repr_mimebundle_()
    assert set(data) == {"image/jpeg", "text/plain"}
    assert notebook_growth(data, metadata) <= BUDGET
    preview = preview_of(data)
    assert max(preview.size) == min(1024, max(result.size))
    assert preview.size[0] / preview.size[1] == pytest.approx(result.size[0] / result.size[1], rel=0.01)


def test_displayed_in_a_notebook_the_caption_is_an_output_of_its_own_under_the_image(client):
    # JupyterLab shows only the richest type of an output: the image's text/plain is never seen there.
    from IPython.core.interactiveshell import InteractiveShell
    from IPython.utils.capture import capture_output

    InteractiveShell.instance()
    result = client.generate("a red fox at night", model=FLASH, aspect_ratio="16:9", image_size="4K")
    with capture_output() as captured:
        result._ipython_display_()
    image, caption = captured.outputs
    assert set(image.data) == {"image/jpeg", "text/plain"} and image.metadata["aigate_nb"]["sha256"] == result.sha256
    assert set(caption.data) == {"text/html"}
    assert "16:9 | 4K | 5504x3072 JPEG | sha256 " + result.sha256[:12] in caption.data["text/html"]
    growth = notebook_growth(image.data, image.metadata) + notebook_growth(caption.data, caption.metadata)
    assert growth <= BUDGET


@pytest.mark.parametrize(
    "fmt, mode, mime",
    [("JPEG", "RGB", "image/jpeg"), ("PNG", "RGB", "image/jpeg"), ("PNG", "RGBA", "image/png")],
)
def test_noisy_4k_images_still_fit_the_budget(fmt, mode, mime):
    # Noise compresses about as badly as anything can: if it fits, real photos fit.
    picture = noise((5504, 3072), mode)
    data = encoded(picture, fmt, **({"quality": 95} if fmt == "JPEG" else {"compress_level": 1}))
    result = result_of(data, f"image/{fmt.lower()}", aspect_ratio="16:9", image_size="4K", text="t" * 5000)
    bundle, metadata = result._repr_mimebundle_()
    assert set(bundle) == {mime, "text/plain"}
    assert notebook_growth(bundle, metadata) <= BUDGET


def test_a_small_budget_lowers_quality_then_size():
    result = result_of(encoded(noise((2048, 1536)), "PNG", compress_level=1))
    result.display_budget = 60_000
    data, metadata = result._repr_mimebundle_()
    assert notebook_growth(data, metadata) <= 60_000
    assert max(preview_of(data).size) < 1024


def test_a_4k_jpeg_is_decoded_at_reduced_scale_for_its_preview(monkeypatch):
    from PIL import JpegImagePlugin

    decoded_sizes = []
    real_draft = JpegImagePlugin.JpegImageFile.draft

    def recording_draft(self, mode, size):
        answer = real_draft(self, mode, size)
        decoded_sizes.append(self.size)
        return answer

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", recording_draft)
    jpeg = encoded(Image.new("RGB", (5504, 3072), (90, 140, 30)), "JPEG")
    result_of(jpeg, "image/jpeg")._repr_mimebundle_()
    assert decoded_sizes == [(1376, 768)]  # a quarter of 4K: the smallest scale still above 1024x572


def test_preview_is_built_once_and_reused(monkeypatch):
    calls = []
    real = images_module.make_preview

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr("aigate_nb.core.results.make_preview", counting)
    result = result_of(plain_png((1600, 900)))
    first = result._repr_mimebundle_()
    second = result._repr_mimebundle_()
    assert len(calls) == 1
    assert first == second


def test_preview_long_edge_is_a_setting():
    result = result_of(plain_png((2000, 1000)))
    assert max(preview_of(result._repr_mimebundle_()[0]).size) == ImageResult.preview_long_edge == 1024
    result.preview_long_edge = 300
    assert preview_of(result._repr_mimebundle_()[0]).size == (300, 150)


def test_transparent_images_preview_as_png():
    transparent = plain_png((300, 200), (0, 0, 255, 100), mode="RGBA")
    data, _ = result_of(transparent)._repr_mimebundle_()
    assert set(data) == {"image/png", "text/plain"}
    assert preview_of(data).mode == "RGBA"


def test_several_images_show_side_by_side_in_html_with_their_hashes():
    first, second = plain_png((800, 600), (255, 0, 0)), plain_png((800, 600), (0, 0, 255))
    result = ImageResult(
        [ReplyImage("image/png", first), ReplyImage("image/png", second)],
        "two foxes", FLASH, text="Here are two foxes.",
    )
    data, metadata = result._repr_mimebundle_()
    assert set(data) == {"text/html", "text/plain"}
    assert data["text/html"].count("<img ") == 2
    assert "Here are two foxes." in data["text/html"]
    caption = data["text/plain"]
    assert f"1: 800x600 PNG | sha256 {hashlib.sha256(first).hexdigest()[:12]}" in caption
    assert f"2: 800x600 PNG | sha256 {hashlib.sha256(second).hexdigest()[:12]}" in caption
    assert caption.endswith("Here are two foxes.")
    assert notebook_growth(data, metadata) <= BUDGET


def test_include_and_exclude_limit_the_mime_types():
    result = result_of(plain_png())
    assert set(result._repr_mimebundle_(include={"text/plain"})[0]) == {"text/plain"}
    assert set(result._repr_mimebundle_(exclude={"text/plain"})[0]) == {"image/jpeg"}


def test_nothing_is_decoded_until_pixels_are_asked_for():
    result = result_of(plain_png())
    result._repr_mimebundle_()
    assert result._pixels is None
    assert result.image.size == (64, 48)
    assert result.images[0] is result.image


# -- caption ----------------------------------------------------------------------------------

def test_caption_names_model_ratio_size_pixels_format_hash_time_cost_and_emulator(client):
    result = client.generate("a red fox", model=FLASH, aspect_ratio="16:9", image_size="1K")
    width, height = result.image.size
    kind = result.mime.split("/")[1].upper()
    digest = hashlib.sha256(result.data).hexdigest()[:12]
    caption = result._repr_mimebundle_()[0]["text/plain"]
    assert re.fullmatch(
        rf"{re.escape(FLASH)} \| 16:9 \| 1K \| {width}x{height} {kind} \| sha256 {digest} \| in \d+\.\d\d s"
        + r" \| ~\$0\.\d\d\d" + (r" \(emulator\)" if result.emulated else ""),
        caption.splitlines()[0],
    )


def test_caption_says_when_the_emulator_made_the_image():
    assert result_of(plain_png(), emulated=True, elapsed=0.25).caption().endswith("| in 0.25 s (emulator)")
    assert "emulator" not in result_of(plain_png()).caption()


def test_caption_of_the_same_request_differs_only_in_elapsed_time(client):
    first = client.generate("a lighthouse at dusk", model=FLASH, aspect_ratio="1:1", image_size="1K")
    second = client.generate("a lighthouse at dusk", model=FLASH, aspect_ratio="1:1", image_size="1K")
    first.elapsed, second.elapsed = 0.5, 7.25
    assert first.caption() != second.caption()
    assert ELAPSED.sub("in X s", first.caption()) == ELAPSED.sub("in X s", second.caption())


def test_caption_shows_history_index_and_the_entry_edited_from(tmp_path):
    history = History("captions", root=tmp_path)
    original = result_of(plain_png(color=(1, 2, 3)), elapsed=1.0)
    history.append(original)
    history.append(result_of(plain_png(color=(4, 5, 6))))
    edit = result_of(plain_png(color=(7, 8, 9)), prompt="make it blue", parent_id=original.id, elapsed=2.5)
    history.append(edit)
    assert original.caption().startswith(f"[0] {FLASH} | ")
    assert edit.caption().startswith(f"[2] {FLASH} | ")
    assert edit.caption().endswith("| in 2.50 s | edited from [0]")


def test_caption_names_a_parent_outside_this_history_by_id():
    result = result_of(plain_png(), parent_id="a1b2c3d4e5f6")
    assert result.caption().endswith("| edited from a1b2c3d4e5f6")


def test_caption_shows_the_model_text_under_the_line():
    result = result_of(plain_png(), text="Here is your fox.\nIt is red.")
    assert result.caption().splitlines()[1:] == ["Here is your fox.", "It is red."]


def test_repr_is_deterministic_and_has_no_address_or_path(tmp_path):
    data = plain_png()
    one, two = result_of(data, elapsed=1.0), result_of(data, elapsed=9.0)
    assert repr(one) == repr(two)
    History("repr", root=tmp_path).append(one)
    text = repr(one)
    assert "0x" not in text and str(tmp_path) not in text
    assert text.startswith("<ImageResult [0] 64x48 image/png sha256=")


# -- metadata ---------------------------------------------------------------------------------

def test_metadata_carries_provenance(client, tmp_path):
    history = History("meta", root=tmp_path)
    source = client.generate("a red fox", model=FLASH, aspect_ratio="3:2", image_size="1K")
    history.append(source)
    edit = client.generate("make it blue", model=FLASH, images=[source])
    history.append(edit)
    meta = edit._repr_mimebundle_()[1]["aigate_nb"]
    assert meta["history_id"] == edit.id and meta["index"] == 1
    assert meta["parent_id"] == source.id and meta["parent_index"] == 0
    assert (meta["model"], meta["prompt"]) == (FLASH, "make it blue")
    assert meta["sha256"] == hashlib.sha256(edit.data).hexdigest()
    assert meta["path"] == "meta/images/" + edit.files[0].name  # outside the working directory: no full path
    assert meta["emulated"] is edit.emulated
    source_meta = source._repr_mimebundle_()[1]["aigate_nb"]
    assert (source_meta["aspect_ratio"], source_meta["image_size"], source_meta["parent_id"]) == ("3:2", "1K", None)


def test_metadata_paths_are_relative_to_the_notebooks_folder(client, tmp_path, monkeypatch):
    # A shared notebook must not show the author's folders.
    monkeypatch.chdir(tmp_path)
    history = History("nb", root=tmp_path / ".aigate")
    result = client.generate("a quiet harbour", model=FLASH, aspect_ratio="1:1", image_size="512")
    history.append(result)
    meta = result._repr_mimebundle_()[1]["aigate_nb"]
    assert meta["path"] == f".aigate/nb/images/{result.files[0].name}"
    assert open(meta["path"], "rb").read() == result.data
    assert str(tmp_path) not in json.dumps(meta)


def test_metadata_before_history_has_no_id_or_path():
    meta = result_of(plain_png(), aspect_ratio="1:1", image_size="1K")._repr_mimebundle_()[1]["aigate_nb"]
    assert meta["history_id"] is None and meta["index"] is None and meta["path"] is None
    assert (meta["aspect_ratio"], meta["image_size"]) == ("1:1", "1K")


# -- save -------------------------------------------------------------------------------------

def test_save_keeps_a_jpeg_byte_for_byte(tmp_path):
    data = encoded(noise((320, 200)), "JPEG", quality=90)
    path = result_of(data, "image/jpeg").save(tmp_path / "fox.jpg")
    assert path == tmp_path / "fox.jpg"
    assert path.read_bytes() == data


def test_save_png_adds_text_chunks_and_keeps_every_other_byte(tmp_path):
    data = plain_png((128, 64))
    result = result_of(
        data, prompt="ein Fuchs im Schnee, ☃", aspect_ratio="2:1", image_size="1K", parent_id="0123456789ab",
    )
    path = result.save(tmp_path / "fox.png")
    saved = Image.open(path)
    assert saved.text["prompt"] == "ein Fuchs im Schnee, ☃"
    assert (saved.text["model"], saved.text["aspect_ratio"]) == (FLASH, "2:1")
    assert (saved.text["image_size"], saved.text["parent"]) == ("1K", "0123456789ab")
    assert _chunks_without_text(path.read_bytes()) == _chunks_without_text(data)
    assert saved.tobytes() == Image.open(io.BytesIO(data)).tobytes()


def test_save_converts_when_the_suffix_asks_for_another_format(tmp_path):
    jpeg = encoded(Image.new("RGB", (80, 60), (10, 120, 200)), "JPEG", quality=95)
    as_png = result_of(jpeg, "image/jpeg", prompt="blue").save(tmp_path / "blue.png")
    assert as_png.read_bytes().startswith(b"\x89PNG")
    assert Image.open(as_png).text["prompt"] == "blue"
    png = plain_png((80, 60), (0, 0, 255, 0), mode="RGBA")
    as_jpeg = result_of(png).save(tmp_path / "blue.jpeg")
    assert Image.open(as_jpeg).format == "JPEG"
    assert Image.open(as_jpeg).getpixel((5, 5)) == pytest.approx((255, 255, 255), abs=3)  # alpha on white


def test_save_without_suffix_keeps_the_original_format(tmp_path):
    jpeg = encoded(Image.new("RGB", (8, 8)), "JPEG")
    path = result_of(jpeg, "image/jpeg").save(tmp_path / "out" / "fox")
    assert path == tmp_path / "out" / "fox.jpg"
    assert path.read_bytes() == jpeg


def test_save_of_several_images_numbers_them_or_takes_an_index(tmp_path):
    first, second = plain_png(color=(1, 1, 1)), plain_png(color=(2, 2, 2))
    result = ImageResult([ReplyImage("image/png", first), ReplyImage("image/png", second)], "two", FLASH)
    paths = result.save(tmp_path / "pair.png")
    assert paths == [tmp_path / "pair-1.png", tmp_path / "pair-2.png"]
    assert Image.open(paths[1]).getpixel((0, 0)) == (2, 2, 2)
    one = result.save(tmp_path / "second.png", index=1)
    assert Image.open(one).getpixel((0, 0)) == (2, 2, 2)
    with pytest.raises(InputError, match="index must be from 0 to 1"):
        result.save(tmp_path / "third.png", index=2)


def test_save_refuses_a_suffix_it_cannot_write(tmp_path):
    with pytest.raises(InputError, match=r"'\.xyz'"):
        result_of(plain_png()).save(tmp_path / "fox.xyz")


def _chunks_without_text(data: bytes) -> list[bytes]:
    chunks, pos = [], 8
    while pos < len(data):
        length = int.from_bytes(data[pos:pos + 4], "big")
        if data[pos + 4:pos + 8] not in (b"tEXt", b"iTXt", b"zTXt"):
            chunks.append(data[pos:pos + 12 + length])
        pos += 12 + length
    return chunks
