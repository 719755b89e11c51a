"""A request as the front ends describe it, the defaults it takes where it says nothing, and
``resolve``: one pure function from the request, the defaults, the model's spec and the shape of
the image it edits to the request that is prepared. No history, no session: what has to be
looked up (the model a conversation goes on with, the source's shape) is looked up by the
session and handed in."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .errors import InputError
from .models import keep_shape, normalise_options, same_model

#: ``(width, height, aspect_ratio, image_size)`` of an image to be edited (``images.source_shape``).
Shape = tuple[int, int, str | None, str | None]


@dataclass(frozen=True)
class Defaults:
    """What a request uses where it says nothing; changed by ``%aigate config``."""

    model: str
    aspect_ratio: str | None = None
    image_size: str | None = None
    route: str = "chat"
    #: Answer a request already made from the history, with no call (``%aigate config replay=off``).
    replay: bool = True
    #: The most this notebook's history may cost, in USD (``AIGATE_BUDGET``); None: no limit.
    budget: float | None = None


@dataclass(frozen=True)
class Request:
    """One request as the front ends describe it, before defaults are applied."""

    prompt: str
    model: str | None = None
    aspect_ratio: str | None = None
    image_size: str | None = None
    route: str | None = None
    images: tuple[Any, ...] = ()
    #: Continue the conversation of ``images[0]`` (an earlier Google-route result): its
    #: lineage's prompts and the model's replies go before this prompt.
    multi_turn: bool = False
    #: The model the ratio and size were chosen for (a panel's lists), when that may not be
    #: the model that is sent: each then goes only where the sent model takes it.
    options_for: str | None = None
    #: Always send, even if the history already holds this request's picture (``--new``, a click).
    new: bool = False
    #: Edit only this box of ``images[0]``: ``(x, y, w, h)`` in its pixels, or as fractions of its
    #: width and height, or ``"X,Y,W,H"`` (``--region``); every pixel outside the box and its
    #: padding stays as it was (see ``region.py``).
    region: Any = None
    #: ``"crop"`` (the default: only the padded box is sent) or ``"guide"`` (``--region-mode``).
    region_mode: str | None = None


def resolve(request: Request, defaults: Defaults, *, continued_model: str | None = None,
            source: Shape | None = None) -> Request:
    """``request`` with ``defaults`` where it says nothing.

    An edit keeps its source's shape: with no ratio or size of its own, it takes those of the
    image it edits (``source``, the shape of ``images[0]``) where the model takes them, the
    nearest otherwise. A region edit takes no ratio or size: it keeps its source's, and the
    crop's are chosen for it. A multi-turn edit with no model goes on with ``continued_model``,
    the model that made the result it continues. The default ratio and size were chosen for the
    default model, and a request's own for ``request.options_for`` when it names a model: for
    another model each is used only where that model takes it, and otherwise the model decides.
    """
    model = request.model
    if not model and request.multi_turn and request.images:
        model = continued_model
    model = model or defaults.model
    route = request.route or ("google" if request.multi_turn else defaults.route)
    if request.region is not None:  # the client refuses a ratio or size given with a region
        return replace(request, model=model, route=route, options_for=None)
    ratio, size = request.aspect_ratio, request.image_size
    if request.options_for and not same_model(model, request.options_for):
        ratio, size = taken_or_none(model, ratio=ratio), taken_or_none(model, size=size)
    if request.images and not (ratio and size) and source is not None:
        kept_ratio, kept_size = keep_shape(model, *source)
        ratio, size = ratio or kept_ratio, size or kept_size
    default_ratio, default_size = defaults.aspect_ratio, defaults.image_size
    if not same_model(model, defaults.model):
        default_ratio = taken_or_none(model, ratio=default_ratio)
        default_size = taken_or_none(model, size=default_size)
    return replace(request, model=model, aspect_ratio=ratio or default_ratio, image_size=size or default_size,
                   route=route, options_for=None)


def taken_or_none(model: str, ratio: str | None = None, size: str | None = None) -> str | None:
    """``ratio`` or ``size`` if ``model`` takes it, else None."""
    try:
        normalise_options(model, ratio, size, 0)
    except InputError:
        return None
    return ratio or size
