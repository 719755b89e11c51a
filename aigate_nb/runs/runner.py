"""One fan-out of many requests, shared by batches and grids: each request checked and its
replay found (the plan), the ones to send estimated together (the budget), submitted
through the session, and each future's outcome read as a status, a result and a line.

What differs stays with its caller: a batch keeps a window in flight, a manifest and a
contact sheet; a grid sends all at once and lays its tiles out.
"""

from __future__ import annotations

import concurrent.futures
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from ..core.costs import PlanEstimate
from ..core.errors import AigateError, BudgetError, InputError, QuotaExhausted, RateLimitError
from ..core.results import ImageResult
from ..core.text import one_line
from ..gateway.pacing import Pacer
from ..gateway.prepared import PreparedRequest, estimate
from ..session.budget import Hold
from ..session.session import Outcome, Request, Session

#: The most requests one batch or cell keeps in flight at once.
MAX_CONCURRENCY = 16


class Status(str, Enum):
    """How one request of many ended; its value is what manifests and tables hold."""

    DONE = "done"  # sent now, its picture kept
    REPLAYED = "replayed"  # answered from the history, no call
    FAILED = "failed"  # the error says why
    SKIPPED = "skipped"  # not sent: the run stopped first
    REFUSED = "refused"  # not sent: the model cannot take it (a grid's combination)
    PENDING = "pending"  # not finished yet

    def __str__(self) -> str:
        return self.value

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)


#: The statuses of a request that has its picture.
MADE = (Status.DONE, Status.REPLAYED)


@dataclass
class Ended:
    """A finished request read for display: its status, its result, its one-line error."""

    status: Status
    result: ImageResult | None = None
    error: str | None = None


def check_concurrency(value: Any) -> int:
    """``value`` as a number of requests in flight, or ``InputError``."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_CONCURRENCY:
        raise InputError(f"concurrency={value!r}: send 1 to {MAX_CONCURRENCY} requests at once.")
    return value


def prepare(session: Session, request: Request) -> tuple[PreparedRequest, bool]:
    """``request`` checked and built by the session as any request is, and whether the
    history already answers it (then it is replayed: no call, no cost)."""
    prepared, _ = session.prepare_with_parent(request)
    return prepared, bool(session.replays(request, prepared, 1))


def estimate_all(session: Session, to_send: Sequence[PreparedRequest], what: str) -> PlanEstimate | None:
    """The requests to send estimated together (``what`` names them in the budget's lines),
    or None when there are none."""
    if not to_send:
        return None
    return PlanEstimate(tuple(estimate(prepared, session.client.prices, 1) for prepared in to_send), what)


def submit(session: Session, request: Request, within: Hold | None = None) -> concurrent.futures.Future | Outcome:
    """``request`` submitted, or the outcome of its refusal. The run was held against the
    budget as a whole: the requests' own budget warnings are not repeated."""
    try:
        [future], _ = session.submit_noting(request, within=within)
    except AigateError as exc:
        return Outcome(error=exc)
    return future


def ended(result: Outcome) -> Ended:
    """A request's outcome as a status, its result, and its error in one line."""
    if result.result is not None:
        status = Status.REPLAYED if result.result.replayed else Status.DONE
        note = one_line(str(result.not_kept)) if result.not_kept is not None else None
        return Ended(status, result.result, note)
    return Ended(Status.FAILED, None, one_line(str(result.error)) if result.error is not None else "cancelled")


def rate_limited(error: BaseException | None) -> bool:
    """A 429 the request layer's retries could not outwait (a daily quota is not one: it ends the run)."""
    return isinstance(error, RateLimitError) and not isinstance(error, QuotaExhausted)


def ends_run(error: BaseException | None) -> bool:
    """A used-up daily quota, or the budget reached: every further request would fail the same way."""
    return isinstance(error, (QuotaExhausted, BudgetError))


def window(pacer: Pacer, concurrency: int) -> int:
    """How many requests may be in flight now: the pacer's limit, which halves on 429s and grows back."""
    return max(1, min(concurrency, pacer.limit))
