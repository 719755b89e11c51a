"""Finding one's way in a history: the lineage as a tree, children and parents, search,
filters and pages, on a history the emulator made over loopback."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import pytest

from aigate_nb.core.errors import InputError
from aigate_nb.gateway.client import Client
from aigate_nb.records.store import History
from support import PRO, TEST_KEY, make_story


@pytest.fixture(scope="module")
def story(emulator, tmp_path_factory) -> History:
    """One emulator-made history shared by the tests that only read it."""
    history = History("story", tmp_path_factory.mktemp("browse"))
    with Client(api_key=TEST_KEY, base_url=emulator.url, timeout=(5, 30)) as client:
        make_story(client, history)
    return history


def numbers(entries) -> list[int]:
    return [entry.index for entry in entries]


# -- the tree, children and parents ------------------------------------------------------------


def test_one_source_edited_three_ways_is_a_fork_and_a_chain_is_a_line(story):
    tree = story.tree()
    assert [node.entry.index for node in tree] == [0, 5, 8, 9, 10]
    door, lighthouse = tree.roots[0], tree.roots[1]
    [night] = door.children
    assert night.entry.index == 1 and [child.entry.index for child in night.children] == [2, 3, 4]
    assert [(depth, node.entry.index) for depth, node in lighthouse.walk()] == [(0, 5), (1, 6), (2, 7)]
    assert sorted(node.entry.index for _, node in tree.walk()) == list(range(len(story)))


def test_the_tree_draws_itself_with_its_branches(story):
    drawing = repr(story.tree()).splitlines()
    assert drawing[:5] == [
        "[0] a red door in a white wall, morning light",
        "└─ [1] make it night",
        "   ├─ [2] add falling snow",
        "   ├─ [3] add a black cat on the step",
        "   └─ [4] paint the door blue",
    ]
    assert drawing[5:8] == [
        "[5] a lighthouse at dusk, oil painting",
        "└─ [6] add a full moon",
        "   └─ [7] now add a small boat",
    ]


def test_children_and_parent_walk_the_lineage_both_ways(story):
    assert numbers(story.children(1)) == [2, 3, 4]
    assert story.children(4) == []
    assert story.get(story[3].parent).index == 1
    assert numbers(story.lineage(3)) == [0, 1, 3]


def test_an_entry_edited_from_another_history_is_a_root_that_says_so(emu, client, tmp_path):
    history = History("elsewhere", tmp_path)
    result = client.generate("a kite")
    result.parent_id = "0123456789ab"  # an entry of some other notebook's history
    history.append(result)
    tree = history.tree()
    assert len(tree) == 1 and tree.roots[0].children == []
    assert repr(tree) == "[0] a kite  (edited from 0123456789ab)"
    assert repr(History("nothing", tmp_path).tree()) == "(an empty history)"


# -- search --------------------------------------------------------------------------------------


def test_search_needs_every_word_and_each_must_start_a_word(story):
    assert numbers(story.search("red door")) == [0, 10]  # "doors" starts with door; "indoor" does not
    assert numbers(story.search("door")) == [0, 4, 10]
    assert story.search("oor") == []


def test_search_ignores_case_and_accents(story):
    assert numbers(story.search("CAFE")) == [8]
    assert numbers(story.search("café garden")) == [8]


def test_a_quoted_phrase_is_one_term(story):
    assert numbers(story.search('"red door"')) == [0]
    assert numbers(story.search("blue door")) == [4]
    assert story.search('"blue door"') == []


def test_search_looks_at_the_model_and_the_number(story):
    assert numbers(story.search("pro")) == [8]
    assert numbers(story.search("[7]")) == [7]


def test_search_finds_words_of_scripts_written_without_spaces(story):
    assert numbers(story.search("门")) == [9]


def test_an_empty_search_finds_everything(story):
    assert len(story.search("  ")) == len(story)


# -- filters -------------------------------------------------------------------------------------


def test_filter_by_model_takes_an_id_or_a_part_of_one(story):
    assert numbers(story.filter(model=PRO)) == [8]
    assert numbers(story.filter(model="gemini-3-pro-image")) == [8]
    assert len(story.filter(model="flash")) == len(story) - 1


def test_filter_by_route_and_text_together(story):
    assert numbers(story.filter(route="google")) == [5, 6, 7]
    assert numbers(story.filter(route="google", text="moon")) == [6]


def test_filter_by_time(story):
    made = datetime.fromisoformat(story[0].created)
    assert len(story.filter(since=made)) == len(story)
    assert len(story.filter(since=timedelta(hours=1))) == len(story)
    assert story.filter(since=made + timedelta(days=1)) == []
    assert story.filter(until=made - timedelta(seconds=1)) == []
    assert len(story.filter(since=made.date().isoformat(), until=made.date())) == len(story)
    assert story.filter(until=date(2000, 1, 1)) == []


def test_bad_filter_values_say_what_is_taken(story):
    with pytest.raises(InputError, match="route must be 'chat' or 'google', not 'gogle'; did you mean 'google'"):
        story.filter(route="gogle")
    with pytest.raises(InputError, match=r"since= takes a datetime, a date, a timedelta .* not 'yesterday'"):
        story.filter(since="yesterday")
    with pytest.raises(InputError, match="model= takes a model id"):
        story.filter(model=" ")
    with pytest.raises(InputError, match="search text must be a string"):
        story.search(3)


# -- pages ---------------------------------------------------------------------------------------


def test_pages_go_newest_first_and_say_where_they_are(story):
    first = story.page(0, size=4)
    assert numbers(first.entries) == [10, 9, 8, 7]
    assert (first.number, first.count, first.total) == (0, 3, 11)
    assert not first.has_previous and first.has_next
    last = story.page(-1, size=4)
    assert numbers(last.entries) == [2, 1, 0] and last.number == 2 and not last.has_next
    assert numbers(story.page(1, size=4, newest_first=False).entries) == [4, 5, 6, 7]


def test_a_page_past_the_end_is_the_last_one(story):
    assert story.page(99, size=4).number == 2
    assert story.page(-99, size=4).number == 0


def test_pages_of_a_search(story):
    page = story.page(0, size=2, entries=story.search("door"))
    assert numbers(page.entries) == [10, 4] and page.count == 2 and page.total == 3
    empty = story.page(0, entries=[])
    assert (empty.entries, empty.count, empty.total) == ([], 1, 0)
    assert repr(empty) == "<Page 1 of 1: no entries (0 in all)>"


def test_a_bad_page_size_says_so(story):
    with pytest.raises(InputError, match="size must be a whole number from 1"):
        story.page(0, size=0)
    with pytest.raises(InputError, match="page number must be a whole number"):
        story.page("2")
