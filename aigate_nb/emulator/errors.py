"""Error replies of the emulated gateway, in the OpenAI shape (/v1) and the Google shape (/v1beta)."""

from __future__ import annotations

from typing import Any

# Google's canonical status names for the HTTP codes the emulator sends (facts §5.3).
GOOGLE_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    411: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

_OPENAI_TYPE = {401: "authentication_error", 404: "not_found", 429: "rate_limit_error"}


class ApiError(Exception):
    """A reply with an HTTP error status; the route decides which body shape it gets."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        param: str | None = None,
        code: str | None = None,
        kind: str | None = None,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
        shape: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.param = param
        self.code = code
        self.kind = kind or _OPENAI_TYPE.get(status) or (
            "server_error" if status >= 500 else "invalid_request_error"
        )
        self.details = details
        self.headers = headers or {}
        self.shape = shape  # "google" or "openai" whatever the route; None: the route's own


def openai_error_body(error: ApiError) -> dict[str, Any]:
    """The body OpenAI-compatible routes send: ``{"error": {message, type, param, code}}``."""
    return {
        "error": {
            "message": error.message,
            "type": error.kind,
            "param": error.param,
            "code": error.code,
        }
    }


def google_error_body(error: ApiError) -> dict[str, Any]:
    """The body Google routes send: ``{"error": {code, message, status[, details]}}``."""
    body: dict[str, Any] = {
        "code": error.status,
        "message": error.message,
        "status": GOOGLE_STATUS.get(error.status, "UNKNOWN"),
    }
    if error.details:
        body["details"] = error.details
    return {"error": body}
