"""Replay: a request this notebook already made is answered from its history, with no call,
so that re-running a notebook shows the same pictures and pays nothing; a fresh picture is
one step away (``--new``, ``replay=off``, a click in the panel)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from jupyter_client.manager import start_new_kernel

from aigate_nb.core.errors import ConfigurationError
from aigate_nb.gateway.client import Client
from aigate_nb.records.store import History
from aigate_nb.session.session import Request
from support import FLASH, TEST_KEY


def test_an_identical_request_is_answered_from_the_history_without_a_call(session, emu):
    first = session.run(Request("a paper crane", aspect_ratio="16:9"))
    again = session.run(Request("a paper crane", aspect_ratio="16:9"))
    assert len(emu.attempts("a paper crane")) == 1 and len(session.history) == 1
    assert again.replayed and not first.replayed
    assert (again.sha256, again.index, again.id) == (first.sha256, first.index, first.id)
    assert "replayed: no request sent (--new makes a fresh one)" in again.caption()
    assert "in 0." not in again.caption().splitlines()[0]


@pytest.mark.parametrize(
    "change",
    [
        {"prompt": "a paper swan"},
        {"aspect_ratio": "1:1"},
        {"image_size": "2K"},
        {"model": "google/gemini-3-pro-image"},
        {"route": "google"},
    ],
)
def test_anything_that_changes_the_picture_makes_a_new_request(session, emu, change):
    asked = {"prompt": "a paper crane", "aspect_ratio": "16:9", "image_size": "1K"}
    session.run(Request(**asked))
    session.run(Request(**{**asked, **change}))
    assert len(emu.requests) == 2 and len(session.history) == 2


def test_an_edit_of_other_bytes_is_a_new_request(session, emu, tmp_path):
    from PIL import Image

    for colour in ((200, 10, 10), (10, 200, 10)):
        Image.new("RGB", (64, 48), colour).save(tmp_path / "photo.png")
        session.run(Request("make it night", images=(str(tmp_path / "photo.png"),)))
    assert len(emu.attempts("make it night")) == 2


def test_new_always_sends_and_replay_off_turns_replay_off(session, emu):
    session.run(Request("a paper crane"))
    fresh = session.run(Request("a paper crane", new=True))
    assert not fresh.replayed and len(emu.attempts("a paper crane")) == 2
    session.set_defaults(replay="off")
    assert session.settings()["replay"].startswith("off")
    session.run(Request("a paper crane"))
    assert len(emu.attempts("a paper crane")) == 3
    with pytest.raises(Exception, match="replay is on or off"):
        session.set_defaults(replay="sometimes")


def test_variants_replay_what_exists_and_send_only_the_missing(session, emu):
    two = [f.result(timeout=30) for f in session.submit(Request("three owls"), count=2)]
    three = [f.result(timeout=30) for f in session.submit(Request("three owls"), count=3)]
    assert len(emu.attempts("three owls")) == 3 and len(session.history) == 3
    assert [r.replayed for r in three] == [True, True, False]
    assert {r.id for r in three[:2]} == {r.id for r in two}


def test_a_picture_from_the_emulator_is_never_replayed_for_the_gateway(session, emu):
    session.run(Request("a paper crane"))
    gateway = Client(api_key=TEST_KEY, base_url="https://gateway.invalid")  # prepared only, never sent
    prepared = gateway.prepare("a paper crane", model=FLASH)
    assert prepared.endpoint == "gateway" and session.history.find(prepared.request_hash) == []


def test_a_deleted_picture_is_made_anew_not_replayed(session, emu):
    first = session.run(Request("a paper crane"))
    first.files[0].unlink()
    again = session.run(Request("a paper crane"))
    assert not again.replayed and len(emu.attempts("a paper crane")) == 2


def test_minus_one_after_a_replay_is_the_replayed_picture(session, emu):
    crane = session.run(Request("a paper crane"))
    session.run(Request("a paper boat"))
    session.run(Request("a paper crane"))  # replayed: the newest thing this kernel showed
    assert session.resolve_image(-1).id == crane.id and session.resolve_image("-1").id == crane.id
    assert session.resolve_image(-2).prompt == "a paper boat"
    assert session.resolve_image(0).id == crane.id  # a plain index is the history's own


def test_a_script_client_with_a_cache_replays_and_keeps(emu, tmp_path):
    with Client(api_key=TEST_KEY, base_url=emu.url, cache=History("cache", root=tmp_path)) as client:
        first = client.generate("a paper crane")
        again = client.generate("a paper crane")
    assert again.replayed and again.sha256 == first.sha256 and len(emu.attempts("a paper crane")) == 1
    assert len(History("cache", root=tmp_path)) == 1
    with Client(api_key=TEST_KEY, base_url=emu.url) as plain:  # off by default
        plain.generate("a paper crane")
    assert len(emu.attempts("a paper crane")) == 2


def test_a_cache_given_as_a_folder_says_to_pass_a_history(emu, tmp_path):
    with pytest.raises(ConfigurationError, match=r"cache is a History, not a folder: Client\(cache=History\("):
        Client(api_key=TEST_KEY, base_url=emu.url, cache=tmp_path / "cache")
    assert emu.requests == []


# -- Restart & Run All --------------------------------------------------------------------------

CELLS = [
    "%load_ext aigate_nb",
    "%%gemini_image -a 16:9\na lighthouse at dusk",
    "%%gemini_image -e -1\nadd a rowing boat",
    "%%gemini_image -n 2\na gull, two ways",
    "%%gemini_image -e -3 --as harbour\nmake it night",
    "%%gemini_image -e harbour\nadd stars",
    "print(len(__import__('aigate_nb').history))",
]


def _run_all(emu, history_dir: Path) -> tuple[list[str], str]:
    """Run CELLS in a fresh kernel as a notebook would; the captions' first lines and what printed."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIGATE_")}
    env.update(AIGATE_BASE_URL=emu.url, AIGATE_API_KEY=TEST_KEY, AIGATE_HISTORY_DIR=str(history_dir),
               JPY_SESSION_NAME=str(history_dir.parent / "harbour.ipynb"),
               PYTHONPATH=os.pathsep.join(p for p in (str(Path(__file__).parent.parent), env.get("PYTHONPATH")) if p))
    manager, client = start_new_kernel(kernel_name="python3", env=env, cwd=str(history_dir.parent))
    captions, printed = [], ""
    try:
        for cell in CELLS:
            reply = client.execute_interactive(cell, timeout=60, output_hook=lambda msg: _collect(msg, captions))
            assert reply["content"]["status"] == "ok", reply["content"]
            printed = captions.pop() if cell.startswith("print") else printed
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    return captions, printed


def _collect(msg: dict, into: list[str]) -> None:
    content = msg["content"]
    if msg["msg_type"] == "stream" and content.get("name") == "stdout":
        into.append(content["text"].strip())
    elif msg["msg_type"] in ("execute_result", "display_data"):
        text = content.get("data", {}).get("text/plain", "")
        into += [line.split(" | in ")[0].split(" | replayed")[0] for line in text.splitlines() if "sha256" in line]


def test_restart_and_run_all_shows_the_same_pictures_and_sends_nothing(emu, tmp_path):
    first, count = _run_all(emu, tmp_path / ".aigate")
    sent = len(emu.requests)
    again, count_again = _run_all(emu, tmp_path / ".aigate")
    assert len(emu.requests) == sent  # the second run sent nothing
    assert again == first and len(first) >= 6  # every cell's picture is the same, sha256 and all
    assert count == count_again == "6"  # the history did not fill with duplicates

