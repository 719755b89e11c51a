"""%%gemini_image and %aigate in a real InteractiveShell, against the emulator over loopback."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import pytest
from IPython.core.displaypub import DisplayPublisher
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell
from PIL import Image
from traitlets.config import Config

import aigate_nb.frontends.magics as magics_module
from aigate_nb.core.results import ImageResult
from aigate_nb.emulator import Emulator
from aigate_nb.frontends.command import interpolate
from aigate_nb.frontends.magics import GeminiImageMagics
from aigate_nb.gateway.client import Client
from aigate_nb.gateway.emulated import is_shared_emulator
from aigate_nb.records.store import History
from aigate_nb.runs.variants import Variants
from aigate_nb.session.session import Session, current_session, set_current_session
from support import TEST_KEY, max_in_flight, wait_for

#: Seconds the slow emulator waits before each generation reply: long enough for the status
#: line to update and for concurrency to show, short enough to keep the tests quick.
LATENCY = 0.6


def png_file(path: Path, colour=(30, 120, 200), size=(80, 60)) -> Path:
    Image.new("RGB", size, colour).save(path, format="PNG")
    return path


class RecordingPublisher(DisplayPublisher):
    """A display publisher that keeps every message, as a Jupyter front end would receive it.

    ``on_update`` is called for each in-place update, from the thread that published it.
    """

    def __init__(self, shell, on_update=None) -> None:
        super().__init__(shell=shell)
        self.messages: list[dict] = []
        self.on_update = on_update

    def publish(self, data, metadata=None, source=None, *, transient=None, update=False, **kwargs) -> None:
        self.messages.append({"data": data, "transient": transient or {}, "update": update})
        if update and self.on_update is not None:
            self.on_update(self)


@pytest.fixture(scope="module")
def shell():
    """The process's InteractiveShell, without an on-disk command history."""
    config = Config()
    config.HistoryAccessor.enabled = False
    return InteractiveShell.instance(config=config)


@pytest.fixture(scope="module")
def slow_emulator():
    """A second emulator whose generation replies take ``LATENCY`` seconds."""
    with Emulator(api_key=TEST_KEY, latency=LATENCY) as emu:
        yield emu


@pytest.fixture
def slow_emu(slow_emulator):
    slow_emulator.clear()
    yield slow_emulator
    slow_emulator.clear()


@pytest.fixture
def load(shell, tmp_path):
    """``load(url, **client_options)``: a session on that emulator, current, with the extension loaded."""
    sessions = []
    names_before = set(shell.user_ns)

    def _load(url: str, **client_options) -> Session:
        options = {"api_key": TEST_KEY, "retry_backoff": 0.01, "timeout": (5, 30), **client_options}
        session = Session(Client(base_url=url, **options), History(name="magics", root=tmp_path / "history"))
        sessions.append(session)
        set_current_session(session)
        shell.run_line_magic("load_ext", "aigate_nb")
        return session

    yield _load
    shell.run_line_magic("unload_ext", "aigate_nb")
    shell.config.pop("GeminiImageMagics", None)  # %config leaves its values in the shell's config
    set_current_session(None)
    for session in sessions:
        session.close()
    for name in set(shell.user_ns) - names_before:
        del shell.user_ns[name]


@pytest.fixture
def ip(shell, emu, load):
    """The shell with the magics loaded and a session on the shared test emulator."""
    load(emu.url)
    return shell


@pytest.fixture
def slow_ip(shell, slow_emu, load):
    load(slow_emu.url)
    return shell


@pytest.fixture
def recorder(shell):
    """Capture the display messages, as a kernel's front end would see them."""
    original = shell.display_pub
    shell.display_pub = RecordingPublisher(shell)
    yield shell.display_pub
    shell.display_pub = original


def usage_error(ip, capsys, code: str) -> str:
    """Run ``code`` as a cell; check it fails with one UsageError line, no traceback and no key."""
    capsys.readouterr()
    result = ip.run_cell(code)
    out, err = capsys.readouterr()
    assert type(result.error_in_exec) is UsageError, (out, err)
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("UsageError: ")
    assert "Traceback" not in out + err
    assert TEST_KEY not in out + err
    return lines[0].removeprefix("UsageError: ")


def gemini(ip, line: str, body: str):
    return ip.run_cell_magic("gemini_image", line, body)


# -- options ----------------------------------------------------------------------------------


def test_ratio_and_size_give_the_documented_pixel_size(ip, emu):
    result = gemini(ip, "-a 21:9 -s 2K", "a lighthouse at dusk")
    assert isinstance(result, ImageResult)
    assert result.size == (3168, 1344)
    assert emu.requests[-1].body["image_config"] == {"aspect_ratio": "21:9", "image_size": "2K"}


def test_model_option_names_the_model_sent(ip, emu):
    result = gemini(ip, "--model google/gemini-3-pro-image", "a heron")
    assert emu.requests[-1].model == "google/gemini-3-pro-image"
    assert result.model == "google/gemini-3-pro-image"


def test_edit_of_the_last_entry_sends_its_original_bytes(ip, emu):
    first = gemini(ip, "", "a paper boat")
    edit = gemini(ip, "--edit -1", "put it on a pond")
    sent = emu.requests[-1].images
    assert [image.sha256 for image in sent] == [first.sha256]
    assert edit.parent_index == first.index
    assert current_session().history[-1].parent == first.id


def test_edit_by_history_index_and_by_variable(ip, emu):
    first = gemini(ip, "", "a red kite")
    gemini(ip, "", "a blue kite")
    gemini(ip, f"-e {first.index}", "add clouds")
    assert emu.requests[-1].images[0].sha256 == first.sha256
    ip.user_ns["kite"] = first
    gemini(ip, "-e kite", "add a string")
    assert emu.requests[-1].images[0].sha256 == first.sha256


def test_image_option_takes_paths_and_urls_and_repeats(ip, emu, tmp_path):
    one = png_file(tmp_path / "one.png")
    two = png_file(tmp_path / "two.png", colour=(200, 40, 40))
    gemini(ip, f"-i {one} --image {two} -i https://example.com/cat.png", "combine them")
    sent = emu.requests[-1].images
    assert [image.sha256 for image in sent[:2]] == [hashlib.sha256(p.read_bytes()).hexdigest() for p in (one, two)]
    assert sent[2].url == "https://example.com/cat.png"


def test_edit_and_image_together_send_the_edited_image_first(ip, emu, tmp_path):
    first = gemini(ip, "", "a cup")
    extra = png_file(tmp_path / "saucer.png")
    gemini(ip, f"-e -1 -i {extra}", "put the cup on this saucer")
    sent = emu.requests[-1].images
    assert [image.sha256 for image in sent] == [first.sha256, hashlib.sha256(extra.read_bytes()).hexdigest()]


def test_region_edits_only_the_box_in_the_source_pixels_or_fractions(ip, emu):
    first = gemini(ip, "-a 1:1 -s 1K", "a paper boat")
    edit = gemini(ip, "-e -1 --region 0.25,0.5,0.25,0.25 --region-mode guide", "paint the sail red")
    assert edit.region["box"] == [256, 512, 256, 256] and edit.region["mode"] == "guide"
    assert edit.parent_index == first.index and edit.size == first.size
    assert emu.requests[-1].prompt.startswith("Using the provided image, paint the sail red, only inside")
    again = gemini(ip, f"-e {first.index} --region 256,512,256,256 --region-mode guide", "paint the sail red")
    assert again.replayed and len(emu.attempts("paint the sail red")) == 1
    assert "| region 256,512,256,256 guide" in edit.caption()


def test_a_region_outside_the_picture_is_one_line_and_sends_nothing(ip, emu, capsys):
    gemini(ip, "-a 1:1 -s 1K", "a paper boat")
    emu.clear()
    message = usage_error(ip, capsys, "%%gemini_image -e -1 --region 900,10,200,200\nadd a flag")
    assert message.startswith("region 900,10,200,200 is not inside the 1024x1024 picture")
    assert "region" in usage_error(ip, capsys, "%%gemini_image --region 0.1,0.1,0.5,0.5\nadd a flag")
    assert emu.requests == []


def test_multi_turn_continues_the_conversation_by_the_google_route(ip, emu, capsys):
    first = gemini(ip, "--route google", "a paper boat")
    second = gemini(ip, "-e -1 --multi-turn", "put it on a pond")
    third = gemini(ip, f"-e {second.index} --multi-turn -n 2", "add rain")
    contents = emu.requests[-1].body["contents"]
    assert [c["parts"][0].get("text") for c in contents[::2]] == ["a paper boat", "put it on a pond", "add rain"]
    assert all(part.get("thoughtSignature") for part in contents[1]["parts"] + contents[3]["parts"])
    assert second.route == "google" and second.parent_index == first.index
    assert [r.parent_index for r in third] == [second.index] * 2
    assert "name it with -e" in usage_error(ip, capsys, "%%gemini_image --multi-turn\nadd fog")
    cell = "%%gemini_image -e -1 --multi-turn --route chat\nadd fog"
    assert "leave out --route chat" in usage_error(ip, capsys, cell)
    chat = gemini(ip, "--route chat", "a kite")
    cell = "%%gemini_image -e -1 --multi-turn\nadd a tail"
    assert f"[{chat.index}] came by the chat route" in usage_error(ip, capsys, cell)


def test_route_google_posts_to_generate_content(ip, emu):
    result = gemini(ip, "--route google -a 16:9", "a glacier")
    path = emu.requests[-1].path
    assert path.startswith("/v1beta/models/") and path.endswith("gemini-3.1-flash-image-preview:generateContent")
    assert result.route == "google"


def test_out_saves_the_full_size_file(ip, tmp_path):
    target = tmp_path / "out" / "tower.png"
    result = gemini(ip, f"-a 16:9 -o {target}", "a tower")
    with Image.open(target) as saved:
        assert saved.size == result.size
        assert saved.text["prompt"] == "a tower"


def test_out_with_variants_numbers_the_files(ip, tmp_path):
    gemini(ip, f"-n 2 -o {tmp_path / 'v.png'}", "two variants")
    assert sorted(p.name for p in tmp_path.glob("v-*.png")) == ["v-1.png", "v-2.png"]


def test_quoted_option_values_lose_their_quotes_as_in_a_shell(ip, emu, tmp_path):
    photo = png_file(tmp_path / "my photo.png")
    result = gemini(ip, f"-a '16:9' -i '{photo}' -o \"{tmp_path / 'out dir' / 'my result.png'}\"", "frame it")
    assert result.aspect_ratio == "16:9"
    assert emu.requests[-1].images[0].sha256 == hashlib.sha256(photo.read_bytes()).hexdigest()
    assert (tmp_path / "out dir" / "my result.png").is_file()


def test_an_out_path_with_an_unknown_suffix_is_refused_before_sending(ip, emu, capsys, tmp_path):
    before = len(emu.requests)
    message = usage_error(ip, capsys, f"%%gemini_image -o {tmp_path / 'result.jpeg2'} --as kept\na red kite")
    assert "cannot tell which format '.jpeg2' is" in message
    assert len(emu.requests) == before and "kept" not in ip.user_ns


def test_out_into_a_folder_names_each_file_after_its_result(ip, tmp_path):
    folder = tmp_path / "picks"
    folder.mkdir()
    one = gemini(ip, f"-o {folder}", "a pear")
    several = gemini(ip, f"-n 2 -o {tmp_path / 'new'}/", "two plums")
    assert (folder / f"image-{one.index}.png").is_file()
    assert sorted(p.name for p in (tmp_path / "new").iterdir()) == sorted(f"image-{r.index}.png" for r in several)
    assert not (tmp_path / "picks.png").exists()


def test_as_binds_the_result_to_a_variable(ip):
    result = gemini(ip, "--as fox", "a fox")
    assert ip.user_ns["fox"] is result


def test_value_of_the_cell_is_the_result_in_underscore_and_out(ip):
    ip.run_cell("%%gemini_image\na walrus", store_history=True)
    result = ip.user_ns["_"]
    assert isinstance(result, ImageResult)
    assert ip.user_ns["Out"][ip.execution_count - 1] is result
    assert current_session().history[-1].id == result.id


def test_help_lists_every_option(ip):
    doc = ip.find_cell_magic("gemini_image").__doc__
    assert "%%gemini_image [-m ID]" in doc
    for option in ("--model", "--aspect-ratio", "--image-size", "--edit", "--image", "-n N", "--route",
                   "--out", "--as", "--no-interpolate"):
        assert option in doc


# -- prompt interpolation ---------------------------------------------------------------------


class _Config:
    style = "noir"


NAMESPACE = {"name": "Ada", "cfg": _Config(), "items": ["owl", "cat"], "x": "hi", "n": 7, "w": 6}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("a portrait of {name}", "a portrait of Ada"),
        ("in {cfg.style} style", "in noir style"),
        ("an {items[0]} and a {items[1]}", "an owl and a cat"),
        ("a {missing} thing", "a {missing} thing"),
        ("a {cfg.missing} and {items[5]}", "a {cfg.missing} and {items[5]}"),
        ("literal {{name}} braces", "literal {name} braces"),
        ('style {"style": "noir", "n": 2}', 'style {"style": "noir", "n": 2}'),
        ('nested {"a": {"b": 1}}', 'nested {"a": {"b": 1}}'),
        ('{"who": "{name}"}', '{"who": "Ada"}'),
        ("{x!r}", "'hi'"),
        ("[{x:>5}]", "[   hi]"),
        ("[{n:0{w}d}]", "[000007]"),
        ("{n:zz}", "{n:zz}"),
        ("{x!q}", "{x!q}"),
        ("{n[0]}", "{n[0]}"),
        ("{} and {0}", "{} and {0}"),
        ("stray } and { braces", "stray } and { braces"),
        ("unclosed {name", "unclosed {name"),
        ("{ name }", "{ name }"),
        ("", ""),
    ],
)
def test_interpolation(text, expected):
    assert interpolate(text, NAMESPACE) == expected


def test_interpolation_keeps_a_field_whose_object_fails_to_format():
    class Broken:
        def __format__(self, spec):
            raise RuntimeError("no")

    assert interpolate("a {thing} here", {"thing": Broken()}) == "a {thing} here"


def test_interpolation_survives_braces_nested_very_deep():
    text = "{ " * 5000 + "}" * 5000
    assert interpolate(text, NAMESPACE) == text


def test_cell_body_is_interpolated_from_the_notebook(ip, emu):
    ip.user_ns.update(animal="heron", cfg=_Config())
    result = gemini(ip, "", 'a {animal} in {cfg.style}, {{literally}} {unknown} {"k": 1}\n')
    assert emu.requests[-1].prompt == 'a heron in noir, {literally} {unknown} {"k": 1}'
    assert result.prompt == emu.requests[-1].prompt


def test_no_interpolate_sends_the_body_as_written(ip, emu):
    ip.user_ns["animal"] = "heron"
    gemini(ip, "--no-interpolate", "a {animal} {{x}}")
    assert emu.requests[-1].prompt == "a {animal} {{x}}"


def test_the_options_line_is_not_expanded_by_ipython(ip, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ip.user_ns.update(tag="expanded", dest="expanded.png")
    ip.run_cell("%%gemini_image -o out_{tag}.png\na kite")
    ip.run_cell("%%gemini_image -o $dest\na kite")
    assert (tmp_path / "out_{tag}.png").is_file()
    assert [p.stem for p in tmp_path.glob("$dest*")] == ["$dest"]
    assert not (tmp_path / "out_expanded.png").exists()
    assert not (tmp_path / "expanded.png").exists()


# -- variants -----------------------------------------------------------------------------------


def test_variants_run_concurrently_and_each_joins_the_history(slow_ip, slow_emu):
    history = current_session().history
    before = len(history)
    value = gemini(slow_ip, "-n 3", "three at once")
    assert isinstance(value, Variants) and len(value) == 3
    assert len(history) == before + 3
    assert sorted(result.index for result in value) == [before, before + 1, before + 2]
    attempts = slow_emu.attempts("three at once")
    assert len(attempts) == 3
    # The emulator holds each one LATENCY seconds: sent one after another, no two would overlap.
    assert max_in_flight(attempts) == 3, [(a.started, a.finished) for a in attempts]


def test_variants_display_side_by_side_with_their_captions(ip):
    value = gemini(ip, "-n 2", "twins")
    data, metadata = value._repr_mimebundle_()
    assert data["text/html"].count("<img ") == 2
    assert data["text/plain"].splitlines() == [value[0].caption(), value[1].caption()]
    assert [v["history_id"] for v in metadata["aigate_nb"]["variants"]] == [r.id for r in value]
    assert len(json.dumps(data)) < ImageResult.display_budget


def test_a_failed_variant_is_reported_and_the_others_kept(ip, emu, capsys):
    emu.inject_fault("no-image", count=1)
    value = gemini(ip, "-n 3", "mostly fine")
    assert len(value) == 2
    err = capsys.readouterr().err
    assert err.startswith("1 of 3 variants failed: ") and err.count("\n") == 1


# -- the status line ----------------------------------------------------------------------------


def test_one_status_line_updates_while_waiting_then_empties(slow_ip, recorder):
    result = gemini(slow_ip, "-a 16:9", "a slow sunrise")
    messages = recorder.messages
    ids = {m["transient"].get("display_id") for m in messages}
    assert len(ids) == 1 and None not in ids, "one status line, always the same display"
    assert not messages[0]["update"] and all(m["update"] for m in messages[1:])
    texts = [m["data"]["text/plain"] for m in messages]
    assert texts[0] == "Generating with google/gemini-3.1-flash-image-preview | 16:9: 0 s"
    assert len(texts) >= 2, "updated at least once during the wait"
    assert texts[-1] == ""
    assert isinstance(result, ImageResult)


def test_status_line_counts_variants(slow_ip, recorder):
    variants = gemini(slow_ip, "-n 2", "two slow ones")
    text = slow_ip.display_formatter.format(variants)[0]["text/plain"]
    assert text == "\n".join(result.caption() for result in variants)  # not the list's repr
    assert recorder.messages[0]["data"]["text/plain"].startswith("Generating 2 variants with ")
    assert "0 of 2 done" in recorder.messages[0]["data"]["text/plain"]


def test_no_status_line_where_outputs_cannot_update_in_place(slow_ip, capsys):
    assert type(slow_ip.display_pub) is DisplayPublisher  # the terminal's
    gemini(slow_ip, "", "quiet in a terminal")
    assert capsys.readouterr().out == ""


def test_interrupt_stops_waiting_and_the_result_still_joins_the_history(slow_ip, recorder, capsys):
    def interrupt(publisher):
        publisher.on_update = None
        raise KeyboardInterrupt

    recorder.on_update = interrupt
    history = current_session().history
    before = len(history)
    message = usage_error(slow_ip, capsys, "%%gemini_image --as owl\nan interrupted owl")
    assert message.startswith("Stopped waiting after ")
    assert "goes on in the background" in message and "%aigate history" in message
    assert message.endswith("but --as will not be applied.") and "owl" not in slow_ip.user_ns
    assert recorder.messages[-1]["data"]["text/plain"] == ""
    entry = wait_for(lambda: len(history) > before and history[-1], timeout=15)
    assert entry.prompt == "an interrupted owl"


# -- configuration ------------------------------------------------------------------------------


def test_config_magic_sets_the_session_defaults(ip, emu):
    ip.run_line_magic("config", 'GeminiImageMagics.model = "google/gemini-3-pro-image"')
    ip.run_line_magic("config", 'GeminiImageMagics.aspect_ratio = "4:3"')
    assert current_session().defaults.model == "google/gemini-3-pro-image"
    gemini(ip, "", "a windmill")
    assert emu.requests[-1].model == "google/gemini-3-pro-image"
    assert emu.requests[-1].body["image_config"] == {"aspect_ratio": "4:3"}


def test_aigate_config_changes_show_in_the_traitlets(ip):
    ip.run_line_magic("aigate", "config aspect_ratio=16:9 image_size=2k route=google")
    assert ip.run_line_magic("config", "GeminiImageMagics.aspect_ratio") == "16:9"
    assert ip.run_line_magic("config", "GeminiImageMagics.image_size") == "2K"
    assert ip.run_line_magic("config", "GeminiImageMagics.route") == "google"


def test_a_bad_value_through_config_is_refused_and_nothing_changes(ip, caplog):
    ip.run_line_magic("config", 'GeminiImageMagics.model = "google/gemini-3-pro-image"')
    ip.run_line_magic("config", 'GeminiImageMagics.aspect_ratio = "1:8"')
    # %config reports a configurable's refusal through logging, as one line
    [record] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert record.getMessage().startswith("aspect ratio '1:8' is not one of ") and "\n" not in record.getMessage()
    assert current_session().defaults.aspect_ratio is None
    assert ip.run_line_magic("config", "GeminiImageMagics.aspect_ratio") is None


def test_configured_defaults_apply_when_the_extension_loads(shell, emu, load):
    shell.config.GeminiImageMagics.image_size = "2K"
    session = load(emu.url)
    assert session.defaults.image_size == "2K"


def test_a_reload_keeps_the_defaults_changed_since_the_configuration(ip):
    ip.run_line_magic("config", 'GeminiImageMagics.aspect_ratio = "4:3"')
    ip.run_line_magic("aigate", "config aspect_ratio=16:9")
    ip.run_line_magic("reload_ext", "aigate_nb")
    assert current_session().defaults.aspect_ratio == "16:9"
    assert ip.run_line_magic("config", "GeminiImageMagics.aspect_ratio") == "16:9"


# -- %aigate ------------------------------------------------------------------------------------


def test_aigate_alone_lists_the_subcommands(ip, capsys):
    ip.run_line_magic("aigate", "")
    out = capsys.readouterr().out
    for name in ("models", "config", "history", "panel", "use", "help"):
        assert f"%aigate {name}" in out
    ip.run_line_magic("aigate", "help")
    assert capsys.readouterr().out == out


def test_aigate_models_lists_the_image_models_and_marks_the_default(ip, capsys):
    ip.run_line_magic("aigate", "models")
    lines = capsys.readouterr().out.splitlines()
    assert "google/gemini-3.1-flash-image-preview  (default)" in lines
    assert "google/gemini-3-pro-image" in lines


def test_aigate_config_shows_the_settings_with_the_key_masked(ip, emu, capsys):
    ip.run_line_magic("aigate", "config")
    out = capsys.readouterr().out
    assert TEST_KEY not in out
    assert "sk-...8c0e" in out
    assert emu.url in out and "google/gemini-3.1-flash-image-preview" in out


def test_aigate_config_default_puts_the_model_and_route_back(ip, capsys):
    ip.run_line_magic("aigate", "config model=google/gemini-3-pro-image route=google")
    for word in ("default", "none", ""):
        ip.run_line_magic("aigate", f"config model={word} route={word}")
        defaults = current_session().defaults
        assert (defaults.model, defaults.route) == ("google/gemini-3.1-flash-image-preview", "chat")
        ip.run_line_magic("aigate", "config model=google/gemini-3-pro-image")
    ip.run_line_magic("config", "GeminiImageMagics.model = None")
    assert current_session().defaults.model == "google/gemini-3.1-flash-image-preview"


def test_aigate_config_with_a_bad_setting_says_which(ip, capsys):
    assert "Unknown setting 'colour'" in usage_error(ip, capsys, "%aigate config colour=red")
    assert "is not name=value" in usage_error(ip, capsys, "%aigate config 16:9")


def test_aigate_history_shows_the_gallery_and_switches_by_name(ip):
    result = gemini(ip, "", "a gallery piece")
    history = ip.run_line_magic("aigate", "history")
    assert history is current_session().history and history[-1].id == result.id
    assert "<img " in history._repr_html_()
    other = ip.run_line_magic("aigate", "history --name other-notebook")
    assert other.name == "other-notebook" and len(other) == 0
    assert current_session().history is other
    assert other.folder.parent == history.folder.parent


def test_aigate_history_clear_empties_the_named_history_only(ip, capsys):
    ip.run_line_magic("aigate", "history --name keep-me")
    kept = gemini(ip, "", "a kept lighthouse")
    ip.run_line_magic("aigate", "history --name scratch")
    made = [gemini(ip, "", f"a scratch sketch {n}") for n in range(2)]
    capsys.readouterr()
    cleared = ip.run_line_magic("aigate", "history --name scratch --clear")
    assert "Cleared history 'scratch': 2 entries removed." in capsys.readouterr().out
    assert cleared is current_session().history and len(cleared) == 0
    assert not any(path.exists() for result in made for path in result.files)
    assert gemini(ip, "", "the first after clearing").index == 0
    keep = ip.run_line_magic("aigate", "history --name=keep-me")
    assert [e.id for e in keep] == [kept.id] and kept.files[0].is_file()
    assert "takes --name NAME" in usage_error(ip, capsys, "%aigate history --clear --bogus")
    assert "takes --name NAME" in usage_error(ip, capsys, "%aigate history --name")
    assert "takes --name NAME" in usage_error(ip, capsys, "%aigate history --name --clear")
    assert [e.id for e in ip.run_line_magic("aigate", "history --name keep-me")] == [kept.id]


def test_aigate_history_export_writes_the_report_and_says_where(ip, capsys, tmp_path):
    made = [gemini(ip, "", "a red door"), gemini(ip, "-e -1", "make it night")]
    capsys.readouterr()
    out = tmp_path / "report.html"
    assert ip.run_line_magic("aigate", f"history --export {out}") is None
    history = current_session().history
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"Report of history '{history.name}': {len(history)} entries, ")
    assert line.endswith(f"written to {out}; it opens in any browser, with no server.")
    text = out.read_text()
    assert all(f'data-i="{result.index}"' in text for result in made)
    assert ip.run_line_magic("aigate", f"history --export {tmp_path / 'full.html'} --full-size") is None
    assert len((tmp_path / "full.html").read_text()) > len(text)


def test_aigate_history_export_options_are_checked(ip, capsys, tmp_path):
    assert "--full-size goes with --export FILE" in usage_error(ip, capsys, "%aigate history --full-size")
    assert "expected one argument" in usage_error(ip, capsys, "%aigate history --export")
    (tmp_path / "a-file").write_text("")
    assert "Cannot write the report to" in usage_error(ip, capsys, f"%aigate history --export {tmp_path}/a-file/r.html")


def test_aigate_panel_shows_the_panel_of_this_session(ip):
    from aigate_nb.frontends.panel import Panel

    panel = ip.run_line_magic("aigate", "panel")
    assert isinstance(panel, Panel)
    panel.wait(10)


def test_aigate_panel_without_the_panel_module_says_so(ip, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "aigate_nb.frontends.panel", None)
    assert usage_error(ip, capsys, "%aigate panel") == (
        "This installation of aigate_nb has no panel yet (aigate_nb.frontends.panel is missing); "
        "use %%gemini_image and %aigate history meanwhile."
    )


def test_aigate_panel_without_ipywidgets_says_how_to_install_it(ip, capsys, monkeypatch):
    monkeypatch.delitem(sys.modules, "aigate_nb.frontends.panel", raising=False)
    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    assert usage_error(ip, capsys, "%aigate panel") == (
        "The panel needs ipywidgets: pip install 'ipywidgets>=8', then restart the kernel."
    )


def test_aigate_panel_without_anywidget_says_how_to_install_it(ip, capsys, monkeypatch):
    # The panel and its views, as in a kernel that has not imported them yet.
    for name in [m for m in sys.modules if m.startswith("aigate_nb.frontends.panel")
                 or m == "aigate_nb.frontends.boxwidget"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "anywidget", None)
    assert usage_error(ip, capsys, "%aigate panel") == (
        "The panel needs anywidget: pip install 'anywidget>=0.9', then restart the kernel."
    )


def test_aigate_use_switches_between_emulator_and_gateway(ip, emu, capsys, monkeypatch):
    session = current_session()
    ip.run_line_magic("aigate", "use emulator")
    assert is_shared_emulator(session.client.base_url)
    assert "built-in emulator at http://127.0.0.1:" in capsys.readouterr().out
    monkeypatch.delenv("AIGATE_API_KEY", raising=False)
    assert "No AIGATE_API_KEY is set" in usage_error(ip, capsys, "%aigate use gateway")
    monkeypatch.setenv("AIGATE_API_KEY", TEST_KEY)
    monkeypatch.setenv("AIGATE_BASE_URL", emu.url)
    ip.run_line_magic("aigate", "use gateway")
    assert session.client.base_url == emu.url
    out = capsys.readouterr().out
    assert out == f"Requests now go to the gateway at {emu.url}.\n"


def test_aigate_unknown_subcommand_suggests_the_closest(ip, capsys):
    expected = "%aigate has no subcommand 'modles'; did you mean %aigate models?"
    assert usage_error(ip, capsys, "%aigate modles") == expected


# -- errors: one line, no traceback, no key ----------------------------------------------------


@pytest.mark.parametrize(
    "cell, expected",
    [
        ("%%gemini_image --modle x\na cat", "%%gemini_image: unrecognized arguments: --modle x; did you mean --model?"),
        (
            "%%gemini_image -n x\na cat",
            "%%gemini_image: argument -n: invalid int value: 'x'; %%gemini_image? lists the options.",
        ),
        (
            "%%gemini_image --route gogle\na cat",
            "%%gemini_image: argument --route: invalid choice: 'gogle' (choose from 'chat', 'google'); "
            "%%gemini_image? lists the options.",
        ),
        (
            "%%gemini_image a cat\nsitting",
            "%%gemini_image: unrecognized arguments: a cat; the prompt goes in the cell body, below the "
            "%%gemini_image line.",
        ),
        (
            '%%gemini_image -o "unclosed\na cat',
            "%%gemini_image: No closing quotation in the options line; close the quote.",
        ),
        (
            "%%gemini_image\n   \n",
            "The cell is empty: write the prompt in the cell body, below the %%gemini_image line.",
        ),
        ("%%gemini_image -n 0\na cat", "-n 0: ask for 1 to 16 variants."),
        ("%%gemini_image --as 1st\na cat", "--as '1st' is not a variable name; use letters, digits and _."),
        (
            "%%gemini_image -a 7:3\na cat",
            "aspect ratio '7:3' is not one of 1:1, 2:3, 3:2, 3:4, 4:3, 4:5, 5:4, 9:16, 16:9, 21:9, 1:4, "
            "4:1, 1:8, 8:1 for google/gemini-3.1-flash-image-preview; the closest is 21:9.",
        ),
        (
            "%%gemini_image -m google/gemini-2.5-flash-image -s 2K\na cat",
            "google/gemini-2.5-flash-image makes images of about 1K only and takes no image size; leave the "
            "size out, or choose a Gemini 3 model for 2K or 4K.",
        ),
        (
            "%%gemini_image -e 42\na cat",
            "No history entry 42; this notebook's history is empty; generate an image first.",
        ),
        (
            "%%gemini_image -e nothing_here\na cat",
            "'nothing_here' is neither a history index, a history id nor a variable in this notebook; use "
            "an index such as -1 (see %aigate history) or the name of a variable holding an image.",
        ),
    ],
)
def test_user_mistakes_are_one_line_usage_errors(ip, emu, capsys, cell, expected):
    assert usage_error(ip, capsys, cell) == expected
    assert emu.requests == []


def test_missing_input_file_is_a_usage_error(ip, emu, capsys, tmp_path):
    message = usage_error(ip, capsys, f"%%gemini_image -i {tmp_path / 'nope.png'}\na cat")
    assert message == (
        f"No image file at '{tmp_path / 'nope.png'}'; check the path (relative paths start at {Path.cwd()})."
    )
    assert emu.requests == []


def test_unknown_model_is_the_gateways_own_refusal(ip, capsys):
    message = usage_error(ip, capsys, "%%gemini_image -m google/gemini-9-imaginary\na cat")
    assert message.startswith("HTTP 4")
    assert "gemini-9-imaginary" in message


def test_wrong_key_says_to_check_it_and_does_not_echo_it(shell, emu, load, capsys):
    wrong = "sk-wrong-0123456789abcdef"
    load(emu.url, api_key=wrong)
    message = usage_error(shell, capsys, "%%gemini_image\na cat")
    assert message.startswith("HTTP 401") and "Check AIGATE_API_KEY" in message
    assert wrong not in message


def test_no_image_shows_what_the_model_said(ip, emu, capsys):
    emu.inject_fault("no-image")
    message = usage_error(ip, capsys, "%%gemini_image\na cat")
    assert message.startswith("The model ")
    assert "The model said: I could not generate an image for this request. Try rephrasing the prompt." in message


def test_rate_limit_says_to_wait(shell, emu, load, capsys):
    load(emu.url, max_retries=0)  # the retries themselves are the client's tests
    emu.inject_fault("429", count=None)
    message = usage_error(shell, capsys, "%%gemini_image\na cat")
    assert message.startswith("HTTP 429: ")
    assert message.endswith(" Wait a little and run it again, or check the quota of your key.")


def test_timeout_says_what_to_change(shell, emu, load, capsys):
    load(emu.url, timeout=(5, 0.3), max_retries=0)
    emu.inject_fault("timeout", delay=3)
    message = usage_error(shell, capsys, "%%gemini_image\na cat")
    assert message.startswith("No complete answer within 0.3 s from ")
    assert "raise the read timeout" in message


def test_errors_leave_the_history_intact(ip, emu, capsys):
    gemini(ip, "", "kept")
    emu.inject_fault("no-image")
    usage_error(ip, capsys, "%%gemini_image\nlost")
    history = current_session().history
    assert [entry.prompt for entry in history] == ["kept"]


# -- loading the extension ---------------------------------------------------------------------


def test_without_key_or_url_the_emulator_is_announced_once(shell, history_dir, monkeypatch, capsys):
    monkeypatch.delenv("AIGATE_API_KEY", raising=False)
    monkeypatch.delenv("AIGATE_BASE_URL", raising=False)
    monkeypatch.chdir(history_dir.parent)  # no .env file here
    monkeypatch.setattr(magics_module, "_announced", False)
    set_current_session(None)
    try:
        shell.run_line_magic("load_ext", "aigate_nb")
        lines = capsys.readouterr().out.splitlines()
        session = current_session()
        assert len(lines) == 1
        assert lines[0].startswith("aigate_nb: no AIGATE_API_KEY or AIGATE_BASE_URL is set, so the built-in emulator at http://127.0.0.1:")
        assert "placeholders" in lines[0]
        shell.run_line_magic("reload_ext", "aigate_nb")
        assert capsys.readouterr().out == ""
        assert current_session() is session, "a reload keeps the session"
        result = gemini(shell, "", "a placeholder")
        assert result.caption().splitlines()[0].endswith("(emulator)")
        assert session.history.folder.parent == history_dir
    finally:
        shell.run_line_magic("unload_ext", "aigate_nb")
        current_session().close()
        set_current_session(None)


def test_reload_keeps_one_set_of_magics_and_one_configurable(ip):
    ip.run_line_magic("reload_ext", "aigate_nb")
    ip.run_line_magic("reload_ext", "aigate_nb")
    assert sum(isinstance(c, GeminiImageMagics) for c in ip.configurables) == 1
    ip.run_line_magic("aigate", "config image_size=2K")
    assert ip.run_line_magic("config", "GeminiImageMagics.image_size") == "2K"


def test_loading_imports_neither_widgets_nor_pillow(tmp_path):
    code = (
        "import sys\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "ip = InteractiveShell.instance()\n"
        "ip.run_line_magic('load_ext', 'aigate_nb')\n"
        "print(sorted(m for m in ('ipywidgets', 'PIL') if m in sys.modules))\n"
    )
    env = {"PATH": "", "HOME": str(tmp_path), "AIGATE_API_KEY": TEST_KEY, "AIGATE_BASE_URL": "http://127.0.0.1:9",
           "AIGATE_HISTORY_DIR": str(tmp_path / "history")}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_a_bug_inside_shows_as_a_traceback_not_as_a_users_mistake(ip, monkeypatch):
    # A KeyError from the package's own code is a bug: the front ends catch AigateError only,
    # so it reaches the notebook with its traceback instead of a one-line usage error.
    from aigate_nb.session.session import Session

    def broken(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr(Session, "submit_noting", broken)
    result = ip.run_cell("%%gemini_image\na kite")
    assert isinstance(result.error_in_exec, KeyError)


def test_a_history_error_is_not_a_lookup_error_and_an_index_of_thousands_of_digits_is_one_line(ip):
    from aigate_nb.core.errors import HistoryError

    assert not issubclass(HistoryError, LookupError)
    result = ip.run_cell("%%gemini_image -e " + "9" * 5000 + "\nedit it")
    assert isinstance(result.error_in_exec, UsageError)
    assert "\n" not in str(result.error_in_exec) and len(str(result.error_in_exec)) < 400
