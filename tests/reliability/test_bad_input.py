"""The bad-input catalogue, through the Python API and the magic: each mistake gets one
sentence on one line that says what to do, and where the mistake can be seen locally it is
refused before any request reaches the emulator. The key guard searches everything seen.
"""

from __future__ import annotations

import base64
import os
import struct
import threading
import warnings
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from aigate_nb.core.errors import ConfigurationError, HistoryError, InputError, NotKeptError
from aigate_nb.core.images import DEFAULT_INLINE_BUDGET
from aigate_nb.gateway.client import Client
from aigate_nb.records.store import History
from aigate_nb.session.session import Request
from harness import post_attempts
from support import TEST_KEY

pytestmark = pytest.mark.usefixtures("key_guard")

FLASH = "google/gemini-3.1-flash-image-preview"
PRO = "google/gemini-3-pro-image"
FLASH_25 = "google/gemini-2.5-flash-image"


def png_file(path: Path, size=(40, 30), colour=(200, 60, 20)) -> Path:
    Image.new("RGB", size, colour).save(path, format="PNG")
    return path


@pytest.fixture(scope="module")
def fifty_mb_png(tmp_path_factory) -> Path:
    """A 50 MB PNG of noise (4100 x 4100, stored uncompressed): far over the inline budget."""
    side = 4100
    path = tmp_path_factory.mktemp("big") / "noise.png"
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(path, format="PNG", compress_level=0)
    assert path.stat().st_size > 50_000_000
    return path


def generation_requests(emu) -> list:
    return [record for record in emu.requests if record.method == "POST"]


# -- refused before sending, through the API and the magic --------------------------------------

# name: (generate() arguments, the magic's options line and body, what the one sentence says)
REFUSED = {
    "ratio the model lacks": (
        {"model": PRO, "aspect_ratio": "1:8"}, (f"-m {PRO} -a 1:8", "a cat"),
        f"aspect ratio '1:8' is not one of 1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, 9:16, 16:9, 21:9 for {PRO}; "
        "the closest is 9:16.",
    ),
    "size the model lacks": (
        {"model": PRO, "image_size": "512"}, (f"-m {PRO} -s 512", "a cat"),
        f"image size '512' is not one of 1K, 2K, 4K for {PRO}; choose one of them.",
    ),
    "size that is no size": (
        {"image_size": "3K"}, ("-s 3K", "a cat"),
        f"image size '3K' is not one of 512, 1K, 2K, 4K for {FLASH}; did you mean 4K?",
    ),
    "size for a model that takes none": (
        {"model": FLASH_25, "image_size": "2K"}, (f"-m {FLASH_25} -s 2K", "a cat"),
        f"{FLASH_25} makes images of about 1K only and takes no image size; leave the size out, "
        "or choose a Gemini 3 model for 2K or 4K.",
    ),
}


@pytest.mark.parametrize("front_end", ["api", "magic"])
@pytest.mark.parametrize("case", REFUSED)
def test_options_the_model_does_not_take_are_refused_before_sending(frontends, emu, case, front_end):
    kwargs, (line, body), sentence = REFUSED[case]
    session = frontends.session()
    if front_end == "api":
        outcome = frontends.run("api", session, body, **kwargs)
    else:
        outcome = frontends.run("magic", session, body, line=line)
    assert outcome.message == sentence
    assert generation_requests(emu) == []


@pytest.mark.parametrize("front_end", ["api", "magic"])
def test_an_empty_prompt_is_refused_before_sending(frontends, emu, front_end):
    session = frontends.session()
    outcome = frontends.run(front_end, session, "  \n\t ")
    expected = {
        "api": "The prompt is empty; write what the image should show.",
        "magic": "The cell is empty: write the prompt in the cell body, below the %%gemini_image line.",
    }[front_end]
    assert outcome.message == expected
    assert generation_requests(emu) == []


@pytest.mark.parametrize("front_end", ["api", "magic"])
def test_a_missing_file_is_refused_before_sending(frontends, emu, tmp_path, front_end):
    missing = tmp_path / "nowhere" / "cat.png"
    session = frontends.session()
    if front_end == "api":
        outcome = frontends.run("api", session, "edit it", images=[missing])
    else:
        outcome = frontends.run("magic", session, "edit it", line=f"-i {missing}")
    assert outcome.message == f"No image file at '{missing}'; check the path (relative paths start at {Path.cwd()})."
    assert generation_requests(emu) == []


@pytest.mark.parametrize("front_end", ["api", "magic"])
@pytest.mark.parametrize("content", [b"just some notes\n", b"%PDF-1.7\n...", b""], ids=["text", "pdf", "empty"])
def test_a_file_that_is_not_an_image_is_refused_before_sending(frontends, emu, tmp_path, front_end, content):
    path = tmp_path / "picture.png"  # the name promises an image; the bytes decide
    path.write_bytes(content)
    session = frontends.session()
    if front_end == "api":
        outcome = frontends.run("api", session, "edit it", images=[path])
    else:
        outcome = frontends.run("magic", session, "edit it", line=f"-i {path}")
    assert outcome.message == f"'{path}' is not an image Pillow or the model can read; use PNG, JPEG or WebP."
    assert generation_requests(emu) == []


@pytest.mark.parametrize("front_end", ["api", "magic"])
@pytest.mark.parametrize("model,limit", [(FLASH, 14), (FLASH_25, 3)])
def test_too_many_input_images_are_refused_before_sending(frontends, emu, tmp_path, front_end, model, limit):
    path = png_file(tmp_path / "one.png")
    count = limit + 1
    session = frontends.session()
    if front_end == "api":
        outcome = frontends.run("api", session, "combine", model=model, images=[path] * count, image_size=None)
    else:
        session.set_defaults(model=model, image_size=None)
        outcome = frontends.run("magic", session, "combine", line=f"-m {model} " + f"-i {path} " * count)
    assert outcome.message == f"{model} takes at most {limit} input images, and {count} were given; pass fewer images."
    assert generation_requests(emu) == []


# -- accepted -------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["chat", "google"])
@pytest.mark.parametrize("front_end", ["api", "magic"])
def test_a_lowercase_size_is_accepted_and_sent_normalised(frontends, emu, front_end, route):
    session = frontends.session()
    if front_end == "api":
        outcome = frontends.run("api", session, "a lowercase size", route, image_size="2k", aspect_ratio="1:1")
    else:
        outcome = frontends.run("magic", session, "a lowercase size", route, line="-s 2k -a 1:1")
    assert outcome.message is None and outcome.result.image_size == "2K"
    assert outcome.result.size == (2048, 2048)
    [record] = generation_requests(emu)
    sent = record.body["image_config"] if route == "chat" else record.body["generationConfig"]["imageConfig"]
    assert sent == (
        {"aspect_ratio": "1:1", "image_size": "2K"} if route == "chat" else {"aspectRatio": "1:1", "imageSize": "2K"}
    )


@pytest.mark.parametrize("route", ["chat", "google"])
@pytest.mark.parametrize("front_end", ["api", "magic"])
def test_an_unknown_model_passes_the_client_and_the_gateways_refusal_is_shown(frontends, emu, front_end, route):
    model = "google/gemini-9-imaginary"
    session = frontends.session()
    if front_end == "api":
        outcome = frontends.run("api", session, "a cat", route, model=model)
    else:
        outcome = frontends.run("magic", session, "a cat", route, line=f"-m {model}")
    status = {"chat": 400, "google": 404}[route]  # as the gateway and Google's API answer
    assert outcome.message.startswith(f"HTTP {status}: ") and "gemini-9-imaginary" in outcome.message
    assert len(generation_requests(emu)) == 1, "a refusal is not retried"


@pytest.mark.parametrize("front_end", ["api", "magic"])
def test_a_50_mb_image_is_re_encoded_under_the_inline_budget(frontends, emu, fifty_mb_png, front_end):
    # How long it takes is the benchmarks' business (no timed assertion here).
    session = frontends.session()
    if front_end == "api":
        outcome = frontends.run("api", session, "edit the noise", images=[fifty_mb_png])
    else:
        outcome = frontends.run("magic", session, "edit the noise", line=f"-i {fifty_mb_png}")
    assert outcome.message is None, outcome.message
    [record] = generation_requests(emu)
    [sent] = record.images
    assert sent.bytes * 4 / 3 <= DEFAULT_INLINE_BUDGET, "base64 of what was sent fits the budget"
    assert sent.bytes < fifty_mb_png.stat().st_size / 4
    assert sent.mime == "image/jpeg" and max(sent.width, sent.height) < 4100


# -- the history -----------------------------------------------------------------------------------


def test_an_out_of_range_history_index_says_what_there_is(frontends, emu):
    session = frontends.session()
    for prompt in ("first", "second"):
        assert frontends.run("magic", session, prompt).result is not None
    sent = len(generation_requests(emu))
    with pytest.raises(HistoryError) as info:
        session.history[7]
    assert str(info.value) == "No history entry 7; this notebook's history has entries 0 to 1."
    outcome = frontends.run("magic", session, "edit it", line="-e 7")
    assert outcome.message == str(info.value)
    assert len(generation_requests(emu)) == sent


def test_a_corrupt_history_index_keeps_its_good_entries(frontends, emu, tmp_path):
    session = frontends.session(name="damaged")
    for prompt in ("kept zero", "kept one"):
        assert frontends.run("magic", session, prompt).result is not None
    with open(session.history.index_path, "ab") as index:
        index.write(b'{"index": "x", "files": 3}\n\x00\x00\x00\n\xff\xfe not json\n[1, 2]\n{"v": 1, "index": 9, "id"')
    with pytest.warns(RuntimeWarning) as caught:
        reloaded = History(name="damaged", root=tmp_path / "history")
    messages = [str(w.message) for w in caught]
    assert len(messages) == 5 and all("\n" not in m and "the other entries are fine" in m for m in messages)
    assert [entry.prompt for entry in reloaded] == ["kept zero", "kept one"]
    session.history = reloaded
    outcome = frontends.run("magic", session, "edit the first", line="-e 0")
    assert outcome.result is not None and outcome.result.parent_index == 0
    assert outcome.result.index == 2


def test_an_unreadable_history_index_is_one_sentence_saying_what_to_do(frontends, emu, tmp_path):
    index = tmp_path / "history" / "broken" / "index.jsonl"
    index.mkdir(parents=True)  # a folder where the index file should be
    with pytest.raises(HistoryError) as info:
        History(name="broken", root=tmp_path / "history")
    expected = (
        f"Cannot read the history index {index} (it is a folder, not a regular file); "
        "set AIGATE_HISTORY_DIR to a folder you can write to."
    )
    assert str(info.value) == expected
    frontends.load(frontends.session())
    assert frontends.cell("%aigate history --name broken")[1] == expected
    assert generation_requests(emu) == []


def test_a_history_dir_under_a_regular_file_is_refused_when_the_extension_loads(frontends, emu, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("AIGATE_HISTORY_DIR", str(blocker / "history"))
    monkeypatch.setenv("AIGATE_API_KEY", TEST_KEY)
    monkeypatch.setenv("AIGATE_BASE_URL", emu.url)
    refused = r"\(Not a directory\); set AIGATE_HISTORY_DIR to a folder you can write to\.$"
    with pytest.raises(HistoryError, match=refused):
        History()
    frontends.unload()
    _, message, _ = frontends.cell("%load_ext aigate_nb")
    assert message.startswith(f"Cannot read the history index {blocker / 'history'}")
    assert message.endswith("(Not a directory); set AIGATE_HISTORY_DIR to a folder you can write to.")
    assert emu.requests == []


def unwritable_after_loading(session, tmp_path: Path) -> None:
    """Make the session's history folder impossible to create: its root becomes a regular file."""
    root = tmp_path / "vanishing"
    session.history = History(name="nb", root=root)
    root.write_text("the folder was replaced by a file")


NOT_KEPT = "The image was made but the history cannot keep it: cannot write the history's images in "
NOT_KEPT_ADVICE = "; set AIGATE_HISTORY_DIR to a folder you can write to, and save this one with .save(path)."


@pytest.mark.parametrize("front_end", ["magic", "panel"])
def test_a_result_the_history_cannot_keep_is_shown_not_lost(frontends, emu, tmp_path, front_end):
    session = frontends.session()
    unwritable_after_loading(session, tmp_path)
    outcome = frontends.run(front_end, session, "made but homeless")
    if front_end == "magic":
        assert outcome.result.image.size == (512, 512), "the cell's value is the result, shown as usual"
        [notice] = [line for line in outcome.extra if line.startswith(NOT_KEPT)]
    else:
        notice = outcome.message
        data, metadata = frontends.panel(session).snapshot()
        [shown] = metadata["aigate_nb"]["panel"]
        assert shown["index"] is None and shown["sha256"]
        assert "data:image/jpeg;base64," in data["text/html"] and "(not kept)" in data["text/plain"]
    assert notice.startswith(NOT_KEPT) and notice.endswith(NOT_KEPT_ADVICE)
    assert post_attempts(emu, "made but homeless") == 1, "the image is not paid for twice"
    assert len(session.history) == 0


def test_session_run_hands_over_a_result_the_history_cannot_keep(frontends, emu, tmp_path):
    session = frontends.session()
    unwritable_after_loading(session, tmp_path)
    with pytest.raises(NotKeptError) as info:
        session.run(Request("made but homeless"))
    assert info.value.result.image.size == (512, 512)
    message = str(info.value)
    assert message.startswith(NOT_KEPT) and message.endswith(NOT_KEPT_ADVICE)
    assert "\n" not in message


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0,
                    reason="permission bits do not stop root, so a read-only folder cannot be made here; "
                    "the regular-file variants above cover the same refusal")
def test_a_read_only_history_folder_keeps_the_result_and_says_so(frontends, emu, tmp_path):
    session = frontends.session()
    session.history.folder.mkdir(parents=True, exist_ok=True)
    session.history.folder.chmod(0o555)
    try:
        with pytest.raises(NotKeptError, match="set AIGATE_HISTORY_DIR to a folder you can write to"):
            session.run(Request("read-only"))
    finally:
        session.history.folder.chmod(0o755)


# -- configuration ---------------------------------------------------------------------------------


def test_a_base_url_without_a_scheme_is_one_sentence_before_anything_is_sent(frontends, emu, monkeypatch):
    monkeypatch.setenv("AIGATE_API_KEY", TEST_KEY)
    monkeypatch.setenv("AIGATE_BASE_URL", "api.aigate.shop/v1")
    expected = ("The base URL 'api.aigate.shop/v1' (AIGATE_BASE_URL in the environment) has no http:// or "
                "https:// scheme; "
                "write it like https://api.aigate.shop (without /v1).")
    with pytest.raises(ConfigurationError) as info:
        Client()
    assert str(info.value) == expected
    frontends.unload()
    assert frontends.cell("%load_ext aigate_nb")[1] == expected
    assert emu.requests == []


# -- price files and the other files a user names --------------------------------------------------


def deep_json(depth: int) -> str:
    return '{"google/gemini-3-pro-image": ' + "[" * depth + "]" * depth + "}"


@pytest.mark.parametrize("depth", [100, 100_000])
def test_a_price_file_nested_too_deeply_is_one_line_through_config_and_the_environment(
        frontends, emu, tmp_path, monkeypatch, depth):
    path = tmp_path / "prices.json"
    path.write_text(deep_json(depth))
    expected = (f"The price file {path} cannot be used: it is not valid JSON (it is nested more than 64 levels "
                "deep); fix it, or unset AIGATE_PRICES (%aigate config prices=default) to use the built-in prices.")
    session = frontends.session()
    frontends.load(session)
    assert frontends.cell(f"%aigate config prices={path}")[1] == expected
    assert session.settings()["prices"] == "built-in"
    monkeypatch.setenv("AIGATE_PRICES", str(path))
    with pytest.raises(ConfigurationError) as info:
        Client(api_key=TEST_KEY, base_url=emu.url)
    assert str(info.value) == expected


def test_a_price_file_with_a_rate_too_large_to_add_up_is_refused(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text('{"google/gemini-3-pro-image": {"image_output": 1e308}}')
    with pytest.raises(ConfigurationError, match=r"image_output must be a number from 0 to 100,000 \(USD per "
                                                 r"million tokens\), not 1e\+308; fix it"):
        Client(api_key=TEST_KEY, prices=path)


def in_a_thread_with_a_deadline(work: Callable[[], Any], deadline: float = 30.0) -> Any:
    """``work()``'s value or exception; fails the test if it has not returned by ``deadline``
    seconds (it would wait for ever: the thread is left behind, as a daemon)."""
    done: dict[str, Any] = {}

    def run() -> None:
        try:
            done["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            done["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(deadline)
    assert not thread.is_alive(), "it waited instead of refusing"
    if "error" in done:
        raise done["error"]
    return done["value"]

@pytest.fixture
def fifo(tmp_path) -> Path:
    """A FIFO where a file is expected: opening it to read waits for a writer, for ever.
    Removed after the test, so that nothing else waits on it; a reader still blocked is let go."""
    if not hasattr(os, "mkfifo"):
        pytest.skip("no FIFOs on this system")
    path = tmp_path / "named-pipe"
    os.mkfifo(path)
    yield path
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK))  # a blocked reader gets its writer, then EOF
    except OSError:
        pass  # nobody is waiting on it
    path.unlink()


def test_a_price_file_that_is_a_fifo_is_refused_without_waiting(emu, fifo, monkeypatch):
    monkeypatch.setenv("AIGATE_PRICES", str(fifo))
    with pytest.raises(ConfigurationError) as info:
        in_a_thread_with_a_deadline(lambda: Client(api_key=TEST_KEY, base_url=emu.url))
    assert str(info.value) == (
        f"The price file {fifo} cannot be used: it is a FIFO, not a regular file; fix it, or unset AIGATE_PRICES "
        "(%aigate config prices=default) to use the built-in prices."
    )


def test_a_price_file_larger_than_any_price_list_is_refused_unread(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text("{}" + " " * 1_000_000)
    with pytest.raises(ConfigurationError, match=r"it holds 1,000,002 bytes, more than the 1,000,000 allowed; fix it"):
        Client(api_key=TEST_KEY, prices=path)


# -- pictures, and boxes in them -------------------------------------------------------------------


def edit_with(frontends, session, front_end: str, path: Path, region: str | None):
    """Edit the picture at ``path`` (only ``region`` of it, if given) through ``front_end``."""
    if front_end == "api":
        given = {"region": region, "image_size": None} if region else {}
        return frontends.run("api", session, "edit it", images=[path], **given)
    return frontends.run("magic", session, "edit it", line=f"-i {path}" + (f" --region {region}" if region else ""))

@pytest.mark.parametrize("front_end", ["api", "magic"])
@pytest.mark.parametrize("region", [None, "0,0,64,64"])
def test_an_image_path_that_is_a_fifo_is_refused_without_waiting(frontends, emu, fifo, front_end, region):
    session = frontends.session()
    frontends.load(session)  # in the test's thread: the shell's display hooks are set up here
    outcome = in_a_thread_with_a_deadline(lambda: edit_with(frontends, session, front_end, fifo, region))
    assert outcome.message == f"'{fifo}' cannot be an image: it is a FIFO, not a regular file; give the path of " \
                              "an image file."
    assert generation_requests(emu) == []

@pytest.mark.parametrize("front_end", ["api", "magic"])
@pytest.mark.parametrize("box", ["1e308,0,1e308,100", "0,0,-1e308,100", "20000,0,100,100"])
def test_a_region_beyond_any_picture_is_one_line_before_sending(frontends, emu, tmp_path, front_end, box):
    path = png_file(tmp_path / "source.png", size=(512, 512))
    session = frontends.session()
    if front_end == "api":
        outcome = frontends.run("api", session, "a flag", images=[path], region=box, image_size=None)
    else:
        outcome = frontends.run("magic", session, "a flag", line=f"-i {path} --region {box}")
    assert outcome.message == (
        f"region '{box}' reaches beyond any picture a model takes; each number is at most 16,384 pixels, "
        "or a fraction from 0 to 1."
    )
    assert generation_requests(emu) == []

def declared_png(width: int, height: int) -> bytes:
    """A valid greyscale PNG of ``width`` x ``height`` black pixels: tiny on disk (its rows
    compress to almost nothing) however many pixels it declares."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    packer, row = zlib.compressobj(9), b"\0" * (width + 1)  # each row: filter byte 0, then the pixels
    block = row * 1000
    body = b"".join(packer.compress(block) for _ in range(height // 1000))
    body += packer.compress(row * (height % 1000)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return _PNG_SIGNATURE + chunk(b"IHDR", header) + chunk(b"IDAT", body) + chunk(b"IEND", b"")


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def huge_png(tmp_path_factory) -> Path:
    """140 KB on disk, 12000 x 12000 (144 MP) declared: seconds and gigabytes to decode."""
    path = tmp_path_factory.mktemp("huge") / "huge.png"
    path.write_bytes(declared_png(12_000, 12_000))
    assert path.stat().st_size < 200_000
    return path


@pytest.mark.parametrize("front_end", ["api", "magic"])
@pytest.mark.parametrize("region", [None, "0,0,100,100"])
def test_a_picture_declaring_more_pixels_than_any_model_takes_is_refused_before_decoding(
        frontends, emu, huge_png, front_end, region):
    session = frontends.session()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Pillow's DecompressionBombWarning is not how this is said
        outcome = edit_with(frontends, session, front_end, huge_png, region)
    assert outcome.message == (
        f"'{huge_png}' is 12000x12000 pixels (144 MP), more than any model takes (at most 64 MP and 16,384 pixels "
        "a side); scale it down first."
    )
    assert generation_requests(emu) == []


@pytest.mark.parametrize("size", [(20_000, 20_000), (40_000, 1)], ids=["a decompression bomb", "one side too long"])
@pytest.mark.parametrize("form", ["bytes", "data URL"])
def test_a_picture_too_large_in_any_form_is_one_line_before_sending(frontends, emu, size, form):
    data = declared_png(*size)
    given = data if form == "bytes" else f"data:image/png;base64,{base64.b64encode(data).decode()}"
    session = frontends.session()
    outcome = frontends.run("api", session, "edit it", images=[given])
    what = "the bytes given" if form == "bytes" else "the data URL"
    pixels = "over 179 MP" if size == (20_000, 20_000) else "40000x1 pixels"
    assert outcome.message == (
        f"{what} is {pixels}, more than any model takes (at most 64 MP and 16,384 pixels a side); scale it down first."
    )
    assert generation_requests(emu) == []


def test_the_largest_pictures_the_models_make_are_taken_as_inputs(frontends, emu):
    session = frontends.session()
    for size in [(12_288, 1_536), (6_336, 2_688), (4_096, 4_096)]:
        outcome = frontends.run("api", session, "edit it", images=[declared_png(*size)])
        assert outcome.message is None, outcome.message


# -- prompt templates ------------------------------------------------------------------------------


class RefusesToFormat:
    """A value whose ``__format__`` fails, as some objects' do."""

    def __format__(self, spec: str) -> str:
        raise RuntimeError("no text for this one")


# name: (the rows, the template, the one sentence after "Row 0: ")
UNFILLABLE = {
    "indexing a number": ([{"n": 3}], "a door numbered {n[0]}",
                          "the template's {n[0]} cannot be filled ('int' object is not subscriptable)"),
    "a spec the value lacks": ([{"n": "three"}], "a door numbered {n:05d}",
                               "the template's {n:05d} cannot be filled (Unknown format code 'd' for object "
                               "of type 'str')"),
    "a key the value lacks": ([{"d": {"colour": "red"}}], "a {d[size]} door", "the template's {d[size]} cannot "
                              "be filled ('size')"),
    "a value that will not format": ([{"n": RefusesToFormat()}], "a door numbered {n}",
                                     "the template's {n} cannot be filled (no text for this one)"),
}


@pytest.mark.parametrize("front_end", ["api", "magic"])
@pytest.mark.parametrize("case", UNFILLABLE)
def test_a_template_field_its_row_cannot_fill_is_one_line_naming_the_field(frontends, emu, front_end, case):
    rows, template, sentence = UNFILLABLE[case]
    session = frontends.session()
    expected = f"Row 0: {sentence}; check what that column holds in this row."
    if front_end == "api":
        from aigate_nb.runs.batches import batch

        with pytest.raises(InputError) as info:
            batch(rows, template, session=session, display=False)
        assert str(info.value) == expected
    else:
        frontends.load(session)
        frontends.shell.user_ns["rows"] = rows
        assert frontends.cell(f"%%gemini_image --each rows\n{template}")[1] == expected
    assert generation_requests(emu) == []


# -- reports ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("front_end", ["api", "magic"])
def test_a_report_into_a_missing_folder_says_so_and_makes_none(frontends, emu, tmp_path, front_end):
    session = frontends.session()
    target = tmp_path / "no" / "such" / "dir" / "r.html"
    expected = (f"Cannot write the report to {target} ({target.parent} does not exist); give a path in a folder "
                "you can write to, or create the folder first.")
    if front_end == "api":
        with pytest.raises(InputError) as info:
            session.history.export_html(target)
        assert str(info.value) == expected
    else:
        frontends.load(session)
        assert frontends.cell(f"%aigate history --export {target}")[1] == expected
    assert not (tmp_path / "no").exists()
