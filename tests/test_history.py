"""The per-notebook History: which notebook, persistence, crash safety,
concurrent appends, lookups and their errors, lineage, the gallery, and
editing from an earlier entry."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import io
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageDraw, ImageStat

from aigate_nb.core.costs import Usage
from aigate_nb.core.errors import HistoryError
from aigate_nb.core.images import ReplyImage, StoredImage
from aigate_nb.core.results import ImageResult
from aigate_nb.records import thumbnails
from aigate_nb.records.layout import PREVIEW_EDGE
from aigate_nb.records.names import notebook_name
from aigate_nb.records.store import History, HistoryEntry
from support import wait_for

FLASH = "google/gemini-3.1-flash-image-preview"
REPO = Path(__file__).resolve().parent.parent
APPEND_LOOP = Path(__file__).resolve().parent / "helpers" / "append_loop.py"


def png(color=(200, 30, 30), size=(64, 48)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, format="PNG")
    return buf.getvalue()


def result_of(n: int = 0, **fields) -> ImageResult:
    fields.setdefault("prompt", f"fox number {n}")
    fields.setdefault("model", FLASH)
    return ImageResult([ReplyImage("image/png", png((n % 256, 7, 7)))], **fields)


@pytest.fixture
def history(tmp_path):
    return History("notebook", root=tmp_path)


# -- which notebook ---------------------------------------------------------------------------

def test_notebook_name_comes_from_the_jupyter_session_path():
    env = {"JPY_SESSION_NAME": "/home/ada/work/Fox studies.ipynb"}
    assert notebook_name(environ=env) == "Fox_studies"


def test_notebook_name_comes_from_vs_code_when_jupyter_server_says_nothing():
    ns = {"__vsc_ipynb_file__": "c:\\Users\\ada\\edits.ipynb"}
    assert notebook_name(ns, environ={}) == "edits"


def test_notebook_name_falls_back_to_the_users_choice_then_default():
    assert notebook_name({}, environ={}, fallback="my/run: 1") == "my_run_1"
    assert notebook_name({}, environ={}) == "default"


def test_notebook_names_become_safe_folder_names():
    for path in ("../../etc/passwd", "/x/..ipynb", "/x/CON.ipynb", "a b\tc?.ipynb"):
        name = notebook_name(environ={"JPY_SESSION_NAME": path})
        assert re.fullmatch(r"[\w.-]+", name) and name not in (".", "..") and name.lower() != "con"


def test_history_lives_in_the_history_dir_per_notebook(history_dir, monkeypatch):
    monkeypatch.setenv("JPY_SESSION_NAME", "lab/Fox.ipynb")
    history = History()
    history.append(result_of())
    assert history.folder == history_dir / "Fox"
    assert (history_dir / "Fox" / "index.jsonl").is_file()
    assert History.for_notebook({"__vsc_ipynb_file__": "/w/Other.ipynb"}).folder == history_dir / "Fox"
    monkeypatch.delenv("JPY_SESSION_NAME")
    assert History.for_notebook({"__vsc_ipynb_file__": "/w/Other.ipynb"}).folder == history_dir / "Other"


# -- persistence ------------------------------------------------------------------------------

def test_entries_survive_a_new_history_object(tmp_path):
    parts = [{"text": "ok"}, {"inlineData": {"mimeType": "image/png", "imageIndex": 0}, "thoughtSignature": "c2ln"}]
    first = History("nb", root=tmp_path)
    kept = [
        first.append(result_of(0, aspect_ratio="16:9", image_size="2K", text="Here.", route="google",
                               model_parts=parts, elapsed=1.25, emulated=True)),
        first.append(result_of(1)),
    ]
    again = History("nb", root=tmp_path)
    assert len(again) == 2
    for old, new in zip(kept, again):
        assert _kept_fields(new) == _kept_fields(old)
    entry = again[0]
    assert (entry.aspect_ratio, entry.image_size, entry.text, entry.route) == ("16:9", "2K", "Here.", "google")
    assert entry.model_parts == parts and entry.emulated and entry.elapsed == 1.25
    assert entry.files == [tmp_path / "nb" / "images" / f"{entry.id}-1.png"]
    assert re.fullmatch(r"[0-9a-f]{12}", entry.id)


def test_the_stamp_changes_when_another_kernel_appends_or_clears_and_only_then(tmp_path):
    mine, other = History("nb", root=tmp_path), History("nb", root=tmp_path)
    empty = mine.stamp()
    assert mine.stamp() == empty
    other.append(result_of(0))
    one = mine.stamp()
    assert one != empty and mine.stamp() == one
    other.clear()
    other.append(result_of(1))  # as many entries as before, but not the same
    assert mine.stamp() not in (one, empty)


def test_files_keep_the_original_bytes_and_format(history):
    jpeg = io.BytesIO()
    Image.new("RGB", (40, 30), (9, 9, 9)).save(jpeg, format="JPEG")
    result = ImageResult([ReplyImage("image/jpeg", jpeg.getvalue()), ReplyImage("image/png", png())], "two", FLASH)
    entry = history.append(result)
    assert [p.name for p in entry.files] == [f"{entry.id}-1.jpg", f"{entry.id}-2.png"]
    assert entry.files[0].read_bytes() == jpeg.getvalue()
    assert entry.sha256s == [hashlib.sha256(jpeg.getvalue()).hexdigest(), hashlib.sha256(png()).hexdigest()]
    assert entry.sizes == [(40, 30), (64, 48)]


def test_append_tells_the_result_where_it_is(history):
    result = result_of()
    entry = history.append(result)
    assert (result.id, result.index, result.files) == (entry.id, 0, entry.files)
    assert history.append(result) is entry  # appending again does not duplicate
    assert len(history) == 1


def _kept_fields(entry) -> dict:
    """Every field of the result an entry wraps, its images as their files."""
    return {item.name: getattr(entry, item.name) for item in dataclasses.fields(ImageResult) if item.name[0] != "_"}


def test_a_new_field_of_the_record_is_kept_and_read_back_by_the_history(history, tmp_path):
    usage = Usage(input_tokens=7, image_tokens=1120)
    entry = history.append(result_of(0, usage=usage, cost=0.25, cost_source="gateway"))
    line = json.loads((history.folder / "index.jsonl").read_text().splitlines()[0])
    kept = {item.metadata["kept"] or item.name for item in dataclasses.fields(ImageResult) if "kept" in item.metadata}
    assert kept <= set(line)
    assert line["usage"] == {"input_tokens": 7, "image_tokens": 1120, "text_tokens": 0, "thinking_tokens": 0}
    assert line["parent"] is None and line["created"] == entry.created
    again = History(history.name, root=history.folder.parent)[0]
    assert again.usage == usage and (again.cost, again.cost_source) == (0.25, "gateway")


def test_an_entry_is_read_only_and_reads_its_fields_from_its_result(history):
    entry = history.append(result_of(0))
    with pytest.raises(AttributeError, match="read-only"):
        entry.prompt = "changed"
    assert entry.parent is entry.parent_id is None and entry.mimes == ["image/png"]
    assert entry.result() is not entry.result() and entry.result().id == entry.id


def test_entries_keep_no_pixels_in_memory(history):
    entry = history.append(result_of())
    kept = entry._kept
    assert kept._pixels is None and all(isinstance(item, StoredImage) for item in kept.originals)
    assert not any(isinstance(v, (bytes, bytearray)) or hasattr(v, "getpixel") for v in vars(kept).values())
    assert entry.image.size == (64, 48)
    assert entry.image is not entry.image  # opened from the file each time
    assert entry._aigate_image_bytes() == ("image/png", png((0, 7, 7)))


def test_a_kept_result_reads_its_bytes_from_the_file_instead_of_holding_them(history):
    # IPython's Out keeps every cell's value: fifty 4K results must not mean 1.5 GB in memory.
    result = result_of(5)
    original, sha = result.data, result.sha256
    history.append(result)
    assert all(isinstance(item, StoredImage) for item in result.originals)
    assert result.originals[0].path == history[0].path
    assert result.data == original and result.sha256 == sha
    assert result._aigate_image_bytes() == ("image/png", original)
    assert history[0].result().data == original


def test_an_entry_displays_as_its_result_did(history):
    result = result_of(3, aspect_ratio="4:3", image_size="1K", elapsed=2.345, emulated=True)
    entry = history.append(result)
    shown, meta = entry._repr_mimebundle_()
    assert shown["text/plain"] == result._repr_mimebundle_()[0]["text/plain"]
    assert shown["text/plain"].startswith("[0] ")
    assert meta["aigate_nb"]["history_id"] == entry.id
    rebuilt = entry.result()
    assert (rebuilt.id, rebuilt.index, rebuilt.data) == (entry.id, 0, result.data)


# -- damage and crashes -----------------------------------------------------------------------

def test_a_cut_off_last_line_is_skipped_with_a_warning(tmp_path):
    history = History("nb", root=tmp_path)
    for n in range(3):
        history.append(result_of(n))
    index = history.index_path
    whole = index.read_bytes()
    last_start = whole.rstrip(b"\n").rfind(b"\n") + 1
    index.write_bytes(whole[: last_start + 40])  # the last entry, cut mid-line
    with pytest.warns(RuntimeWarning, match="line 3 .* damaged"):
        reloaded = History("nb", root=tmp_path)
    assert [e.index for e in reloaded] == [0, 1]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the damaged line was reported once already
        entry = reloaded.append(result_of(9))
    assert entry.index == 2
    with pytest.warns(RuntimeWarning, match="damaged") as caught:
        final = History("nb", root=tmp_path)
    assert len(caught) == 1
    assert [e.prompt for e in final] == ["fox number 0", "fox number 1", "fox number 9"]


def test_a_garbage_line_in_the_middle_is_skipped(tmp_path):
    history = History("nb", root=tmp_path)
    history.append(result_of(0))
    with open(history.index_path, "ab") as f:
        f.write(b'{"not": "an entry"}\n\x00\xff garbage\n')
    with pytest.warns(RuntimeWarning, match="damaged"):  # this writer reads the lines it did not write
        history.append(result_of(1))
    with pytest.warns(RuntimeWarning, match="damaged"):
        reloaded = History("nb", root=tmp_path)
    assert [e.index for e in reloaded] == [0, 1]


def test_an_entry_whose_image_is_gone_is_skipped_with_a_warning(tmp_path):
    history = History("nb", root=tmp_path)
    entries = [history.append(result_of(n)) for n in range(3)]
    entries[1].path.unlink()
    with pytest.warns(RuntimeWarning, match="entry 1 .* missing"):
        reloaded = History("nb", root=tmp_path)
    assert [e.index for e in reloaded] == [0, 2]
    with pytest.raises(HistoryError, match="entry 1 cannot be used: its image file .* is missing"):
        reloaded[1]
    assert reloaded.append(result_of(3)).index == 3  # numbers are never reused


def _complete_lines(index: Path) -> list[dict]:
    return [json.loads(line) for line in index.read_bytes().split(b"\n")[:-1] if line.strip()]


def test_a_writer_killed_mid_append_loses_at_most_that_entry(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    index = tmp_path / "crash" / "index.jsonl"
    rng = random.Random(1234)
    for _round in range(5):
        before = len(_complete_lines(index)) if index.exists() else 0
        writer = subprocess.Popen(
            [sys.executable, str(APPEND_LOOP), str(tmp_path), "crash"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        try:
            target = before + rng.randint(1, 6)
            wait_for(lambda: index.exists() and len(_complete_lines(index)) >= target, timeout=20)
            deadline = time.monotonic() + rng.uniform(0, 0.05)
            while time.monotonic() < deadline:  # a random moment inside the next append
                pass
        finally:
            writer.send_signal(signal.SIGKILL)
            writer.wait()
        lines = _complete_lines(index)
        history = History("crash", root=tmp_path)
        assert [e.index for e in history] == list(range(len(lines)))
        for record, entry in zip(lines, history):
            assert entry.id == record["id"]
            # the image was complete before its line was written
            assert hashlib.sha256(entry.path.read_bytes()).hexdigest() == record["sha256s"][0]


def test_temporary_files_a_killed_writer_left_are_swept_after_an_hour(tmp_path):
    history = History("nb", root=tmp_path)
    entry = history.append(result_of(1))
    assert history.wait_for_thumbnails(timeout=30)
    images, thumbs = history.folder / "images", history.folder / "thumbs"
    old = [images / f".{entry.id}-2.png.4242.1.tmp", thumbs / f".{entry.id}.jpg.4242.1.tmp"]
    fresh = images / ".abcdef012345-1.png.4243.1.tmp"
    for path in (*old, fresh):
        path.write_bytes(b"half an image")
    hour_ago = time.time() - 3700
    for path in old:
        os.utime(path, (hour_ago, hour_ago))
    again = History("nb", root=tmp_path)
    assert not any(path.exists() for path in old)
    assert fresh.exists()  # perhaps another kernel writing right now
    assert [e.id for e in again] == [entry.id] and entry.path.is_file()


def test_two_processes_appending_at_once_get_distinct_indices(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    writers = [
        subprocess.Popen([sys.executable, str(APPEND_LOOP), str(tmp_path), "shared", "30"], env=env,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        for _ in range(2)
    ]
    for writer in writers:
        _, err = writer.communicate(timeout=120)
        assert writer.returncode == 0, err.decode()
    history = History("shared", root=tmp_path)
    assert [e.index for e in history] == list(range(60))


def test_a_second_history_on_the_same_notebook_continues_the_numbering(tmp_path):
    kernel_a, kernel_b = History("nb", root=tmp_path), History("nb", root=tmp_path)
    kernel_a.append(result_of(0))
    assert kernel_b.append(result_of(1)).index == 1
    assert kernel_a.append(result_of(2)).index == 2
    assert [e.prompt for e in kernel_a] == ["fox number 0", "fox number 1", "fox number 2"]
    kernel_b.reload()
    assert [e.index for e in kernel_b] == [0, 1, 2]


def test_eight_threads_appending_at_once_lose_nothing(tmp_path):
    history = History("busy", root=tmp_path)
    start = threading.Barrier(8)
    made: list[HistoryEntry] = []

    def work(worker: int) -> None:
        start.wait()
        for n in range(10):
            made.append(history.append(result_of(worker * 10 + n)))

    threads = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(e.index for e in made) == list(range(80))
    assert [e.index for e in history] == list(range(80))
    reloaded = History("busy", root=tmp_path)
    assert sorted(e.prompt for e in reloaded) == sorted(f"fox number {n}" for n in range(80))


# -- lookups ----------------------------------------------------------------------------------

def test_entries_are_found_by_index_negative_index_string_or_id(history):
    entries = [history.append(result_of(n)) for n in range(5)]
    assert history[0] is entries[0] and history[-1] is entries[4] and history[-5] is entries[0]
    assert history.get(3) is entries[3] and history.get("-2") is entries[3] and history.get(" 1 ") is entries[1]
    assert history.get(entries[2].id) is entries[2]
    assert list(history) == entries and len(history) == 5


def test_a_missing_index_says_what_exists(history):
    empty = r"^No history entry 0; this notebook's history is empty; generate an image first\.$"
    with pytest.raises(HistoryError, match=empty):
        history.get(0)
    for n in range(5):
        history.append(result_of(n))
    with pytest.raises(HistoryError, match=r"^No history entry 7; this notebook's history has entries 0 to 4\.$"):
        history.get("7")
    with pytest.raises(HistoryError, match=r"^No history entry -6; .* 0 to 4\.$"):
        history[-6]
    with pytest.raises(HistoryError, match=r"^No history entry with id 'deadbeef0000'"):
        history.get("deadbeef0000")
    with pytest.raises(HistoryError):
        history.get(1.5)


def test_lineage_follows_parents_back_to_the_first_image(history):
    root = history.append(result_of(0))
    history.append(result_of(1))  # unrelated
    child = history.append(result_of(2, parent_id=root.id))
    history.append(result_of(3), parent=child)
    grandchild = history.append(result_of(4), parent="-1")
    assert [e.index for e in history.lineage(-1)] == [0, 2, 3, 4]
    assert grandchild.parent_index == 3
    assert [e.index for e in history.lineage(1)] == [1]


def test_an_unknown_parent_is_refused(history):
    with pytest.raises(HistoryError, match="No history entry 4"):
        history.append(result_of(), parent=4)
    with pytest.raises(HistoryError, match="not in a history"):
        history.append(result_of(), parent=result_of(1))


# -- gallery ----------------------------------------------------------------------------------

def test_gallery_shows_small_thumbnails_newest_first(history, monkeypatch):
    for n in range(3):
        parent = history[-1].id if n else None
        image = ReplyImage("image/png", png((n * 80, 10, 10), (1200, 800)))
        history.append(ImageResult([image], f"fox <{n}>", FLASH, parent_id=parent))
    page = history._repr_html_()
    assert [int(i) for i in re.findall(r"\[(\d+)\] fox", page)] == [2, 1, 0]
    assert "fox &lt;2&gt;" in page and "from [1]" in page
    thumbs = [Image.open(io.BytesIO(base64.b64decode(b))) for b in re.findall(r"base64,([^\"]+)\"", page)]
    assert len(thumbs) == 3 and all(max(t.size) <= 160 for t in thumbs)
    assert all((history.folder / "thumbs" / f"{entry.id}.jpg").is_file() for entry in history)
    assert history.wait_for_thumbnails(timeout=30)

    def no_more_thumbnails(*args, **kwargs):
        raise AssertionError("thumbnails should come from the cache")

    monkeypatch.setattr("aigate_nb.records.thumbnails.make_thumbnails", no_more_thumbnails)
    assert history._repr_html_() == page


def test_history_repr_is_short_and_deterministic(history):
    assert repr(history) == "<History 'notebook': 0 entries>"
    history.append(result_of(0, prompt="a red fox"))
    assert repr(history) == "<History 'notebook': 1 entry, newest [0] 'a red fox'>"


# -- editing from the past --------------------------------------------------------------------

def test_edit_from_history_sends_original_bytes(client, emu, tmp_path):
    history = History("edits", root=tmp_path)
    source = history.append(client.generate("a red fox", model=FLASH, aspect_ratio="1:1", image_size="1K"))
    reloaded = History("edits", root=tmp_path)[0]  # as after a kernel restart
    edit = client.generate("make it blue", model=FLASH, images=[reloaded])
    sent = _input_hashes(emu.requests[-1])
    assert sent == [hashlib.sha256(source.path.read_bytes()).hexdigest()]
    assert edit.parent_id == source.id
    entry = history.append(edit)
    assert (entry.parent, entry.parent_index) == (source.id, 0)
    assert [e.index for e in history.lineage(entry.index)] == [0, 1]


def test_edit_from_a_result_records_its_entry_as_parent(client, emu, tmp_path):
    history = History("edits", root=tmp_path)
    source = client.generate("a red fox", model=FLASH, aspect_ratio="1:1", image_size="1K")
    history.append(source)
    from_result = client.generate("make it green", model=FLASH, images=[source])
    from_rebuilt = client.generate("make it gold", model=FLASH, images=[history[0].result()])
    assert from_result.parent_id == from_rebuilt.parent_id == source.id
    assert _input_hashes(emu.requests[-1]) == [source.sha256]
    assert history.append(from_rebuilt).parent_index == 0


def _input_hashes(record) -> list[str]:
    return [image.sha256 for image in record.images]


def test_aigate_nb_history_is_the_current_notebooks_history(tmp_path):
    # The public contract: aigate_nb.history is the current notebook's History.
    import aigate_nb
    from aigate_nb.session.session import Session, set_current_session

    class NoClient:
        model = FLASH

        def close(self):
            pass

    session = Session(client=NoClient(), history=History("current", root=tmp_path))
    set_current_session(session)
    try:
        session.history.append(result_of(1))
        session.history.append(result_of(2), parent=0)
        h = aigate_nb.history
        assert len(h) == 2 and h[-1].prompt == "fox number 2"
        assert [entry.index for entry in h] == [0, 1]
        assert [entry.index for entry in h.lineage(-1)] == [0, 1]
        assert h is session.history and h.folder == tmp_path / "current"
        assert "fox number 2" in h._repr_html_()
        assert repr(h) == repr(session.history) and str(h).startswith("<History 'current'")
        with pytest.raises(HistoryError, match=r"history\.get\(\.\.\.\) also takes an entry's id"):
            session.history["abc"]
        with pytest.raises(AttributeError):
            h._private
    finally:
        set_current_session(None)


# -- clearing ---------------------------------------------------------------------------------

def test_clear_removes_entries_images_and_thumbnails_and_numbering_starts_again(tmp_path):
    history = History("nb", root=tmp_path)
    kept = [history.append(result_of(n)) for n in range(3)]
    history.thumbnail(kept[0])
    other = History("another", root=tmp_path)
    spared = other.append(result_of(9))
    assert history.clear() == 3
    assert len(history) == 0 and list(history) == []
    assert not any(path.exists() for entry in kept for path in entry.files)
    assert not (history.folder / "thumbs").exists()
    assert history.index_path.read_bytes() == b""
    assert History("nb", root=tmp_path)._entries == []
    assert history.append(result_of(4)).index == 0
    assert [e.prompt for e in History("nb", root=tmp_path)] == ["fox number 4"]
    assert spared.path.is_file() and len(History("another", root=tmp_path)) == 1


def test_clearing_a_history_that_was_never_written_creates_nothing(tmp_path):
    history = History("fresh", root=tmp_path)
    assert history.clear() == 0
    assert not history.folder.exists()


def test_a_second_kernel_notices_the_clear_and_numbers_from_zero(tmp_path):
    kernel_a, kernel_b = History("nb", root=tmp_path), History("nb", root=tmp_path)
    for n in range(3):
        kernel_a.append(result_of(n))
    kernel_b.reload()
    assert len(kernel_b) == 3
    kernel_a.clear()
    kernel_a.append(result_of(7))
    kernel_a.append(result_of(8))
    kernel_a.append(result_of(9))
    kernel_a.append(result_of(10))  # the index is longer again than kernel_b read it
    kernel_b.reload()
    assert [(e.index, e.prompt) for e in kernel_b] == [(i, f"fox number {n}") for i, n in enumerate(range(7, 11))]
    assert kernel_b.append(result_of(11)).index == 4


def test_a_result_whose_history_was_cleared_says_its_image_is_gone(history):
    result = result_of(3)
    history.append(result)
    history.clear()
    with pytest.raises(HistoryError, match=r"is gone \(its history was cleared"):
        result.data


def test_a_clear_between_writing_the_images_and_the_index_line_keeps_the_entry_whole(tmp_path):
    history = History("nb", root=tmp_path)
    for n in range(3):
        history.append(result_of(n))
    write_images, cleared = history._write_images, []

    def write_then_clear(entry_id, originals):
        names = write_images(entry_id, originals)
        if not cleared:  # another thread (a cell's --clear) runs just now, before the index lock
            worker = threading.Thread(target=lambda: cleared.append(history.clear()))
            worker.start()
            worker.join()
        return names

    history._write_images = write_then_clear
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        entry = history.append(result_of(7))
    assert cleared == [3]
    assert entry.index == 0 and entry.path.read_bytes() == png((7, 7, 7))
    again = History("nb", root=tmp_path)
    assert [(e.index, e.prompt) for e in again] == [(0, "fox number 7")]


def test_lookups_see_what_another_kernel_appended_or_cleared_without_a_refresh(tmp_path):
    kernel_a, kernel_b = History("nb", root=tmp_path), History("nb", root=tmp_path)
    kernel_a.append(result_of(0))
    kernel_a.append(result_of(1))
    assert len(kernel_b) == 2 and kernel_b[-1].prompt == "fox number 1"
    held = kernel_b[0]
    kernel_a.clear()
    assert len(kernel_b) == 0 and list(kernel_b) == []
    with pytest.raises(HistoryError, match="No history entry 0"):
        kernel_b.get(0)
    with pytest.raises(HistoryError, match="is gone"):
        held.image  # an entry kept in a variable says why, in one line
    kernel_a.append(result_of(5))
    assert [e.prompt for e in kernel_b] == ["fox number 5"]


def test_lookups_while_appending_in_the_same_process_never_deadlock(tmp_path):
    # A panel's worker appends while its refresh looks the history up: both take the history's
    # thread lock and the index's file lock, and must take them in one order.
    history = History("busy", root=tmp_path)
    stop, errors = threading.Event(), []

    def look() -> None:
        try:
            while not stop.is_set():
                len(history)
                list(history)
                if len(history):
                    history.get(-1)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    lookers = [threading.Thread(target=look, daemon=True) for _ in range(2)]
    for thread in lookers:
        thread.start()
    writers = [threading.Thread(target=lambda: [history.append(result_of(n)) for n in range(150)], daemon=True)
               for _ in range(2)]
    for thread in writers:
        thread.start()
    deadline = time.monotonic() + 30  # they take about a second
    for thread in writers:
        thread.join(timeout=max(0.1, deadline - time.monotonic()))
    stop.set()
    for thread in lookers:
        thread.join(timeout=max(0.1, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in writers + lookers), "a lookup and an append deadlocked"
    assert errors == [] and [e.index for e in history] == list(range(300))


def test_a_history_folder_deleted_by_hand_is_seen_as_empty(tmp_path):
    import shutil

    history = History("nb", root=tmp_path)
    entry = history.append(result_of(1))
    assert history.wait_for_thumbnails(timeout=30)  # a person deletes it after, not while, it is written
    shutil.rmtree(history.folder)
    assert len(history) == 0
    with pytest.raises(HistoryError, match="is gone"):
        entry.images
    assert history.append(result_of(2)).index == 0


def test_an_image_file_deleted_while_the_kernel_runs_leaves_the_gallery_and_the_rest_working(history,
                                                                                            held_thumbnails):
    _, go, _ = held_thumbnails
    kept, lost = history.append(result_of(1)), history.append(result_of(2))
    lost.path.unlink()  # before its thumbnail was made
    go.set()
    assert history.wait_for_thumbnails(timeout=30)
    gallery = history._repr_html_()
    assert "image file gone" in gallery and gallery.count("<img ") == 1
    data, _ = lost._repr_mimebundle_()
    assert data == {"text/plain": f"[1] fox number 2: its image file {lost.path} is gone (deleted or moved)."}
    assert kept._repr_mimebundle_()[0]["text/plain"].startswith("[0]")


def test_an_id_of_digits_only_is_found_as_an_id_not_read_as_an_index(history, monkeypatch):
    # secrets.token_hex(6) is all digits about once in 300 entries.
    history.append(result_of(0))
    monkeypatch.setattr("aigate_nb.records.store.secrets.token_hex", lambda n: "914806887131")
    entry = history.append(result_of(1))
    assert entry.id == "914806887131"
    assert history.get("914806887131") is entry and history.get(entry) is entry
    assert [e.index for e in history.lineage(entry)] == [1]
    assert history.get("1") is entry and history.get("0").prompt == "fox number 0"
    from aigate_nb.session.session import Session

    class NoClient:
        model = FLASH

    session = Session(client=NoClient(), history=history)
    assert session.resolve_image("914806887131") is entry  # -e with an id of digits
    assert session.resolve_image("-1") is entry and session.resolve_image("0").index == 0


# -- thumbnails and previews made on append -------------------------------------------------------

def drawing(size=(1376, 768)) -> Image.Image:
    """A picture with a gradient, a disc, text and thin slanted lines: what resampling can blur or alias."""
    picture = Image.linear_gradient("L").resize(size).convert("RGB")
    pen = ImageDraw.Draw(picture)
    pen.ellipse((size[0] // 5, size[1] // 8, size[0] * 2 // 3, size[1] * 7 // 8), fill=(200, 30, 30))
    pen.text((50, 50), "a red door", fill=(0, 0, 0))
    for x in range(0, size[0], 37):
        pen.line((x, 0, x + 200, size[1]), fill=(20, 120, 200), width=3)
    return picture


def png_of(picture: Image.Image) -> bytes:
    buf = io.BytesIO()
    picture.save(buf, format="PNG")
    return buf.getvalue()


def kept_sizes(history, entry_id: str, images: int = 1) -> list[Path]:
    thumbs = history.folder / "thumbs"
    return [thumbs / f"{entry_id}.jpg"] + [thumbs / f"{entry_id}-{k}-{PREVIEW_EDGE}.jpg" for k in range(1, images + 1)]


@pytest.fixture
def held_thumbnails(history, monkeypatch):
    """Holds the thumbnail thread inside its next decode until ``go`` is set (set at the end anyway)."""
    assert history.wait_for_thumbnails(timeout=30)  # another test's work is done first
    started, go, timed_out = threading.Event(), threading.Event(), []
    real = thumbnails.make_thumbnails

    def held(data, edges):
        started.set()
        if not go.wait(10):
            timed_out.append(threading.current_thread().name)
        return real(data, edges)

    monkeypatch.setattr(thumbnails, "make_thumbnails", held)
    yield started, go, timed_out
    go.set()
    assert history.wait_for_thumbnails(timeout=30)


def test_an_appended_entry_gets_its_thumbnail_and_previews_in_the_background(history):
    picture = png_of(drawing())
    entry = history.append(ImageResult([ReplyImage("image/png", picture), ReplyImage("image/png", png())], "a door",
                                       FLASH))
    paths = kept_sizes(history, entry.id, images=2)
    wait_for(lambda: all(path.is_file() for path in paths))
    sizes = [Image.open(path).size for path in paths]
    assert sizes == [(160, 89), (PREVIEW_EDGE, 357), (64, 48)]
    assert all(Image.open(path).format == "JPEG" for path in paths)
    assert not (history.folder / "thumbs" / f"{entry.id}-2.jpg").exists(), "a gallery thumbnail of the first image only"


def test_append_returns_while_the_thumbnails_are_still_being_made(history, held_thumbnails):
    started, go, timed_out = held_thumbnails
    first = history.append(result_of(1))
    wait_for(started.is_set)
    second = history.append(result_of(2))
    assert [e.index for e in history] == [first.index, second.index] and not timed_out
    assert not (history.folder / "thumbs" / f"{first.id}.jpg").exists()
    go.set()
    wait_for(lambda: all(path.is_file() for e in (first, second) for path in kept_sizes(history, e.id)))
    assert threading.current_thread().name not in timed_out


@pytest.mark.parametrize("by", ["this kernel", "another kernel"])
def test_a_clear_while_thumbnails_are_made_leaves_none_behind(history, held_thumbnails, by):
    started, go, _ = held_thumbnails
    history.append(result_of(1))
    wait_for(started.is_set)  # the thread has read the image and is making its thumbnails
    (history if by == "this kernel" else History(history.name, history.folder.parent)).clear()
    go.set()
    assert history.wait_for_thumbnails(timeout=30)
    assert not (history.folder / "thumbs").exists()


def test_an_entry_written_before_gets_every_kept_size_of_an_image_from_one_decode(history, monkeypatch):
    entry = history.append(ImageResult([ReplyImage("image/png", png_of(drawing()))], "a door", FLASH))
    assert history.wait_for_thumbnails(timeout=30)
    made_on_append = [path.read_bytes() for path in kept_sizes(history, entry.id)]
    shutil.rmtree(history.folder / "thumbs")  # as a history written by an earlier version has none
    decodes = []
    real = thumbnails.make_thumbnails
    monkeypatch.setattr(thumbnails, "make_thumbnails", lambda data, edges: decodes.append(edges) or real(data, edges))
    preview = history.thumbnail(entry, PREVIEW_EDGE)  # what the report asks for
    assert history.thumbnail(entry) == made_on_append[0]  # the gallery's, kept from the same decode
    assert decodes == [[PREVIEW_EDGE, 160]]
    assert preview == made_on_append[1]


def test_a_preview_differs_from_a_careful_resize_less_than_its_jpeg_compression_does(history):
    picture = drawing()
    entry = history.append(ImageResult([ReplyImage("image/png", png_of(picture))], "a door", FLASH))

    def jpeg(image):
        buf = io.BytesIO()
        image.save(buf, format="JPEG", quality=80)
        return Image.open(buf).convert("RGB")

    def mean_difference(a, b) -> float:
        return max(ImageStat.Stat(ImageChops.difference(a, b)).mean)  # levels of 255, in the worst colour

    for edge in (PREVIEW_EDGE, 160):
        made = Image.open(io.BytesIO(history.thumbnail(entry, edge)))
        assert made.format == "JPEG" and max(made.size) == edge
        careful = picture.resize(made.size, Image.LANCZOS)
        assert mean_difference(made.convert("RGB"), jpeg(careful)) < mean_difference(jpeg(careful), careful)
