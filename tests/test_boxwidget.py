"""The box drawn on the panel's picture: the browser draws on a small preview, and the box is
kept in the source's pixels, clamped to the picture, mapped both ways."""

from __future__ import annotations

import io

from PIL import Image

from aigate_nb.frontends.boxwidget import PREVIEW_EDGE, BoxWidget, preview_to_source, source_to_preview


def picture(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (30, 90, 160)).save(buf, format="PNG")
    return buf.getvalue()


def shown(width: int, height: int) -> BoxWidget:
    widget = BoxWidget()
    widget.show(picture(width, height), (width, height))
    return widget


def test_a_4k_picture_is_drawn_on_a_small_preview_with_its_scale():
    widget = shown(3840, 2160)
    preview = Image.open(io.BytesIO(widget.image))
    assert max(preview.size) == PREVIEW_EDGE
    assert widget.scale == 3840 / PREVIEW_EDGE and widget.source_size == (3840, 2160)


def test_a_box_drawn_on_the_preview_is_kept_in_the_sources_pixels():
    widget = shown(2048, 1024)  # four source pixels to one preview pixel
    widget.preview_box = [10, 20, 100, 50.5]
    assert widget.box == [40, 80, 400, 202]


def test_a_box_set_in_source_pixels_is_drawn_on_the_preview():
    widget = shown(2048, 1024)
    widget.box = [400, 200, 800, 400]
    assert widget.preview_box == [100, 50, 200, 100]


def test_a_box_is_clamped_to_the_picture():
    widget = shown(2048, 1024)
    widget.box = [2000, 900, 400, 400]
    assert widget.box == [2000, 900, 48, 124]
    widget.box = [-100, -100, 300, 300]
    assert widget.box == [0, 0, 200, 200]
    assert preview_to_source([500, 250, 40, 40], 4.0, (2048, 1024)) == (2000, 1000, 48, 24)


def test_a_box_outside_the_picture_or_of_no_size_is_no_box():
    widget = shown(2048, 1024)
    widget.box = [5000, 5000, 10, 10]
    assert widget.box == [] and widget.preview_box == []
    assert preview_to_source([10, 10, 0, 5], 4.0, (2048, 1024)) is None
    assert preview_to_source([], 4.0, (2048, 1024)) is None
    assert source_to_preview([], 4.0) == []


def test_showing_another_picture_clears_the_box():
    widget = shown(2048, 1024)
    widget.preview_box = [10, 20, 100, 50]
    widget.show(picture(400, 300), (400, 300))  # smaller than a preview: shown as it is
    assert widget.box == [] and widget.preview_box == [] and widget.scale == 1.0
