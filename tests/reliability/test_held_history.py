"""A history's index is input: whoever can write the folder (a shared drive, a cloned
repository, a hand edit) chooses its file names, ids and parents. Names that climb out
(``../``), absolute paths, NUL bytes and very long names in an entry's files or id make the
history read, show, export and clear nothing outside its folder, and any error is the
package's own, in one line; parents that loop (an entry its own parent, two each other's,
three in a ring) leave lineage(), children(), tree(), the report and a multi-turn edit
finite. Real histories on disk; the multi-turn edit goes to the emulator over loopback.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from pathlib import Path

import pytest
from hostile_history import small_png

from aigate_nb.core.errors import AigateError
from aigate_nb.core.images import ReplyImage
from aigate_nb.core.results import ImageResult
from aigate_nb.gateway.client import Client
from aigate_nb.records.report import build_report
from aigate_nb.records.store import History
from aigate_nb.session.session import Request, Session
from support import FLASH, TEST_KEY


def snapshot(root: Path, leave_out: Path) -> dict[str, tuple[int, str]]:
    """Every file and folder under ``root`` but those under ``leave_out``: its size and digest."""
    found: dict[str, tuple[int, str]] = {}
    for folder, names, files in os.walk(root):
        if Path(folder) == leave_out or leave_out in Path(folder).parents:
            continue
        for name in names:
            found[os.path.join(folder, name) + "/"] = (0, "")
        for name in files:
            path = Path(folder, name)
            data = path.read_bytes()
            found[str(path)] = (len(data), hashlib.sha256(data).hexdigest())
    return found


def one_line_error(action) -> None:
    """Run ``action``; the only error it may raise is the package's own, in one line."""
    try:
        action()
    except AigateError as exc:
        assert "\n" not in str(exc), str(exc)


def first_record(history: History) -> dict:
    return json.loads(history.index_path.read_text(encoding="utf-8").splitlines()[0])


def add_lines(history: History, *records: dict) -> None:
    with open(history.index_path, "a", encoding="utf-8") as index:
        index.write("".join(json.dumps(record) + "\n" for record in records))


# -- names that climb out ---------------------------------------------------------------------------


def outside_names(tmp_path: Path) -> dict[str, tuple[str, str]]:
    """Case name -> (field, value); the history is ``tmp_path/histories/nb``, and
    ``tmp_path/outside/`` holds a real picture a climbing name could reach."""
    outside = tmp_path / "outside"
    return {
        "file-dotdot": ("files", "images/../../../outside/picture.png"),
        "file-dotdot-backslash": ("files", "images\\..\\..\\..\\outside\\picture.png"),
        "file-absolute": ("files", str(outside / "picture.png")),
        "file-nul": ("files", "images/picture\x00.png"),
        "file-very-long": ("files", "images/" + "y" * 5000 + ".png"),
        "id-dotdot": ("id", "../../../outside/escape"),
        "id-absolute": ("id", str(outside / "escape")),
        "id-nul": ("id", "picture\x00escape"),
        "id-very-long": ("id", "x" * 5000),
        "id-dot-dot-only": ("id", ".."),
    }


@pytest.mark.parametrize("case", [
    "file-dotdot", "file-dotdot-backslash", "file-absolute", "file-nul", "file-very-long",
    "id-dotdot",
    "id-absolute",
    "id-nul",
    "id-very-long",
    "id-dot-dot-only",
])
def test_a_name_that_climbs_out_of_the_history_reads_and_writes_nothing_outside(tmp_path, case):
    field, value = outside_names(tmp_path)[case]
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "picture.png").write_bytes(small_png())
    history = History("nb", tmp_path / "histories")
    history.append(ImageResult([ReplyImage("image/png", small_png())], "an ordinary picture", "test/model"))
    assert history.wait_for_thumbnails(timeout=30)
    record = {**first_record(history), "id": "hostile", "index": 1, "prompt": "a hostile line"}
    record[field] = [value] if field == "files" else value
    add_lines(history, record)
    before = snapshot(tmp_path, history.folder)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a skipped line is reported; that is not what this is about
        loaded: list[History] = []
        one_line_error(lambda: loaded.append(History("nb", tmp_path / "histories")))
        for reopened in loaded:
            if field == "files":
                assert "hostile" not in reopened.ids(), "a line naming a file outside is no entry"
            one_line_error(reopened._repr_html_)
            one_line_error(lambda: build_report(reopened, full_size=True))
            one_line_error(lambda: reopened.wait_for_thumbnails(timeout=30))
            one_line_error(reopened.clear)
    assert snapshot(tmp_path, history.folder) == before, "nothing outside the history folder changed"


def test_a_very_long_file_name_skips_its_line_and_keeps_the_other_entries(tmp_path):
    history = History("nb", tmp_path)
    kept = history.append(ImageResult([ReplyImage("image/png", small_png())], "an ordinary picture", "test/model"))
    add_lines(history, {**first_record(history), "id": "long", "index": 1, "files": ["images/" + "y" * 5000 + ".png"]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert History("nb", tmp_path).ids() == {kept.id}


# -- parents that loop ------------------------------------------------------------------------------


@pytest.fixture
def looped(emu, tmp_path) -> History:
    """Four Google-route entries made by the emulator, then the index rewritten so that [0] is
    its own parent and [1] -> [2] -> [3] -> [1] is a ring."""
    with Client(api_key=TEST_KEY, base_url=emu.url, retry_backoff=0.01, timeout=(5, 30)) as client:
        session = Session(client, History("loops", tmp_path))
        for prompt in ("a red fox", "a grey wolf", "a brown bear", "a white hare"):
            session.run(Request(prompt, model=FLASH, route="google", image_size="512"))
        session.history.wait_for_thumbnails(timeout=30)
    index = session.history.index_path
    records = [json.loads(line) for line in index.read_text(encoding="utf-8").splitlines()]
    ids = [record["id"] for record in records]
    for record, parent in zip(records, (ids[0], ids[3], ids[1], ids[2])):
        record["parent"], record["parent_index"] = parent, None
    index.write_text("".join(json.dumps(record) + "\n" for record in records), encoding="utf-8")
    return History("loops", tmp_path)


def test_lineage_stops_where_the_parents_loop(looped):
    assert [entry.index for entry in looped.lineage(0)] == [0]
    for start in (1, 2, 3):
        chain = [entry.index for entry in looped.lineage(start)]
        assert chain[-1] == start and sorted(chain) == [1, 2, 3]


def test_children_leave_out_an_entry_that_is_its_own_parent(looped):
    assert looped.children(0) == []
    assert [entry.index for entry in looped.children(1)] == [2]
    assert [entry.index for entry in looped.children(3)] == [1]


def test_the_tree_holds_each_entry_once_and_draws(looped):
    tree = looped.tree()
    assert sorted(node.entry.index for _, node in tree.walk()) == [0, 1, 2, 3]
    assert "[3]" in repr(tree)


def test_the_reports_tree_holds_each_entry_once(looped):
    text = build_report(looped)
    tree = text[text.index('<section id="tree"'):]
    tree = tree[:tree.index("</section>")]
    assert sorted(tree.count(f'<li data-i="{i}">') for i in range(4)) == [1, 1, 1, 1]


def test_a_multi_turn_edit_of_an_entry_in_a_ring_sends_each_step_once(looped, emu):
    with Client(api_key=TEST_KEY, base_url=emu.url, retry_backoff=0.01, timeout=(5, 30)) as client:
        session = Session(client, looped)
        result = session.run(Request("make it night", images=(looped[3],), multi_turn=True, image_size="512"))
    contents = emu.attempts("make it night")[-1].body["contents"]
    prompts = [content["parts"][0].get("text") for content in contents if content["role"] == "user"]
    assert sorted(prompts[:-1]) == ["a brown bear", "a grey wolf", "a white hare"] and prompts[-1] == "make it night"
    assert result.parent_id == looped[3].id


def test_a_multi_turn_edit_of_its_own_parent_sends_one_step(looped, emu):
    with Client(api_key=TEST_KEY, base_url=emu.url, retry_backoff=0.01, timeout=(5, 30)) as client:
        Session(client, looped).run(Request("make it dusk", images=(looped[0],), multi_turn=True, image_size="512"))
    contents = emu.attempts("make it dusk")[-1].body["contents"]
    assert [content["role"] for content in contents] == ["user", "model", "user"]
