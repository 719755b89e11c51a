"""The base-URL check against the transport itself: generated URL spellings, with the
characters that parsers read differently (``\\``, ``@``, ``:``, ``?``, ``#``, ``%``, brackets,
whitespace), go through ``parse_base_url``; whatever it accepts, the host and port it says are
where requests' own adapter would open its connection, and its loopback verdict holds for that
host. Nothing is sent: the adapter is asked for its connection pool only."""

from __future__ import annotations

import ipaddress

import pytest
import requests
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from requests.adapters import HTTPAdapter

from aigate_nb.core.errors import ConfigurationError
from aigate_nb.gateway.config import DEFAULT_BASE_URL, is_default_gateway, is_loopback, parse_base_url
from aigate_nb.gateway.transport import HTTPTransport

HOSTS = ["127.0.0.1", "127.1", "localhost", "[::1]", "api.aigate.shop", "evil.test", "0x7f.1", "LOCALHOST",
         "[::ffff:7f00:1]"]
TRICKY = ["\\", "@", ":", "/", "?", "#", "%", "%40", "%5c", " ", "\t", "\n", "[", "]", ".", ":80", ":443", "user:pw@"]


@st.composite
def url_spellings(draw: st.DrawFn) -> str:
    scheme = draw(st.sampled_from(["http", "https", "HTTP", "ftp", "", "http:", "https:/"]))
    pieces = draw(st.lists(st.one_of(st.sampled_from(HOSTS), st.sampled_from(TRICKY),
                                     st.text(alphabet="abc019-_.~", min_size=1, max_size=6)), min_size=1, max_size=7))
    return f"{scheme}://" + "".join(pieces)


def where_requests_connects(base_url: str) -> tuple[str, int]:
    prepared = requests.Request("POST", base_url + "/v1/chat/completions").prepare()
    pool = HTTPAdapter().get_connection_with_tls_context(prepared, verify=True)
    return pool.host, pool.port


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(url_spellings())
@example("http://evil.test:8080\\@127.0.0.1:9000")
@example("https://evil.test\\@api.aigate.shop")
@example("http://127.0.0.1:80#@evil.test")
@example("http://evil.test%2f@127.0.0.1")
@example("http://[::1]:80/v1")
def test_an_accepted_base_url_names_the_host_requests_connects_to(url):
    try:
        checked = parse_base_url(url)
    except ConfigurationError as refused:
        assert "\n" not in str(refused) and str(refused).startswith("The base URL ")
        return
    host, port = where_requests_connects(checked.url)
    assert host.strip("[]") == checked.host.strip("[]")
    assert port == (checked.port or (443 if checked.scheme == "https" else 80))
    assert parse_base_url(checked.url) == checked, "reading the URL it gives back gives the same URL"
    if is_loopback(checked.url):
        assert host == "localhost" or ipaddress.ip_address(host.strip("[]")).is_loopback
    if is_default_gateway(checked.url):
        assert (host, port) == ("api.aigate.shop", 443)


@pytest.mark.parametrize("url", ["http://a@127.0.0.1", "https://user:secret@api.aigate.shop", "http://127.0.0.1\\@x"])
def test_the_transport_itself_refuses_what_the_check_refuses(url):
    with pytest.raises(ConfigurationError, match="The base URL") as info:
        HTTPTransport(url, "sk-transport-0123456789abcdef")
    assert "secret" not in str(info.value)


def test_the_default_gateway_is_accepted_as_itself():
    assert parse_base_url(DEFAULT_BASE_URL).url == DEFAULT_BASE_URL and is_default_gateway(DEFAULT_BASE_URL)
