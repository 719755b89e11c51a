"""What a history's results used and cost, by model and by day, with totals: the figures of
``%aigate usage`` and ``History.usage()``, and the spending a budget is checked against.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..core.costs import TABLE, Usage, format_cost


@dataclass(frozen=True)
class Spent:
    """The sum over some results: ``requests`` (history entries, and attempts: requests charged
    that made no picture), ``images``, their ``usage``, ``cost`` (USD, of the results whose
    cost is known), ``estimated`` (part of it came from the price table), ``unknown`` (results
    whose cost is not known, left out of ``cost``) and ``no_image`` (the attempts among them)."""

    requests: int = 0
    images: int = 0
    usage: Usage = field(default_factory=Usage)
    cost: float = 0.0
    estimated: bool = False
    unknown: int = 0
    no_image: int = 0

    def add(self, result: Any) -> Spent:
        """This sum with one more result (an ``ImageResult``, a history entry or an ``Attempt``)."""
        known = result.cost is not None
        return Spent(
            requests=self.requests + 1,
            images=self.images + len(result.originals),
            usage=self.usage + result.usage,
            cost=self.cost + (result.cost if known else 0.0),
            estimated=self.estimated or (known and result.cost_source == TABLE),
            unknown=self.unknown + (not known),
            no_image=self.no_image + (not result.originals),
        )

    def cost_text(self) -> str:
        """``~$0.339``, and how many results are not counted when some costs are unknown."""
        text = format_cost(self.cost, TABLE if self.estimated else None)
        return f"{text} (+{self.unknown} unknown)" if self.unknown else text


@dataclass(frozen=True)
class Spending:
    """What the results of ``histories`` (their names) used and cost: ``total``, ``by_model``
    and ``by_day`` (``YYYY-MM-DD``, the day each was made, oldest first); ``balance`` is the
    account's balance where the gateway told it (USD)."""

    histories: tuple[str, ...]
    total: Spent = field(default_factory=Spent)
    by_model: dict[str, Spent] = field(default_factory=dict)
    by_day: dict[str, Spent] = field(default_factory=dict)
    balance: float | None = None

    @property
    def cost(self) -> float:
        return self.total.cost

    def with_balance(self, balance: float | None) -> Spending:
        return replace(self, balance=balance)

    def __str__(self) -> str:
        names = ", ".join(f"'{name}'" for name in self.histories) or "(none)"
        head = f"Spending of {'history' if len(self.histories) == 1 else 'histories'} {names}"
        lines = [head + ("" if self.total.requests else ": nothing yet")]
        if self.total.requests:
            rows = [("by model", None)] + [(f"  {name}", spent) for name, spent in self.by_model.items()]
            rows += [("by day", None)] + [(f"  {day}", spent) for day, spent in self.by_day.items()]
            rows += [("total", self.total)]
            lines += _table(rows)
            if self.total.no_image:
                attempts = self.total.no_image
                lines.append(
                    f"{attempts} of the {self.total.requests} requests made no picture (blocked for safety, refused "
                    f"or text only) but {'was' if attempts == 1 else 'were'} charged: counted above"
                )
            if self.total.estimated:
                lines.append("~: estimated from the price table (the gateway did not say what it charged)")
        if self.balance is not None:
            lines.append(f"balance: ${self.balance:,.2f} (the gateway's account)")
        return "\n".join(lines)

    def __repr__(self) -> str:
        return (
            f"<Spending {', '.join(self.histories)}: {self.total.requests} requests, "
            f"{self.total.images} images, {self.total.cost_text()}>"
        )


def summarize(results: Iterable[Any], histories: Iterable[str]) -> Spending:
    """The ``Spending`` of ``results`` (history entries), from the histories named ``histories``."""
    total = Spent()
    by_model: dict[str, Spent] = {}
    by_day: dict[str, Spent] = {}
    for result in results:
        total = total.add(result)
        by_model[result.model] = by_model.get(result.model, Spent()).add(result)
        day = (result.created or "")[:10] or "unknown"
        by_day[day] = by_day.get(day, Spent()).add(result)
    return Spending(
        tuple(histories), total, dict(sorted(by_model.items(), key=lambda item: -item[1].cost)),
        dict(sorted(by_day.items())),
    )


_COLUMNS = ("requests", "images", "input", "image out", "text out", "thinking", "cost")


def _table(rows: Sequence[tuple[str, Spent | None]]) -> list[str]:
    """Aligned text rows: a heading where the sum is None."""
    cells = [
        (name, None) if spent is None else (name, [
            str(spent.requests), str(spent.images), f"{spent.usage.input_tokens:,}",
            f"{spent.usage.image_tokens:,}", f"{spent.usage.text_tokens:,}",
            f"{spent.usage.thinking_tokens:,}", spent.cost_text(),
        ])
        for name, spent in rows
    ]
    first = max(len(name) for name, _ in cells)
    widths = [max([len(title)] + [len(values[k]) for _, values in cells if values]) for k, title in enumerate(_COLUMNS)]
    header = " " * first + "  " + "  ".join(title.rjust(width) for title, width in zip(_COLUMNS, widths))
    out = [header.rstrip()]
    for name, values in cells:
        if values is None:
            out.append(name)
        else:
            out.append(name.ljust(first) + "  " + "  ".join(v.rjust(w) for v, w in zip(values, widths)))
    return out
