"""Resolving a request is a pure function (``core.request.resolve``) of the request, the
defaults, the model's spec and the shape of the image it edits: tested with no session, no
history and no emulator."""

from __future__ import annotations

from aigate_nb.core.request import Defaults, Request, resolve
from support import FLASH, OLD, PRO

DEFAULTS = Defaults(model=FLASH, aspect_ratio="16:9", image_size="2K", route="chat")


def test_a_request_that_says_nothing_takes_the_defaults():
    resolved = resolve(Request("a kite"), DEFAULTS)
    assert (resolved.model, resolved.aspect_ratio, resolved.image_size, resolved.route) == (FLASH, "16:9", "2K", "chat")


def test_its_own_options_win_over_the_defaults():
    resolved = resolve(Request("a kite", aspect_ratio="1:1", image_size="1K", route="google"), DEFAULTS)
    assert (resolved.aspect_ratio, resolved.image_size, resolved.route) == ("1:1", "1K", "google")


def test_defaults_chosen_for_another_model_go_only_where_the_sent_model_takes_them():
    resolved = resolve(Request("a kite", model=OLD), DEFAULTS)  # the older model takes 16:9 but no 2K
    assert (resolved.model, resolved.aspect_ratio, resolved.image_size) == (OLD, "16:9", None)


def test_options_chosen_for_one_model_are_dropped_where_the_sent_model_does_not_take_them():
    asked = Request("a kite", model=OLD, aspect_ratio="21:9", image_size="4K", options_for=PRO)
    resolved = resolve(asked, DEFAULTS)
    assert resolved.image_size is None and resolved.options_for is None


def test_an_edit_keeps_the_shape_of_the_image_it_edits():
    resolved = resolve(Request("make it dusk", images=("source",)), DEFAULTS, source=(1264, 848, "3:2", "1K"))
    assert (resolved.aspect_ratio, resolved.image_size) == ("3:2", "1K")


def test_a_region_edit_takes_no_ratio_or_size_and_a_multi_turn_edit_goes_on_with_its_model():
    region = resolve(Request("a scarf", images=("source",), region=(1, 2, 3, 4)), DEFAULTS)
    assert (region.aspect_ratio, region.image_size, region.model) == (None, None, FLASH)
    turn = resolve(Request("now at night", images=("source",), multi_turn=True), DEFAULTS, continued_model=PRO)
    assert (turn.model, turn.route) == (PRO, "google")
