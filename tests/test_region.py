"""Editing one region: the box is cut out with its padding, edited alone (or outlined in the whole
picture), and pasted back, so that every pixel outside the padded box is the source's, on both
routes and in both modes, 4K included. Against the emulator over loopback, whose edit tints
and banners what it is sent, so a changed box shows."""

from __future__ import annotations

import json

import pytest
from PIL import Image, ImageChops

from aigate_nb.core.errors import InputError
from aigate_nb.core.region import MIN_REGION_EDGE, Region, seam_mask, worded_prompt
from aigate_nb.records.store import History
from aigate_nb.session.session import Request


@pytest.fixture
def source(session):
    """A 1264x848 PNG made by the emulator, in the history as [0]."""
    return session.run(Request("a red fox in a snowy forest", aspect_ratio="3:2", image_size="1K"))


def rgb(item) -> Image.Image:
    return item.image.convert("RGB")


def outside_unchanged(before: Image.Image, after: Image.Image, padded: tuple[int, int, int, int]) -> bool:
    """Every pixel outside ``padded`` (x, y, w, h) the same in both, decoded."""
    x, y, w, h = padded
    blank = Image.new("RGB", before.size, (0, 0, 0))
    hole = Image.new("L", before.size, 255)
    hole.paste(0, (x, y, x + w, y + h))
    outside_before, outside_after = Image.composite(before, blank, hole), Image.composite(after, blank, hole)
    return ImageChops.difference(outside_before, outside_after).getbbox() is None


def padded_box(region: dict, size: tuple[int, int]) -> tuple[int, int, int, int]:
    x, y, w, h = region["box"]
    p = region["padding"]
    left, top = max(0, x - p), max(0, y - p)
    return left, top, min(size[0], x + w + p) - left, min(size[1], y + h + p) - top


def changed_inside(before: Image.Image, after: Image.Image, box) -> bool:
    x, y, w, h = box
    inside = (x, y, x + w, y + h)
    return ImageChops.difference(before.crop(inside), after.crop(inside)).getbbox() == (0, 0, w, h)


# -- reading a region ---------------------------------------------------------------------------

def test_fractions_and_pixels_name_the_same_box():
    assert Region.parse("0.5,0.25,0.25,0.5").box_in(800, 400) == (400, 100, 200, 200)
    assert Region.parse((400, 100, 200, 200)).box_in(800, 400) == (400, 100, 200, 200)
    assert Region.parse("400, 100, 200, 200", "guide") == Region((400, 100, 200, 200), "guide")


@pytest.mark.parametrize(
    "value, message",
    [
        ("10,10,200", "is not X,Y,W,H"),
        ("a,b,c,d", "is not X,Y,W,H"),
        ("700,100,200,200", "is not inside the 800x400 picture"),
        ("0.9,0.1,0.2,0.5", "is not inside the 800x400 picture"),
        ("10,10,40,200", f"under {MIN_REGION_EDGE} pixels"),
        ("0.1,0.1,0.05,0.5", f"under {MIN_REGION_EDGE} pixels"),
    ],
)
def test_a_box_that_cannot_be_edited_says_why_in_one_line(value, message):
    with pytest.raises(InputError, match=message) as caught:
        Region.parse(value).box_in(800, 400)
    assert "\n" not in str(caught.value)


def test_the_seam_is_solid_over_the_box_and_gone_at_the_padded_edge():
    box, padded, padding = (100, 100, 200, 120), (60, 60, 280, 200), 40
    mask = seam_mask(box, padded, padding)
    assert mask.size == (280, 200)
    assert mask.crop((40, 40, 240, 160)).getextrema() == (255, 255)  # the box, in the mask's frame
    edge = [mask.getpixel((x, 0)) for x in range(280)] + [mask.getpixel((0, y)) for y in range(200)]
    assert max(edge) == 0
    assert 0 < mask.getpixel((40 - padding // 4, 100)) < 255  # blended in the band


def test_the_prompt_is_worded_as_googles_semantic_masking_guide_suggests():
    crop = worded_prompt("give the fox a blue scarf.", "crop")
    assert crop.startswith("Using the provided image, give the fox a blue scarf. Change only what this asks for.")
    assert "Keep everything else in the image exactly the same" in crop
    guide = worded_prompt("give the fox a blue scarf", "guide")
    assert "only inside the area outlined by the red rectangle" in guide


# -- the guarantee ------------------------------------------------------------------------------

@pytest.mark.parametrize("route", ["chat", "google"])
@pytest.mark.parametrize("mode", ["crop", "guide"])
def test_only_the_padded_box_changes(session, source, emu, route, mode):
    box = (400, 200, 300, 250)
    asked = Request("give the fox a blue scarf", images=(source,), region=box, region_mode=mode, route=route)
    result = session.run(asked)
    before, after = rgb(source), rgb(result)
    assert result.size == source.size and result.mime == source.mime == "image/png"
    assert result.region["box"] == list(box) and result.region["mode"] == mode
    padded = padded_box(result.region, source.size)
    assert outside_unchanged(before, after, padded)
    assert changed_inside(before, after, box)
    assert not outside_unchanged(before, after, box)  # the seam: the blend reaches past the box
    assert len(emu.requests) == 2 and emu.requests[-1].path.endswith(
        "chat/completions" if route == "chat" else ":generateContent"
    )


def test_crop_mode_sends_the_padded_box_at_a_size_the_model_takes(session, source, emu):
    result = session.run(Request("give the fox a blue scarf", images=(source,), region=(400, 200, 300, 250)))
    sent = emu.requests[-1]
    assert sent.body["image_config"] == {"aspect_ratio": "5:4", "image_size": "0.5K"}  # 512 on the chat route
    (image,) = sent.images
    cx, cy, cw, ch = result.region["crop"]
    assert (cw, ch) == (500, 400) and (image.width, image.height) == (572, 458)  # scaled up to about 512x512
    assert sent.prompt.startswith("Using the provided image, give the fox a blue scarf.")
    assert result.prompt == "give the fox a blue scarf"  # the history keeps what was asked


def test_guide_mode_sends_the_whole_picture_with_the_box_outlined(session, source, emu):
    result = session.run(Request("give the fox a blue scarf", images=(source,), region=(400, 200, 300, 250),
                                 region_mode="guide"))
    (image,) = emu.requests[-1].images
    assert (image.width, image.height) == source.size
    assert emu.requests[-1].body["image_config"] == {"aspect_ratio": "3:2", "image_size": "1K"}
    assert "outlined by the red rectangle" in emu.requests[-1].prompt
    assert rgb(result).getpixel(padded_box(result.region, source.size)[:2]) == rgb(source).getpixel(
        padded_box(result.region, source.size)[:2]
    )  # the outline sits on the padded edge, which is never pasted back


def test_a_4k_jpeg_source_keeps_every_pixel_outside_the_padded_box(session, emu):
    source = session.run(Request("a harbour at dawn", aspect_ratio="16:9", image_size="4K"))
    assert source.size == (5504, 3072) and source.mime == "image/jpeg"
    result = session.run(Request("add a red sail", images=(source,), region="0.6,0.5,0.15,0.2"))
    box = tuple(result.region["box"])
    assert box == (3302, 1536, 826, 614)
    before, after = rgb(source), rgb(result)
    assert result.size == source.size
    # A JPEG written again would change every pixel: the composite is a PNG.
    assert result.mime == "image/png"
    assert outside_unchanged(before, after, padded_box(result.region, source.size))
    assert changed_inside(before, after, box)
    # The padded crop holds about 1.3 megapixels: 2K keeps them all, where the source needed 4K.
    assert emu.requests[-1].body["image_config"]["image_size"] == "2K"


def test_the_result_keeps_the_shape_of_its_source_for_the_next_edit(session, source):
    result = session.run(Request("give the fox a blue scarf", images=(source,), region=(400, 200, 300, 250)))
    assert (result.aspect_ratio, result.image_size) == ("3:2", "1K")
    plain = session.with_defaults(Request("make it night", images=(result,)))
    assert (plain.aspect_ratio, plain.image_size) == ("3:2", "1K")


def test_a_plain_python_client_edits_a_region_too(client, tmp_path):
    photo = tmp_path / "photo.png"
    Image.radial_gradient("L").resize((640, 480)).convert("RGB").save(photo)
    result = client.generate("add a moon", images=str(photo), region=(0.25, 0.25, 0.5, 0.5))
    before = Image.open(photo).convert("RGB")
    assert result.size == (640, 480) and result.region["box"] == [160, 120, 320, 240]
    assert outside_unchanged(before, rgb(result), padded_box(result.region, (640, 480)))
    assert result.edited_from() == "photo.png"


# -- refused before sending ---------------------------------------------------------------------

@pytest.mark.parametrize(
    "changes, message",
    [
        ({"region": "1200,10,200,200"}, "is not inside the 1264x848 picture"),
        ({"region": "0.5,0.5,0.02,0.3"}, "too small for the model to edit"),
        ({"region": "here"}, "is not X,Y,W,H"),
        ({"region": "10,10,200,200", "region_mode": "lasso"}, "region mode 'lasso' is not one of crop or guide"),
        ({"region": "10,10,200,200", "aspect_ratio": "1:1"}, "leave out the aspect ratio and the image size"),
        ({"region": "10,10,200,200", "multi_turn": True, "route": "google"}, "leave out --multi-turn"),
        ({"region_mode": "guide"}, "A region mode goes with a region"),
    ],
)
def test_a_bad_region_sends_nothing(session, source, emu, changes, message):
    emu.clear()
    with pytest.raises(InputError, match=message) as caught:
        session.submit(Request("give the fox a blue scarf", images=(source,), **changes))
    assert "\n" not in str(caught.value)
    assert emu.requests == []
    assert len(session.history) == 1


def test_a_region_needs_an_image_to_edit(session, emu):
    with pytest.raises(InputError, match="name that image too"):
        session.submit(Request("a scarf", region="10,10,200,200"))
    assert emu.requests == []


# -- replay -------------------------------------------------------------------------------------

def test_a_region_edit_is_replayed_and_a_box_in_fractions_is_the_same_box(session, source, emu):
    first = session.run(Request("give the fox a blue scarf", images=(source,), region=(316, 212, 316, 212)))
    again = session.run(Request("give the fox a blue scarf", images=(source,), region="0.25,0.25,0.25,0.25"))
    assert again.replayed and again.id == first.id
    assert len(emu.attempts("blue scarf")) == 1


GUIDE = {"region": (400, 200, 300, 250), "region_mode": "guide"}


@pytest.mark.parametrize(
    "first, second",
    [
        (GUIDE, {}),  # the same ratio, size and source image as the plain edit: only the region tells them apart
        ({}, GUIDE),
        ({"region": (400, 200, 300, 250)}, GUIDE),
        ({"region": (400, 200, 300, 250)}, {"region": (400, 200, 300, 260)}),
    ],
)
def test_a_region_edit_never_answers_another_request(session, source, emu, first, second):
    session.run(Request("give the fox a blue scarf", images=(source,), **first))
    again = session.run(Request("give the fox a blue scarf", images=(source,), **second))
    assert not again.replayed and len(emu.attempts("blue scarf")) == 2
    assert (again.region is None) == (not second)


# -- the record ---------------------------------------------------------------------------------

def test_the_history_records_the_region_and_its_parent(session, source, tmp_path):
    result = session.run(Request("give the fox a blue scarf", images=(source,), region=(400, 200, 300, 250)))
    reloaded = History(session.history.name, root=tmp_path)
    entry = reloaded[-1]
    assert entry.region == {"box": [400, 200, 300, 250], "mode": "crop", "padding": 75, "crop": [300, 125, 500, 400]}
    assert entry.parent == source.id and [e.index for e in reloaded.lineage(-1)] == [0, 1]
    assert "edited from [0] | region 400,200,300,250 crop" in result.caption()
    assert "from [0] region 400,200,300,250 crop" in repr(entry)
    assert result.display_metadata()["aigate_nb"]["region"]["box"] == [400, 200, 300, 250]
    assert result.png_text()["region"] == "region 400,200,300,250 crop"


def test_a_record_from_before_regions_still_loads(session, source, tmp_path):
    index = session.history.index_path
    record = json.loads(index.read_text().splitlines()[0])
    assert "region" in record
    del record["region"]
    index.write_text(json.dumps(record) + "\n")
    entry = History(session.history.name, root=tmp_path)[0]
    assert entry.region is None and "region" not in entry.result().caption()


def test_a_picture_and_its_region_edit_go_side_by_side(session, source):
    from aigate_nb.runs.variants import Variants

    result = session.run(Request("give the fox a blue scarf", images=(source,), region=(400, 200, 300, 250)))
    pair = Variants([session.history[source.index], result])
    assert pair.shared_caption() == "google/gemini-3.1-flash-image-preview | 3:2 | 1K | 2 results (emulator)"
    assert pair._repr_mimebundle_()[0]["text/html"].count("<img ") == 2
