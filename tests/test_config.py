"""Where requests go and with which key: the environment comes first and a folder's ``.env``
after, name by name, but a host that a ``.env`` chose gets only that file's key, never the
environment's, so that a cloned folder cannot send the user's key somewhere else; a base URL
that two parsers could read differently is refused wherever it comes from."""

from __future__ import annotations

import pytest

from aigate_nb.core.errors import ConfigurationError
from aigate_nb.gateway.config import DEFAULT_BASE_URL, load_settings

ENV_KEY = "sk-environment-0123456789abcdef"
FILE_KEY = "sk-folder-file-fedcba9876543210"
ELSEWHERE = "https://somewhere.else"


@pytest.fixture
def dotenv(tmp_path, monkeypatch):
    """Writes the lines of a .env in the working directory (the notebook's folder) and returns its path."""
    monkeypatch.chdir(tmp_path)

    def write(*lines: str):
        path = tmp_path / ".env"
        path.write_text("".join(f"{line}\n" for line in lines))
        return path

    return write


def test_key_and_url_from_the_environment_are_taken_as_they_are(dotenv):
    settings = load_settings({"AIGATE_API_KEY": ENV_KEY, "AIGATE_BASE_URL": ELSEWHERE + "/v1"}, dotenv())
    assert (settings.api_key, settings.base_url, settings.use_emulator) == (ENV_KEY, ELSEWHERE, False)


def test_key_and_url_from_the_same_env_file_are_taken_together(dotenv):
    settings = load_settings({}, dotenv(f"AIGATE_API_KEY={FILE_KEY}", f"AIGATE_BASE_URL={ELSEWHERE}"))
    assert (settings.api_key, settings.base_url) == (FILE_KEY, ELSEWHERE)


def test_a_url_from_the_env_file_does_not_get_the_key_of_the_environment(dotenv):
    settings = load_settings({"AIGATE_API_KEY": ENV_KEY}, dotenv(f"AIGATE_BASE_URL={ELSEWHERE}/v1"))
    assert (settings.api_key, settings.base_url, settings.host_chosen_by) == (None, ELSEWHERE, ".env")
    assert not settings.use_emulator


def test_a_url_from_the_env_file_with_a_key_in_both_places_gets_the_files_key(dotenv):
    settings = load_settings({"AIGATE_API_KEY": ENV_KEY},
                             dotenv(f"AIGATE_API_KEY={FILE_KEY}", f"AIGATE_BASE_URL={ELSEWHERE}"))
    assert (settings.api_key, settings.base_url, settings.host_chosen_by) == (FILE_KEY, ELSEWHERE, ".env")


def test_a_url_from_an_env_file_in_a_subfolder_is_named_by_its_folder(dotenv, tmp_path):
    dotenv()
    (tmp_path / "project").mkdir()
    path = tmp_path / "project" / ".env"
    path.write_text("AIGATE_BASE_URL=https://somewhere.else:8443/v1\n")
    settings = load_settings({"AIGATE_API_KEY": ENV_KEY}, path)
    assert (settings.api_key, settings.host_chosen_by) == (None, "project/.env")


@pytest.mark.parametrize("url", ["http://127.0.0.1:8765", "http://localhost:8765/v1", "http://[::1]:8765"])
def test_a_loopback_url_from_the_env_file_does_not_get_the_key_of_the_environment_either(dotenv, url):
    # On a shared machine another user can listen on a loopback port.
    settings = load_settings({"AIGATE_API_KEY": ENV_KEY}, dotenv(f"AIGATE_BASE_URL={url}"))
    assert settings.api_key is None and settings.base_url == url.removesuffix("/v1")


@pytest.mark.parametrize("url", [DEFAULT_BASE_URL, DEFAULT_BASE_URL + "/v1/", "HTTPS://API.AIGATE.SHOP:443"])
def test_the_default_gateway_named_in_the_env_file_may_have_the_key_of_the_environment(dotenv, url):
    settings = load_settings({"AIGATE_API_KEY": ENV_KEY}, dotenv(f"AIGATE_BASE_URL={url}"))
    assert settings.api_key == ENV_KEY and settings.host_chosen_by is None


@pytest.mark.parametrize("url", ["http://api.aigate.shop", "https://api.aigate.shop:8443", "https://api.aigate.shop.evil"])
def test_only_the_default_gateway_itself_counts_as_the_default(dotenv, url):
    settings = load_settings({"AIGATE_API_KEY": ENV_KEY}, dotenv(f"AIGATE_BASE_URL={url}"))
    assert settings.api_key is None and settings.host_chosen_by == ".env"


@pytest.mark.parametrize(
    "url,why",
    [
        ("http://evil.test:8080\\@127.0.0.1:9000", "backslash"),
        ("https://evil.test\\@api.aigate.shop", "backslash"),
        ("https://user:secret@somewhere.else:8443/v1", "user name or password"),
        ("https://somewhere.else/?x=1", "query"),
        ("https://somewhere.else/#top", "fragment"),
        ("https://some where.else", "space"),
        ("https://somewhere.else\x00.evil", "control character"),
        ("ftp://somewhere.else", "no http:// or https:// scheme"),
        ("https://somewhere.else:99999", "port"),
        ("https://", "no host"),
    ],
)
@pytest.mark.parametrize("source", ["environment", "file"])
def test_a_base_url_that_could_be_read_two_ways_is_refused_in_one_line_wherever_it_comes_from(dotenv, url, why, source):
    environ, lines = ({"AIGATE_BASE_URL": url}, ()) if source == "environment" else ({}, (f"AIGATE_BASE_URL={url}",))
    with pytest.raises(ConfigurationError, match=why) as info:
        load_settings({"AIGATE_API_KEY": ENV_KEY, **environ}, dotenv(*lines))
    message = str(info.value)
    assert "\n" not in message and "secret" not in message and ENV_KEY not in message
    assert f"(AIGATE_BASE_URL in {'the environment' if source == 'environment' else '.env'})" in message


def test_a_key_from_the_env_file_goes_to_the_host_the_environment_chose(dotenv):
    # Safe: the user's environment chose the host, and the file's key is not the user's to lose.
    settings = load_settings({"AIGATE_BASE_URL": ELSEWHERE}, dotenv(f"AIGATE_API_KEY={FILE_KEY}"))
    assert (settings.api_key, settings.base_url) == (FILE_KEY, ELSEWHERE)


def test_a_url_in_the_environment_wins_over_the_env_files(dotenv):
    settings = load_settings({"AIGATE_API_KEY": ENV_KEY, "AIGATE_BASE_URL": ELSEWHERE},
                             dotenv("AIGATE_BASE_URL=https://another.host"))
    assert (settings.api_key, settings.base_url) == (ENV_KEY, ELSEWHERE)


def test_a_key_only_in_the_env_file_goes_to_the_default_gateway(dotenv):
    settings = load_settings({}, dotenv(f"AIGATE_API_KEY={FILE_KEY}"))
    assert (settings.api_key, settings.base_url, settings.use_emulator) == (FILE_KEY, None, False)


def test_with_neither_key_nor_url_the_emulator_serves(dotenv):
    assert load_settings({}, dotenv("AIGATE_MODEL=google/gemini-3-pro-image")).use_emulator


def test_a_url_without_scheme_in_the_env_file_is_refused_as_such(dotenv):
    with pytest.raises(ConfigurationError, match="no http:// or https:// scheme"):
        load_settings({"AIGATE_API_KEY": ENV_KEY}, dotenv("AIGATE_BASE_URL=somewhere.else"))
