"""How the variants of one ``-n N`` request show: a grid that wraps, short captions, and
what they share said once, within one result's budget."""

from __future__ import annotations

import json
import re

import pytest

from aigate_nb.core.results import ImageResult
from aigate_nb.gateway.client import Client
from aigate_nb.records.store import History
from aigate_nb.runs.variants import Variants
from aigate_nb.session.session import Request, Session
from support import TEST_KEY


@pytest.fixture
def eight(emu, tmp_path):
    with Client(api_key=TEST_KEY, base_url=emu.url, timeout=(5, 30)) as client:
        session = Session(client, History("variants", root=tmp_path))
        futures = session.submit(Request("eight lighthouses", aspect_ratio="21:9", image_size="2K"), count=8)
        yield Variants(sorted((f.result(timeout=60) for f in futures), key=lambda r: r.index))


def test_eight_variants_wrap_in_a_grid_instead_of_one_row(eight):
    html = eight._repr_mimebundle_()[0]["text/html"]
    assert "display:grid" in html and "repeat(auto-fill" in html and "display:flex" not in html
    assert html.count("<img ") == 8


def test_each_variant_has_a_short_caption_and_the_shared_one_is_said_once(eight):
    html = eight._repr_mimebundle_()[0]["text/html"]
    captions = re.findall(r"<figcaption[^>]*>(.*?)</figcaption>", html)
    assert captions == [f"[{r.index}] {r.size[0]}x{r.size[1]} · {r.elapsed:.2f} s" for r in eight]
    shared = eight.shared_caption()
    assert shared == "google/gemini-3.1-flash-image-preview | 21:9 | 2K | 8 variants (emulator)"
    assert html.count(shared) == 1 and "sha256" not in html


def test_the_grid_stays_within_one_results_budget_and_the_text_keeps_every_caption(eight):
    data, _ = eight._repr_mimebundle_()
    assert len(json.dumps(data)) < ImageResult.display_budget
    assert data["text/plain"] == "\n".join(result.caption() for result in eight)
