"""Everything that may be passed as an image, and the inline budget."""

from __future__ import annotations

import io
import os

import pytest
from PIL import Image

from aigate_nb.core.errors import InputError, ResponseError
from aigate_nb.core.images import (
    ImageInput,
    b64decode,
    decode_data_url,
    encode_data_url,
    fit_inline_budget,
    sniff_mime,
    to_image_input,
)


def png_bytes(size=(64, 48), mode="RGB", color=(200, 30, 30)):
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, format="PNG")
    return buf.getvalue()


def noise_png(size):
    buf = io.BytesIO()
    Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


class Holder:
    id = "abc123"

    def _aigate_image_bytes(self):
        return "image/png", png_bytes()


def test_a_path_is_read_and_its_type_sniffed(tmp_path):
    path = tmp_path / "in.png"
    path.write_bytes(png_bytes())
    item = to_image_input(str(path))
    assert (item.mime, item.data) == ("image/png", path.read_bytes())
    assert to_image_input(path).data == path.read_bytes()


def test_a_missing_file_says_which_path(tmp_path):
    with pytest.raises(InputError, match="No image file at .*nope.png"):
        to_image_input(str(tmp_path / "nope.png"))


def test_a_file_that_is_not_an_image_is_refused(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("hello")
    with pytest.raises(InputError, match="is not an image"):
        to_image_input(path)


def test_urls_pass_through_and_data_urls_are_decoded():
    url = "https://example.org/cat.jpg"
    assert to_image_input(url) == ImageInput(None, None, url=url, name=url)
    signed = to_image_input(url + "?token=secret#frag")
    assert signed.url == url + "?token=secret#frag" and signed.name == url  # the query is not kept
    data = png_bytes()
    assert to_image_input(encode_data_url("image/png", data)).data == data
    with pytest.raises(InputError, match="data URL"):
        to_image_input("data:text/plain,hello")


def test_pil_images_and_bytes_and_results_are_accepted():
    image = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    item = to_image_input(image)
    assert item.mime == "image/png" and Image.open(io.BytesIO(item.data)).mode == "RGBA"
    assert to_image_input(png_bytes()).mime == "image/png"
    held = to_image_input(Holder())
    assert held.parent_id == "abc123" and held.data == png_bytes()


def test_other_objects_get_a_sentence_on_what_is_accepted():
    with pytest.raises(InputError, match="Cannot use a int as an image; pass a file path"):
        to_image_input(42)


def test_small_images_in_accepted_formats_are_sent_untouched():
    items = [ImageInput("image/png", png_bytes())]
    assert fit_inline_budget(items, 1_000_000) == items


def test_images_over_the_budget_are_reencoded_and_downscaled_to_fit():
    big = noise_png((1200, 900))
    out = fit_inline_budget([ImageInput("image/png", big, parent_id="p1")], budget=200_000)
    assert out[0].mime == "image/jpeg" and out[0].parent_id == "p1"
    assert (len(out[0].data) + 2) // 3 * 4 <= 200_000
    assert max(Image.open(io.BytesIO(out[0].data)).size) < 1200


def test_formats_the_model_does_not_read_are_converted():
    buf = io.BytesIO()
    Image.new("RGB", (20, 20), "blue").save(buf, format="GIF")
    out = fit_inline_budget([ImageInput("image/gif", buf.getvalue())])
    assert out[0].mime in ("image/jpeg", "image/png")


def test_the_budget_is_shared_between_images_and_urls_cost_nothing():
    url = ImageInput(None, None, url="https://example.org/a.png")
    big = ImageInput("image/png", noise_png((600, 600)))
    out = fit_inline_budget([url, big, big], budget=300_000)
    assert out[0] is url
    assert all((len(i.data) + 2) // 3 * 4 <= 150_000 for i in out[1:])


def test_sniffing_and_data_urls():
    assert sniff_mime(b"\xff\xd8\xff\xe0rest") == "image/jpeg"
    assert sniff_mime(b"RIFF\0\0\0\0WEBPVP8 ") == "image/webp"
    assert sniff_mime(b"plain text") is None
    assert decode_data_url("data:image/jpeg;base64,/9j/") == ("image/jpeg", b"\xff\xd8\xff")
    with pytest.raises(ResponseError):
        b64decode("abc$")
