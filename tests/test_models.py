"""Option checks that run before any request is sent."""

from __future__ import annotations

import pytest

from aigate_nb.core.errors import InputError
from aigate_nb.core.models import normalise_options, normalise_size, spec_for
from support import FLASH, PRO

FLASH_25 = "google/gemini-2.5-flash-image"


@pytest.mark.parametrize(
    "given,expected", [("1k", "1K"), ("2K", "2K"), (" 4k ", "4K"), ("0.5K", "512"), ("512px", "512"), (None, None)]
)
def test_sizes_are_normalised(given, expected):
    assert normalise_size(given) == expected


def test_ratio_spellings_are_normalised_and_lowercase_sizes_accepted():
    assert normalise_options(FLASH, "16x9", "2k", 0) == ("16:9", "2K")
    assert normalise_options(FLASH, " 21 / 9 ", None, 1) == ("21:9", None)


def test_extra_ratios_only_on_flash_31():
    assert normalise_options(FLASH, "8:1", "4K", 0) == ("8:1", "4K")
    with pytest.raises(InputError, match=r"aspect ratio '8:1' is not one of 1:1, .* for google/gemini-3-pro-image"):
        normalise_options(PRO, "8:1", None, 0)


def test_unsupported_ratio_names_the_closest_allowed_one():
    with pytest.raises(InputError, match="the closest is 21:9"):
        normalise_options(PRO, "7:3", None, 0)


def test_512_is_refused_on_pro_with_the_allowed_sizes():
    with pytest.raises(InputError, match="image size '512' is not one of 1K, 2K, 4K"):
        normalise_options(PRO, None, "512", 0)


def test_flash_25_takes_no_size():
    with pytest.raises(InputError, match="takes no image size"):
        normalise_options(FLASH_25, "1:1", "1K", 0)


def test_too_many_input_images_are_refused():
    with pytest.raises(InputError, match="at most 3 input images, and 4 were given"):
        normalise_options(FLASH_25, None, None, 4)
    assert normalise_options(FLASH, None, None, 14) == (None, None)


def test_an_unknown_model_passes_through_unchecked():
    assert spec_for("acme/new-image-model") is None
    assert normalise_options("acme/new-image-model", "7:3", "8K", 40) == ("7:3", "8K")


def test_a_ratio_that_is_no_ratio_is_refused_for_any_model():
    with pytest.raises(InputError, match="write it like 16:9"):
        normalise_options("acme/new-image-model", "wide", None, 0)


def test_bare_and_prefixed_ids_are_the_same_model():
    assert spec_for("gemini-3-pro-image-preview") is spec_for("google/gemini-3-pro-image")
