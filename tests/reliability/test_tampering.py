"""The history folder is input: a copied, unpacked or cloned history can hold symbolic links
out of it and index lines of any shape. A history is built over the emulator, then each path
of its layout is made a link to an outside file or folder, and each field of a record is
given each wrong type; after each, loading, the gallery, ``-e``, replay, the report and
``clear()`` work or refuse in one line, and nothing outside the folder changes."""

from __future__ import annotations

import json
import math
import os
import shutil
import warnings
from pathlib import Path

import pytest

from aigate_nb.core.errors import AigateError, HistoryError, NoImageError
from aigate_nb.gateway.client import Client
from aigate_nb.records.store import History
from aigate_nb.session.session import Request, Session
from harness import SMALL
from support import TEST_KEY

NAME = "tampered"
SECRET = b"AIGATE_SECRET=tampering-canary-5c1f\n"


@pytest.fixture(scope="module")
def template(emulator, tmp_path_factory) -> Path:
    """A history of three entries made over the emulator (a fox, the fox edited, an owl) and
    one request charged without a picture; each test tampers with a copy."""
    root = tmp_path_factory.mktemp("template")
    client = Client(api_key=TEST_KEY, base_url=emulator.url, retry_backoff=0.01, timeout=(5, 30))
    session = Session(client, History(NAME, root=root))
    try:
        fox = session.run(Request("a red fox", image_size=SMALL))
        session.run(Request("make it blue", image_size=SMALL, images=(fox,)))
        session.run(Request("a grey owl", image_size=SMALL))
        emulator.inject_fault("image-safety", count=1)
        with pytest.raises(NoImageError):
            session.run(Request("a blocked kite", image_size=SMALL))
        assert len(session.history.attempts()) == 1
        assert session.history.wait_for_thumbnails(30)
    finally:
        session.close()
    return root / NAME


@pytest.fixture
def folder(template, tmp_path) -> Path:
    """A copy of the template, at the place ``frontends.session(NAME)`` loads from."""
    copy = tmp_path / "history" / NAME
    shutil.copytree(template, copy, symlinks=True)
    return copy


@pytest.fixture
def outside(tmp_path) -> Path:
    """What lies outside the history folder: a secret file and a folder of files worth keeping."""
    place = tmp_path / "outside"
    (place / "keep").mkdir(parents=True)
    (place / "secret.env").write_bytes(SECRET)
    (place / "keep" / "notes.txt").write_text("mine\n")
    (place / "keep" / ".old.tmp").write_text("mine too\n")
    os.utime(place / "keep" / ".old.tmp", (0, 0))  # as old as a killed writer's leftover
    return place


def snapshot(place: Path) -> dict[str, tuple[bytes, int]]:
    return {str(path.relative_to(place)): (path.read_bytes(), path.stat().st_mtime_ns)
            for path in sorted(place.rglob("*")) if path.is_file()}


def one_line(error: Exception) -> str:
    text = str(error)
    assert text and "\n" not in text, f"not one line: {text!r}"
    return text


def load(frontends):
    """The session on the tampered history, or the one line that refused it."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            session = frontends.session(name=NAME)
    except HistoryError as exc:
        return None, one_line(exc), []
    return session, None, [str(w.message) for w in caught]


def exercise(frontends, emu, session: Session, tmp_path: Path) -> list[str]:
    """Every use of a history, each of which works or refuses in one line: the refusals."""
    refusals = []
    frontends.load(session)
    _, message, _ = frontends.cell("%aigate history")
    if message:
        refusals.append(message)
    try:
        html = session.history.export_html(tmp_path / "report.html", full_size=True)
        assert SECRET not in html.read_bytes()
    except AigateError as exc:
        refusals.append(one_line(exc))
    for prompt, line in (("edit the fox", "-e 0"), ("a red fox", "")):  # an edit, then a replay
        outcome = frontends.run("magic", session, prompt, line=line)
        if outcome.message:
            refusals.append(outcome.message)
    try:
        usage = session.usage()
        assert math.isfinite(usage.cost) and usage.cost >= 0
    except HistoryError as exc:
        refusals.append(one_line(exc))
    try:
        session.history.clear()
    except HistoryError as exc:
        refusals.append(one_line(exc))
    for record in emu.requests:
        assert SECRET not in json.dumps(record.body).encode()
    return refusals


# -- symbolic links ---------------------------------------------------------------------------

def first_image(folder: Path) -> str:
    """The image of entry 0 (the fox that ``-e 0`` edits)."""
    return json.loads((folder / "index.jsonl").read_bytes().splitlines()[0])["files"][0]


def first_thumbnail(folder: Path) -> str:
    """The gallery thumbnail of entry 0."""
    return f"thumbs/{json.loads((folder / 'index.jsonl').read_bytes().splitlines()[0])['id']}.jpg"


#: Each path of the layout, and what outside it the link points at ("file" or "folder").
LINKS = {
    "index.jsonl": lambda folder: ("index.jsonl", "file"),
    "attempts.jsonl": lambda folder: ("attempts.jsonl", "file"),
    "notebook.json": lambda folder: ("notebook.json", "file"),
    "images/": lambda folder: ("images", "folder"),
    "thumbs/": lambda folder: ("thumbs", "folder"),
    "batches/": lambda folder: ("batches", "folder"),
    "an image": lambda folder: (first_image(folder), "file"),
    "an image, relative": lambda folder: (first_image(folder), "relative"),
    "a thumbnail": lambda folder: (first_thumbnail(folder), "file"),
    "a manifest": lambda folder: ("batches/batch-0123456789ab.jsonl", "file"),
}


def make_link(folder: Path, outside: Path, case: str) -> str:
    relative, kind = LINKS[case](folder)
    path = folder / relative
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    target = {"file": outside / "secret.env", "folder": outside / "keep",
              "relative": Path(os.path.relpath(outside / "secret.env", path.parent))}[kind]
    path.symlink_to(target)
    return relative


@pytest.mark.skipif(not hasattr(os, "symlink") or os.name != "posix", reason="symbolic links as POSIX makes them")
@pytest.mark.parametrize("when", ["before loading", "while loaded"])
@pytest.mark.parametrize("case", list(LINKS))
def test_a_link_in_the_history_folder_is_never_followed(frontends, emu, folder, outside, tmp_path, case, when):
    before = snapshot(outside)
    session = None
    if when == "while loaded":
        session, refused, _ = load(frontends)
        assert refused is None
    link = make_link(folder, outside, case)
    if session is None:
        session, refused, _ = load(frontends)
        if refused is not None:  # refused in one line naming the link: nothing else to try
            assert link in refused and "symbolic link" in refused
            assert snapshot(outside) == before
            return
    refusals = exercise(frontends, emu, session, tmp_path)
    for refusal in refusals:
        assert "symbolic link" in refusal or "No history entry" in refusal, refusal
    assert snapshot(outside) == before
    assert os.path.islink(folder / link) or not os.path.lexists(folder / link)  # only ever the link itself


def test_loading_a_history_with_a_linked_image_names_the_link(frontends, folder, outside):
    link = make_link(folder, outside, "an image")
    with pytest.raises(HistoryError) as info:
        History(NAME, root=folder.parent)
    assert one_line(info.value).startswith(f"The history folder {folder} holds a symbolic link, {link} (to ")


def test_clear_never_deletes_through_a_linked_images_folder(folder, outside):
    history = History(NAME, root=folder.parent)
    make_link(folder, outside, "images/")
    before = snapshot(outside)
    with pytest.raises(HistoryError, match="symbolic link, images"):
        history.clear()
    assert snapshot(outside) == before


def test_an_image_linked_while_loaded_is_never_sent_with_e(frontends, emu, folder, outside):
    session, _, _ = load(frontends)
    make_link(folder, outside, "an image")
    outcome = frontends.run("magic", session, "edit the fox", line="-e 0")
    assert outcome.result is None and "symbolic link" in outcome.message
    assert all(SECRET not in json.dumps(record.body).encode() for record in emu.requests)


# -- records of the wrong shape -----------------------------------------------------------------

DEEP = json.loads("[" * 40 + "]" * 40)
TEXT = ["a list", "an object", "a number", "true"]
WRONG = {"a list": ["x"], "an object": {"a": 1}, "a number": 7, "true": True, "text": "x", "NaN": math.nan,
         "infinite": math.inf, "negative": -1, "a fraction": 1.5, "too deep": DEEP, "null": None}
#: Each field of an index line, and the wrong values it is given.
FIELDS = {
    "prompt": TEXT + ["null"], "model": TEXT + ["null"], "aspect_ratio": TEXT, "image_size": TEXT,
    "text": TEXT, "finish_reason": TEXT, "route": TEXT, "created": TEXT, "request_hash": TEXT,
    "cost_source": TEXT,
    "id": TEXT + ["null", "../../escape"], "parent": TEXT + ["../../escape"],
    "index": ["text", "a fraction", "negative", "true", "a list", "null"],
    "parent_index": ["text", "a fraction", "negative", "true", "a list"],
    "cost": ["NaN", "infinite", "negative", "text", "true", "a list"],
    "elapsed": ["NaN", "infinite", "negative", "text", "true", "an object"],
    "emulated": ["text", "a number", "a list"],
    "usage": ["text", "a list", "a number", "too deep"],
    "region": ["text", "a list", "a number", "an object", "too deep"],
    "model_parts": ["text", "an object", "a number", "too deep", "a list"],
    "inputs": ["text", "an object", "a number", "too deep", "a list"],
    "files": ["text", "an object", "a number", "null", "../../secret.env"],
    "mimes": ["text", "an object", "a number", "a list", "null"],
    "sha256s": ["text", "an object", "a number", "too deep", "null"],
    "sizes": ["text", "an object", "a number", "a list", "[[0,0]]", "null"],
}
CASES = [(name, wrong) for name, values in FIELDS.items() for wrong in values]
SPECIAL = {"../../escape": "../../escape", "../../secret.env": ["../../secret.env"], "[[0,0]]": [[0, 0]]}


def tamper(folder: Path, line: int, name: str, value) -> None:
    path = folder / "index.jsonl"
    lines = path.read_bytes().splitlines(keepends=True)
    record = json.loads(lines[line])
    record[name] = value
    lines[line] = json.dumps(record).encode() + b"\n"
    path.write_bytes(b"".join(lines))


@pytest.mark.parametrize("name,wrong", CASES, ids=[f"{name}-{wrong}" for name, wrong in CASES])
def test_a_record_with_a_wrong_type_is_skipped_and_the_rest_works(frontends, emu, folder, outside, tmp_path,
                                                                   name, wrong):
    tamper(folder, 2, name, SPECIAL.get(wrong, WRONG.get(wrong)))
    before = snapshot(outside)
    session, refused, warned = load(frontends)
    assert refused is None
    assert len(warned) == 1 and warned[0].startswith(f"Skipped line 3 of {folder / 'index.jsonl'}: ")
    assert "\n" not in warned[0]
    assert [entry.prompt for entry in session.history] == ["a red fox", "make it blue"]
    assert exercise(frontends, emu, session, tmp_path) == []
    assert snapshot(outside) == before


def test_a_deeply_nested_line_is_skipped_with_one_warning(folder):
    with open(folder / "index.jsonl", "ab") as index:
        index.write(b"[" * 200_000 + b"]" * 200_000 + b"\n")
    with pytest.warns(RuntimeWarning, match="Skipped line 4 of") as caught:
        history = History(NAME, root=folder.parent)
    assert len(caught) == 1 and len(history) == 3


def test_a_cost_of_nan_does_not_turn_off_the_budget(frontends, emu, folder):
    tamper(folder, 2, "cost", math.nan)
    session, _, _ = load(frontends)
    assert math.isfinite(session.spent())
    session.set_defaults(budget=str(session.spent() + 1e-6))
    outcome = frontends.run("magic", session, "one more fox", line="--new")
    assert outcome.result is None and outcome.message.startswith("Over budget")


def test_a_truncated_image_shows_a_placeholder_in_the_history_view(frontends, folder):
    for thumbnail in os.listdir(folder / "thumbs"):
        os.unlink(folder / "thumbs" / thumbnail)
    image = folder / first_image(folder)
    image.write_bytes(image.read_bytes()[:200])
    session, _, _ = load(frontends)
    frontends.load(session)
    value, message, _ = frontends.cell("%aigate history")
    assert message is None
    gallery = value._repr_html_()
    assert gallery.count("<img ") == 2 and "its file is damaged" in gallery


#: Each field of an attempt's line, and the wrong values it is given.
ATTEMPT_FIELDS = {
    "prompt": TEXT + ["null"], "model": TEXT + ["null"], "finish_reason": TEXT, "block_reason": TEXT,
    "created": TEXT, "cost": ["NaN", "infinite", "negative", "text", "true"], "usage": ["text", "a list", "too deep"],
    "emulated": ["text", "a number"], "kind": TEXT + ["null"],
}
ATTEMPT_CASES = [(name, wrong) for name, values in ATTEMPT_FIELDS.items() for wrong in values]


@pytest.mark.parametrize("name,wrong", ATTEMPT_CASES, ids=[f"{name}-{wrong}" for name, wrong in ATTEMPT_CASES])
def test_an_attempt_with_a_wrong_type_is_skipped_and_spending_stays_a_number(frontends, emu, folder, outside,
                                                                             tmp_path, name, wrong):
    path = folder / "attempts.jsonl"
    record = json.loads(path.read_bytes())
    record[name] = WRONG[wrong]
    path.write_bytes(json.dumps(record).encode() + b"\n")
    before = snapshot(outside)
    session, refused, _ = load(frontends)
    with pytest.warns(RuntimeWarning) as caught:
        assert session.history.attempts() == []
    assert [str(w.message).startswith(f"Skipped line 1 of {path}: ") for w in caught] == [True]
    assert session.spent() == sum(entry.cost for entry in session.history)
    assert exercise(frontends, emu, session, tmp_path) == []
    assert snapshot(outside) == before


def test_a_linked_thumbnail_shows_a_placeholder_saying_so(folder, outside):
    make_link(folder, outside, "a thumbnail")
    gallery = History(NAME, root=folder.parent)._repr_html_()
    assert gallery.count("<img ") == 2 and "not shown: its file is a symbolic link" in gallery
