"""Where requests go and with which key: the environment comes first and a folder's ``.env``
after, name by name, but a ``.env`` may choose the host only together with the key for it, so
that a cloned folder cannot send the key of the user's environment somewhere else."""

from __future__ import annotations

import pytest

from aigate_nb.config import DEFAULT_BASE_URL, load_settings
from aigate_nb.errors import ConfigurationError

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
    with pytest.raises(ConfigurationError) as info:
        load_settings({"AIGATE_API_KEY": ENV_KEY}, dotenv(f"AIGATE_BASE_URL={ELSEWHERE}/v1"))
    message = str(info.value)
    assert message.startswith(f"The file .env sets AIGATE_BASE_URL to {ELSEWHERE}, which would then receive "
                              "the AIGATE_API_KEY of your environment; nothing was sent.")
    assert "put AIGATE_API_KEY in that file too, set AIGATE_BASE_URL in the environment" in message
    assert "\n" not in message and ENV_KEY not in message and ENV_KEY[-4:] not in message


def test_a_url_from_the_env_file_with_a_key_in_both_places_is_refused_as_the_environments_comes_first(dotenv):
    with pytest.raises(ConfigurationError, match="receive the AIGATE_API_KEY of your environment"):
        load_settings({"AIGATE_API_KEY": ENV_KEY},
                      dotenv(f"AIGATE_API_KEY={FILE_KEY}", f"AIGATE_BASE_URL={ELSEWHERE}"))


def test_a_url_from_the_env_file_without_any_key_is_refused_too(dotenv):
    # A key given to Client() in code is not the file's either: the same settings refuse it.
    with pytest.raises(ConfigurationError, match=r"to https://somewhere\.else, with no AIGATE_API_KEY beside it"):
        load_settings({}, dotenv(f"AIGATE_BASE_URL={ELSEWHERE}"))


def test_the_refusal_names_a_file_in_a_subfolder_and_never_the_urls_credentials(dotenv, tmp_path):
    dotenv()
    (tmp_path / "project").mkdir()
    path = tmp_path / "project" / ".env"
    path.write_text("AIGATE_BASE_URL=https://user:secret@somewhere.else:8443/v1\n")
    with pytest.raises(ConfigurationError) as info:
        load_settings({"AIGATE_API_KEY": ENV_KEY}, path)
    assert str(info.value).startswith("The file project/.env sets AIGATE_BASE_URL to https://somewhere.else:8443,")
    assert "secret" not in str(info.value)


@pytest.mark.parametrize("url", ["http://127.0.0.1:8765", "http://localhost:8765/v1", "http://[::1]:8765"])
def test_a_loopback_url_from_the_env_file_may_have_the_key_of_the_environment(dotenv, url):
    settings = load_settings({"AIGATE_API_KEY": ENV_KEY}, dotenv(f"AIGATE_BASE_URL={url}"))
    assert settings.api_key == ENV_KEY and settings.base_url == url.removesuffix("/v1")


@pytest.mark.parametrize("url", [DEFAULT_BASE_URL, DEFAULT_BASE_URL + "/v1/"])
def test_the_default_gateway_named_in_the_env_file_may_have_the_key_of_the_environment(dotenv, url):
    settings = load_settings({"AIGATE_API_KEY": ENV_KEY}, dotenv(f"AIGATE_BASE_URL={url}"))
    assert (settings.api_key, settings.base_url) == (ENV_KEY, DEFAULT_BASE_URL)


@pytest.mark.parametrize("url", ["http://api.aigate.shop", "https://api.aigate.shop:8443", "https://api.aigate.shop.evil"])
def test_only_the_default_gateway_itself_counts_as_the_default(dotenv, url):
    with pytest.raises(ConfigurationError, match="would then receive the AIGATE_API_KEY"):
        load_settings({"AIGATE_API_KEY": ENV_KEY}, dotenv(f"AIGATE_BASE_URL={url}"))


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
