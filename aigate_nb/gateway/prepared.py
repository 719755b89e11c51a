"""A request made ready to send, and the hash of what it asks for: the key on which a replay
cache or a recorder files it. Plain data and pure functions; nothing here sends or reads.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from ..core.costs import Estimate, PriceTable, estimate_usage
from ..core.images import ImageInput
from ..core.models import bare_model_id, normalise_ratio, normalise_size
from .config import is_loopback
from .emulated import is_shared_emulator
from .wire import with_seed

if TYPE_CHECKING:
    from ..core.region import RegionEdit

Endpoint = Literal["emulator", "gateway"]

#: Part of every hash: raised when what is hashed changes, so that no old hash matches a new one.
HASH_VERSION = 1


@dataclass(frozen=True)
class PreparedRequest:
    """A checked request, ready for ``Client.send``.

    ``method``, ``path`` and ``body`` (the JSON to send; not to be changed) are what goes on
    the wire; the other fields say what was asked for. ``endpoint`` is the kind of server it
    is for (``endpoint_of``); ``image_hashes`` are the ``image_hash`` of each input image in
    order, as given, before any re-encoding to fit the inline budget; ``request_hash`` is
    the ``request_hash`` of them all and of the earlier turns: the same hash, the same picture
    asked for. Neither the key nor the base URL is held, so neither is hashed.
    """

    method: str
    path: str
    body: dict[str, Any] = field(repr=False, hash=False)  # an edit's body holds megabytes of base64
    route: str
    model: str
    prompt: str
    aspect_ratio: str | None
    image_size: str | None
    parent_id: str | None
    endpoint: Endpoint
    image_hashes: tuple[str, ...]
    request_hash: str
    #: Each input image as the history records it (see ``input_record``).
    inputs: tuple[dict[str, str], ...] = field(default=(), hash=False)
    #: Which copy of the request this is (``-n N`` sends copies 0 to N-1); see ``as_variant``.
    variant: int = 0

    def as_variant(self, number: int) -> PreparedRequest:
        """Copy ``number`` of this request (which must be copy 0), with the same request hash.

        For an emulator, copy k > 0 carries the seed k where each route's API has one (chat
        ``seed``, Google ``generationConfig.seed``), so that each copy draws its own picture,
        the same one every time; copy 0 is sent as it is, and draws what a single request does.
        The gateway gets every copy as it is: its models vary by themselves, and its
        documentation lists no seed (a field it does not list can break a request there).
        """
        if self.variant:
            raise ValueError(f"this request is already copy {self.variant}; ask copy 0 for the others")
        if number == 0 or self.endpoint != "emulator":
            return replace(self, variant=number)
        return replace(self, variant=number, body=with_seed(self.body, self.route, number))
    #: A region edit's plan (``region.RegionEdit``): the first input image was sent as its
    #: crop, and the answer goes back into it. ``aspect_ratio`` and ``image_size`` are the crop's.
    region: RegionEdit | None = field(default=None, repr=False, hash=False)


def endpoint_of(base_url: str, emulated: bool = False) -> Endpoint:
    """``"emulator"`` when the other end is known to be one (``emulated``), is the built-in
    emulator of this process or is on loopback; ``"gateway"`` otherwise. The emulator draws
    placeholders, so its picture and the gateway's for the same request are not the same."""
    return "emulator" if emulated or is_shared_emulator(base_url) or is_loopback(base_url) else "gateway"


def image_hash(item: ImageInput) -> str:
    """sha256 hex of an input image's bytes; of the URL's text for a URL the gateway fetches."""
    # surrogatepass: a URL is sent as JSON, which escapes a broken character, so it must hash too
    data = item.url.encode("utf-8", "surrogatepass") if item.url is not None else item.payload
    return hashlib.sha256(data).hexdigest()


def input_record(item: ImageInput, sha256: str) -> dict[str, str]:
    """What the history keeps of an input image: its ``sha256`` (as given), and its file
    ``name`` and history ``entry`` id where it has them, so that an edit of an image from
    outside the history is still an edit, of something that can be found again."""
    record = {"sha256": sha256, "name": item.name, "entry": item.parent_id}
    return {key: value for key, value in record.items() if value}


def request_hash(
    *,
    route: str,
    endpoint: Endpoint,
    model: str,
    prompt: str,
    aspect_ratio: str | None = None,
    image_size: str | None = None,
    image_hashes: Iterable[str] = (),
    turns: Iterable[Mapping[str, Any]] = (),
    region: Mapping[str, Any] | None = None,
) -> str:
    """sha256 hex of everything that changes the picture: the route, the endpoint's kind, the
    model (``google/X`` is ``X``), the prompt, the ratio and size (``16x9`` is ``16:9``), the
    input images' hashes in order, the earlier turns of a multi-turn edit and, for a region
    edit, its region (box, mode, padding: a region edit never answers a plain one).

    The same values give the same hash in any process and on any machine, so a replay cache
    can compute it from what it has. The key, the headers and the base URL are not inputs.
    """
    # Turns are hashed apart so the recipe stays small; sort_keys makes dict order irrelevant.
    conversation = json.dumps(list(turns), sort_keys=True, separators=(",", ":"))
    recipe = {
        "version": HASH_VERSION,
        "route": route,
        "endpoint": endpoint,
        "model": bare_model_id(model),  # as models.same_model compares ids
        "prompt": prompt,
        "aspect_ratio": normalise_ratio(aspect_ratio),
        "image_size": normalise_size(image_size),
        "image_hashes": list(image_hashes),
        "turns": hashlib.sha256(conversation.encode("ascii")).hexdigest(),
    }
    if region is not None:  # only then: the hash of every request without one stays as it was
        recipe["region"] = dict(region)
    return hashlib.sha256(json.dumps(recipe, sort_keys=True, separators=(",", ":")).encode("ascii")).hexdigest()


def estimate(prepared: PreparedRequest, prices: PriceTable, count: int = 1) -> Estimate:
    """What sending ``prepared`` ``count`` times will cost, by ``prices``.

    Input images are those of the body, so the earlier turns of a multi-turn edit count too.
    A batch runner estimates each of its requests this way and adds them up.
    """
    usage = estimate_usage(prepared.prompt, _input_images(prepared.body), prepared.model, prepared.image_size, prices)
    price = prices.price(prepared.model)
    each = price.cost(usage) if usage is not None and price is not None else None
    size = prepared.image_size or (price.default_size if price else None)
    return Estimate(prepared.model, size, count, each)


def _input_images(body: Mapping[str, Any]) -> int:
    """The images a request body carries: chat ``image_url`` parts, Google ``inlineData`` parts."""
    count = 0
    for message in body.get("messages") or ():
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, list):
            count += sum(1 for part in content if isinstance(part, dict) and part.get("type") == "image_url")
    for content in body.get("contents") or ():
        parts = content.get("parts") if isinstance(content, dict) else None
        count += sum(1 for part in parts or () if isinstance(part, dict) and ("inlineData" in part))
    return count
