"""The budget as a promise: a request's estimate is held when it is accepted, checked and held
in one step under a lock, counted by every later check, and let go when the request ends (its
real cost is then in the history). Requests accepted at once, from threads, the panel, the
magic, batches and grids, can therefore never pass the budget together."""

from __future__ import annotations

import math
import threading
import warnings
from collections.abc import Callable
from typing import Any

from ..core.costs import Estimate, PlanEstimate, format_cost
from ..core.errors import BudgetError, BudgetWarning, InputError

#: The share of the budget past which each request is preceded by a warning.
BUDGET_WARNING_SHARE = 0.8


class Hold:
    """Money the budget keeps aside for requests accepted but not finished (in flight, or
    queued in a batch): every later check counts it, so that requests accepted at once cannot
    pass the budget together. Settled when its request ends: its result's real cost is then in
    the history, or it failed or was cancelled and cost nothing. See ``Session.reserve``."""

    def __init__(self, amount: float) -> None:
        self.amount = amount

    def __repr__(self) -> str:
        return f"<Hold ${self.amount:.3f}>"


class Budget:
    """The holds of one session against its budget. ``limit`` gives the budget in USD (None:
    none) and ``spent`` what the history has cost so far; both are asked at each check."""

    def __init__(self, limit: Callable[[], float | None], spent: Callable[[], float]) -> None:
        self._limit, self._spent = limit, spent
        # Reentrant: a check runs inside the step that holds.
        self._lock = threading.RLock()
        self._holds: list[Hold] = []

    def reserved(self) -> float:
        """What the requests accepted but not finished are estimated to cost (USD)."""
        with self._lock:
            return sum(hold.amount for hold in self._holds)

    def reserve(self, planned: Estimate | PlanEstimate) -> Hold:
        """Check ``planned`` against the budget and hold its estimate, in one step; refused with
        ``BudgetError`` as ``check`` refuses, but with no warnings (a plan's check said them). A
        batch takes one for its rows before sending any, submits each ``within`` it, and settles
        what is left (rows not sent) when it ends."""
        with self._lock:
            if self._limit() is not None and planned.cost is not None:
                self._refuse_past(planned.cost, planned)
            hold = Hold(planned.cost or 0.0)
            self._holds.append(hold)
        return hold

    def hold_each(self, planned: Estimate, within: Hold | None = None) -> list[Hold]:
        """Check ``planned`` and hold one estimate per copy, in one step; paid from ``within``
        (a batch's hold) when given, only what passes it being checked again."""
        each = planned.each or 0.0  # a cost the table cannot tell holds nothing (check warns)
        with self._lock:  # checked and held in one step: no other request can slip in between
            if within is None:
                self.check(planned)
            else:
                short = max(0.0, each * planned.count - within.amount)
                if short > 1e-9:  # costs more than its batch planned: the difference is checked
                    self._refuse_past(short, planned)
                within.amount = max(0.0, within.amount - each * planned.count)
            holds = [Hold(each) for _ in range(planned.count)]
            self._holds += holds
        return holds

    def settle(self, *holds: Hold) -> None:
        """Let go of ``holds``: their requests ended, and what they cost is in the history."""
        with self._lock:
            self._holds = [hold for hold in self._holds if all(hold is not done for done in holds)]

    def check(self, planned: Estimate | PlanEstimate) -> None:
        """Refuse ``planned`` with ``BudgetError`` if it would take the spending, with what
        requests in flight or queued hold, past the budget; warn (``BudgetWarning``) once that
        passes 80 % of the budget, or when its cost cannot be estimated. No budget, or nothing to
        send: nothing to check."""
        budget = self._limit()
        if budget is None or planned.count == 0:
            return
        if planned.cost is None:
            warnings.warn(BudgetWarning(
                f"The budget cannot check this request: there is no price for {planned.model}; "
                "add it to a price file (%aigate config prices=FILE)."
            ), stacklevel=5)
            return
        with self._lock:
            after = self._refuse_past(planned.cost, planned)
        if after >= BUDGET_WARNING_SHARE * budget:
            warnings.warn(BudgetWarning(
                f"Budget: with this request (about {format_cost(planned.cost)}) this notebook will have spent "
                f"{format_cost(after)} of its {dollars(budget)} budget ({after / budget:.0%})."
            ), stacklevel=5)

    def _refuse_past(self, cost: float, planned: Estimate | PlanEstimate) -> float:
        """``BudgetError`` if ``cost`` more would pass the budget, counting what is spent and
        held; else what would then be spent. Called holding the lock."""
        budget = self._limit()
        spent, held = self._spent(), self.reserved()
        after = spent + held + cost
        if budget is not None and after > budget + 1e-9:
            held_text = f" and requests not finished hold {format_cost(held)}" if held > 1e-9 else ""
            raise BudgetError(
                f"Over budget: this notebook has spent {format_cost(spent)} of its {dollars(budget)} budget"
                f"{held_text}, and this request ({planned.describe()}) would cost about {format_cost(cost)}; "
                "nothing was sent. Raise the budget (%aigate config budget=10) or turn it off (budget=off)."
            )
        return after


def parse_budget(value: Any) -> float | None:
    """A budget in USD (``5``, ``0.50``, ``$5``) as a number; ``off``/``none``/empty: no budget."""
    if value is None or isinstance(value, (int, float)) and not isinstance(value, bool):
        amount = value
    else:
        text = str(value).strip().removeprefix("$")
        if text.lower() in ("", "off", "none", "no", "default"):
            return None
        try:
            amount = float(text)
        except ValueError:
            amount = -1
    if amount is None:
        return None
    if isinstance(amount, bool) or not math.isfinite(amount) or amount < 0:
        raise InputError(f"budget is an amount in USD such as 5 or 0.50, or off; not {value!r}.")
    return float(amount)


def dollars(amount: float) -> str:
    return f"${amount:,.2f}"
