"""Ways to turn one generation request into the image's bytes, timed side by side.

The floor is the least work that does it; aigate_nb's ``Client.generate`` and the official
SDKs (openai on the chat route, google-genai on the Google route) do it their own way. Every
one of them talks to the benchmark's emulator on loopback, and nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pybase64
import requests

from aigate_nb import Client

from .payloads import Payload
from .serve import KEY

MODEL = "google/gemini-3.1-flash-image-preview"
BARE_MODEL = MODEL.split("/", 1)[1]
RATIO = "16:9"
CHAT_PATH = "/v1/chat/completions"


def google_path(model: str = BARE_MODEL) -> str:
    return f"/v1beta/models/{model}:generateContent"


def chat_body(payload: Payload) -> dict:
    return {
        "model": MODEL,
        "messages": [{"role": "user", "content": payload.prompt}],
        "modalities": ["image", "text"],
        "image_config": {"aspect_ratio": RATIO, "image_size": payload.tier},
    }


def google_body(payload: Payload) -> dict:
    return {
        "contents": [{"role": "user", "parts": [{"text": payload.prompt}]}],
        "generationConfig": {
            "responseModalities": ["TEXT", "IMAGE"],
            "imageConfig": {"aspectRatio": RATIO, "imageSize": payload.tier},
        },
    }


class Floor:
    """requests with ``stream=True`` and one ``raw.read()``, one ``json.loads``, one SIMD
    base64 decode (pybase64, validated): nothing a client can leave out."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.session = requests.Session()
        self.session.trust_env = False
        self.headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}

    def _post(self, path: str, body: dict):
        response = self.session.post(self.url + path, data=json.dumps(body), headers=self.headers, stream=True)
        response.raise_for_status()
        return json.loads(response.raw.read())

    def chat(self, payload: Payload) -> bytes:
        data = self._post(CHAT_PATH, chat_body(payload))
        url = data["choices"][0]["message"]["images"][0]["image_url"]["url"]
        return pybase64.b64decode(url[url.index(",") + 1:], validate=True)

    def google(self, payload: Payload) -> bytes:
        data = self._post(google_path(), google_body(payload))
        part = data["candidates"][0]["content"]["parts"][-1]
        return pybase64.b64decode(part["inlineData"]["data"], validate=True)


class KeepingFloor:
    """Less than the floor: the chat request, one ``raw.read()``, the base64 sliced straight
    from the body with no JSON parsed at all (no client may trust a reply that far) and one
    pybase64 decode; then the least that keeps the image: its sha256 and one write to a new file.
    ``many(n)`` runs ``n`` of them on ``n`` threads, each with its own connection, as
    ``Session.submit`` does: the machine's own cost of ``-n n`` for this image, with no package
    code in the way."""

    def __init__(self, url: str, folder: Path) -> None:
        self.url = url
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._numbers = itertools.count()
        self._pool = ThreadPoolExecutor(max_workers=16, thread_name_prefix="floor")

    def _floor(self) -> Floor:
        floor = getattr(self._local, "floor", None)
        if floor is None:
            floor = self._local.floor = Floor(self.url)
        return floor

    def _fetch(self, payload: Payload) -> bytes:
        floor = self._floor()
        response = floor.session.post(
            self.url + CHAT_PATH, data=json.dumps(chat_body(payload)), headers=floor.headers, stream=True
        )
        response.raise_for_status()
        raw = response.raw.read()
        start = raw.index(b"base64,") + len(b"base64,")
        return pybase64.b64decode(memoryview(raw)[start:raw.index(b'"', start)], validate=True)

    def one(self, payload: Payload) -> str:
        data = self._fetch(payload)
        digest = hashlib.sha256(data).hexdigest()
        path = self.folder / f"{next(self._numbers)}{payload.path.suffix}"
        with open(path, "wb") as file:
            file.write(data)
        return digest

    def many(self, payload: Payload, count: int) -> list[str]:
        return [future.result() for future in [self._pool.submit(self.one, payload) for _ in range(count)]]

    def close(self) -> None:
        self._pool.shutdown()


def aigate(url: str, route: str) -> Callable[[Payload], bytes]:
    client = Client(api_key=KEY, base_url=url, model=MODEL)

    def generate(payload: Payload) -> bytes:
        return client.generate(payload.prompt, aspect_ratio=RATIO, image_size=payload.tier, route=route).data

    return generate


def openai_sdk(url: str) -> Callable[[Payload], bytes]:
    """The openai SDK on the chat route, as its users write it: the image config in
    ``extra_body``, the data URL from ``message.images``, decoded with the standard library."""
    import openai

    client = openai.OpenAI(api_key=KEY, base_url=url + "/v1", max_retries=0, timeout=600)

    def generate(payload: Payload) -> bytes:
        completion = client.chat.completions.create(
            model=MODEL,
            messages=[{"role": "user", "content": payload.prompt}],
            extra_body={
                "modalities": ["image", "text"],
                "image_config": {"aspect_ratio": RATIO, "image_size": payload.tier},
            },
        )
        data_url = completion.choices[0].message.images[0]["image_url"]["url"]
        return base64.b64decode(data_url.split(",", 1)[1])

    return generate


def google_genai_sdk(url: str) -> Callable[[Payload], bytes]:
    """google-genai on the Google route: with this base URL it posts to
    ``/v1beta/models/<bare id>:generateContent`` and hands back the image already decoded."""
    from google import genai
    from google.genai import types

    client = genai.Client(
        api_key=KEY, http_options=types.HttpOptions(base_url=url, api_version="v1beta", timeout=600_000)
    )

    def generate(payload: Payload) -> bytes:
        response = client.models.generate_content(
            model=BARE_MODEL,
            contents=payload.prompt,
            config=types.GenerateContentConfig(
                response_modalities=["TEXT", "IMAGE"],
                image_config=types.ImageConfig(aspect_ratio=RATIO, image_size=payload.tier),
            ),
        )
        return next(part.inline_data.data for part in response.parts if part.inline_data)

    return generate


def installed_peers() -> dict[str, str]:
    """The SDKs that can be imported here, with their versions ({} when neither is)."""
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name, module in (("openai", "openai"), ("google-genai", "google.genai")):
        try:
            __import__(module)
            found[name] = version(name)
        except (ImportError, PackageNotFoundError):
            pass
    return found
