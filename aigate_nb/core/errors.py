"""Everything that can go wrong in aigate_nb, in one place.

Every message says what happened and what to do about it. None of them ever
contains the API key.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from .text import clip

if TYPE_CHECKING:  # the record an error carries; results.py defines it, and imports this catalogue
    from .results import Attempt, ImageResult


class AigateError(Exception):
    """Base class of every error aigate_nb raises."""


class ConfigurationError(AigateError, ValueError):
    """A setting is unusable (a base URL without a scheme, a bad timeout)."""


class InputError(AigateError, ValueError):
    """Bad input caught before any request was sent: nothing left the machine."""


class CommandError(InputError):
    """The options line cannot be read: a typo in an option, a value of the wrong kind, an unclosed quote."""


class StoppedWaiting(AigateError):
    """The user interrupted the wait; the requests go on and their results still join the history."""

    def __init__(self, elapsed: float, count: int) -> None:
        which = "the request goes on in the background and its result" if count == 1 else (
            f"the {count} requests go on in the background and their results"
        )
        super().__init__(
            f"Stopped waiting after {elapsed:.0f} s; {which} will still join the history (%aigate history)"
        )
        self.elapsed = elapsed


class BudgetError(InputError):
    """The request would take this notebook's spending past its budget; nothing was sent."""


class BudgetWarning(UserWarning):
    """This notebook's spending, with the request about to be sent, is past 80 % of its budget."""


class HistoryError(AigateError):
    """A history entry does not exist or the history cannot be read or written. Not a
    ``LookupError``: a ``KeyError`` from a bug must show as one, not as a user's mistake."""


class NotKeptError(HistoryError):
    """An image was made but the history could not keep it; ``result`` holds it, so it is not lost."""

    def __init__(self, message: str, result: ImageResult) -> None:
        super().__init__(message)
        self.result = result


class LinkInHistoryError(HistoryError):
    """A history folder holds a symbolic link where a file or folder of its own should be;
    nothing is read, written or deleted through it. ``folder`` and ``link`` (inside it) say where."""

    def __init__(self, folder: str | os.PathLike[str], link: str) -> None:
        self.folder, self.link = folder, link
        try:
            target = f" (to {clip(os.readlink(os.path.join(folder, link)), 120)})"
        except OSError:
            target = ""
        super().__init__(
            f"The history folder {folder} holds a symbolic link, {link}{target}, and aigate_nb follows no link "
            "inside a history folder; replace the link with the file itself, or delete it."
        )


class GatewayError(AigateError):
    """The gateway answered with an HTTP error status.

    ``status`` is the HTTP status, ``message`` the gateway's own words, ``code``
    and ``error_type`` whatever code and type/status the error body carried, and
    ``attempts`` how many times the request was sent in all.
    """

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        error_type: str | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code
        self.error_type = error_type
        self.attempts = attempts

    def __str__(self) -> str:
        head = f"HTTP {self.status}: " if self.status else ""
        text = self.message.rstrip()
        tail = f" (after {self.attempts} attempts)" if self.attempts > 1 else ""
        advice = self.advice()
        if tail or advice:
            text = text.rstrip(".") + tail + "."
        return f"{head}{text}{advice}"

    def advice(self) -> str:
        """A short sentence on what to do, appended to the message."""
        return ""


class AuthenticationError(GatewayError):
    """401/403: the key is missing, wrong, or not allowed to use this model."""

    def advice(self) -> str:
        return " Check AIGATE_API_KEY (set it in the environment or a .env file, not in a cell)."


class BadRequestError(GatewayError):
    """400/404/422 and other 4xx: the gateway refused the request as written."""


class RateLimitError(GatewayError):
    """429: too many requests or quota used up; retried before this is raised."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retry_after = retry_after

    def advice(self) -> str:
        return " Wait a little and run it again, or check the quota of your key."


class QuotaExhausted(RateLimitError):
    """429 for a daily quota that is used up: not retried, since waiting minutes will not clear it.

    ``quota`` names the quota the gateway said ran out (``GenerateRequestsPerDay...``), if it did.
    """

    def __init__(self, message: str, *, quota: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.quota = quota

    def advice(self) -> str:
        return (
            " Waiting minutes will not help: try again once it resets (Google's daily quotas reset "
            "at midnight Pacific time), or use another key."
        )


class ServerError(GatewayError):
    """5xx: the gateway or the model failed; retried before this is raised."""

    def advice(self) -> str:
        return " The service is busy or failing; try again later, or a smaller image size."


class RequestTimeoutError(AigateError):
    """No complete answer within the read timeout (4K images can take minutes)."""


class GatewayConnectionError(AigateError):
    """The gateway could not be reached or dropped the connection."""


class ResponseError(AigateError):
    """The gateway answered 200 with a body that cannot be read (bad JSON, bad base64)."""


class NoImageError(AigateError):
    """The reply holds no image: text only, a safety finish, or a blocked prompt.

    Carries ``finish_reason``, ``block_reason``, ``text`` (what the model said)
    and ``finish_message`` so a caller can show the model's own explanation;
    ``usage`` (the reply's, as it came) and ``cost`` (what the gateway said it
    charged), since such a reply can still be charged; and ``attempt``, the
    ``results.Attempt`` the client priced from them (None when nothing was used),
    which the session keeps in the history so that spending counts it.
    """

    def __init__(
        self,
        *,
        finish_reason: str | None = None,
        block_reason: str | None = None,
        text: str | None = None,
        finish_message: str | None = None,
        usage: dict | None = None,
        cost: float | None = None,
    ) -> None:
        self.finish_reason = finish_reason
        self.block_reason = block_reason
        self.text = text
        self.finish_message = finish_message
        self.usage = usage or {}
        self.cost = cost
        self.attempt: Attempt | None = None
        super().__init__(self._message())

    def _message(self) -> str:
        if self.block_reason:
            head = f"The prompt was blocked ({self.block_reason}); rephrase it and try again."
        elif self.finish_reason and self.finish_reason.upper() not in ("STOP", "FINISH_REASON_UNSPECIFIED"):
            head = (
                f"The model returned no image (finish reason {self.finish_reason}); "
                "rephrase the prompt and try again."
            )
        else:
            head = (
                "The model answered with text only and no image; ask for an image "
                "explicitly or rephrase the prompt."
            )
        extra = [s for s in (self.finish_message, self.text) if s]
        if extra:
            head += f" The model said: {clip(' '.join(extra), 300)}"
        return head
