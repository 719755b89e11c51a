"""What the emulator charges: every generation reply costs its tokens at the model's rates,
taken from a balance that ``GET /v1/balance`` reports, and the reply may say what it cost
(``usage.cost``, as OpenRouter-style gateways do) when asked to."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from .generation import Plan, Usage, charge_for

#: The balance a new emulator starts with, in USD.
STARTING_BALANCE = 10.0

#: Called by the reply builders with each reply's plan and usage; returns the cost to report, or None.
Bill = Callable[[Plan, Usage], "float | None"]


class Billing:
    """The account of one emulator: ``report_cost`` (say the cost in each reply), ``balance``
    (what ``GET /v1/balance`` reports: the starting balance less what was charged; None: the
    endpoint answers 404, as on a gateway without one). Safe to use from many threads."""

    def __init__(self, report_cost: bool = False, balance: float | None = STARTING_BALANCE) -> None:
        self._lock = threading.Lock()
        self._initial = (report_cost, balance)
        self.report_cost, self._start, self.charged = report_cost, balance, 0.0

    def bill(self, plan: Plan, usage: Usage) -> float | None:
        """Charge one reply; its cost when replies report it, else None."""
        cost = charge_for(plan, usage)
        with self._lock:
            self.charged += cost
            return cost if self.report_cost else None

    @property
    def balance(self) -> float | None:
        with self._lock:
            return None if self._start is None else round(self._start - self.charged, 6)

    def settings(self) -> dict[str, Any]:
        """What ``GET /emulator/billing`` shows."""
        return {"report_cost": self.report_cost, "balance": self.balance, "charged": round(self.charged, 6)}

    def change(self, report_cost: bool | None = None, balance: float | None | str = "keep") -> None:
        """Turn cost reporting on or off, and/or start again from a new ``balance`` (None: no
        balance endpoint); what was charged so far is forgotten with a new balance."""
        with self._lock:
            if report_cost is not None:
                self.report_cost = report_cost
            if not isinstance(balance, str):  # "keep": as it is
                self._start, self.charged = balance, 0.0

    def reset(self) -> None:
        """Back to how the emulator was started."""
        with self._lock:
            self.report_cost, self._start = self._initial
            self.charged = 0.0
