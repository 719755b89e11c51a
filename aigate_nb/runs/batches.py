"""Batches: one request per row of a list or a DataFrame, sent a few at a time.

``batch(rows, prompt=None, **options)`` is a front end beside the magic and the panel: it
turns each row into a ``Request`` and hands it to the session, which holds every rule
(defaults, checks, replay, the budget). What lives here is only the running of many:
the checks of every row before anything is sent, a window of requests in flight, the
progress, a manifest line per finished row, and the ``BatchResult``.

Nothing is lost and nothing is paid twice: each finished image is in the history before
its row is counted done, each finished row is a line of the manifest, and running the
same batch again replays the finished rows from the history (no call, no cost) and
sends only the rest. A row is claimed in the manifest (under a file lock) before it is
sent, so that a second run of the same batch at the same time (another kernel, a script)
waits for the rows the first has in hand instead of paying for them again.
"""

from __future__ import annotations

import concurrent.futures
import datetime as _dt
import hashlib
import html
import json
import os
import socket
import string
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core import history_files
from ..core.costs import REPLAY, TABLE, Estimates, format_cost
from ..core.errors import AigateError, BudgetError, GatewayConnectionError, InputError, QuotaExhausted, RateLimitError
from ..core.images import b64encode, make_thumbnail
from ..core.results import ImageResult
from ..core.text import clip, counted, display_path, one_line
from ..gateway.pacing import Pacer, parse_rate
from ..gateway.prepared import estimate
from ..session.budget import Hold
from ..session.session import Outcome, Request, Session, current_session, outcome
from .waiting import progress_bar

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: claims then keep threads apart, not processes
    fcntl = None

#: Columns of a row that set a request's option instead of filling the template.
OPTION_COLUMNS = ("model", "aspect_ratio", "image_size", "route", "image", "images", "edit")
#: The options ``batch()`` takes for every row (a row's own column wins).
ROW_OPTIONS = ("model", "aspect_ratio", "image_size", "route", "images", "edit")
#: Requests in flight at once, unless ``concurrency`` says otherwise.
DEFAULT_CONCURRENCY = 4
#: The most rows one call takes: a typo must not queue a million paid requests.
MAX_ROWS = 10_000
#: How many times one row goes back in the queue after a rate limit outlasted its retries.
MAX_REQUEUES = 3
#: Rows in a row that fail to reach the gateway (each after its retries) before the batch stops:
#: the rest would only fail the same way, one after another.
MAX_UNREACHABLE = 3
#: Seconds between two looks at rows another run of the same batch has in hand.
CLAIM_POLL = 0.2
#: A claim from another machine (a shared folder), whose process cannot be asked whether it
#: lives, is taken for abandoned after this many seconds.
CLAIM_TIMEOUT = 900
#: Seconds between two redraws of the growing contact sheet.
SHEET_INTERVAL = 1.0
#: The long edge of a contact-sheet thumbnail, in pixels.
SHEET_EDGE = 160
#: Bytes of thumbnails one contact sheet may add to the notebook (base64 included): a sheet of
#: a long batch shows as many rows as fit (the newest, while it grows) and says how many more.
SHEET_BUDGET = 250_000

_FORMATTER = string.Formatter()


@dataclass
class BatchRow:
    """One row of a batch and how it ended.

    ``status`` is ``"done"`` (sent now), ``"replayed"`` (answered from the history),
    ``"failed"`` (``error`` says why), ``"skipped"`` (not sent: the batch stopped first)
    or ``"pending"`` (not finished yet).
    """

    number: int
    prompt: str
    inputs: dict[str, Any]
    request: Request | None = None
    status: str = "pending"
    result: ImageResult | None = None
    error: str | None = None
    #: The row's label in the rows given (a DataFrame's index), when it is not its position.
    label: Any = None
    #: The history already held this row's picture when the batch was planned: replayed, not sent.
    planned_replay: bool = False
    #: How many times a rate limit outlasted the request layer's retries and the row went back in the queue.
    requeued: int = 0
    _thumbnail: str | None = field(default=None, repr=False, compare=False)

    @property
    def entry_id(self) -> str | None:
        return self.result.id if self.result is not None else None

    @property
    def cost(self) -> float | None:
        if self.result is None:
            return None
        return 0.0 if self.result.replayed else getattr(self.result, "cost", None)

    @property
    def cost_source(self) -> str | None:
        """Where ``cost`` came from: "gateway", "table" (estimated), "replay", or None."""
        if self.result is None:
            return None
        return REPLAY if self.result.replayed else self.result.cost_source

    @property
    def file(self) -> str | None:
        if self.result is None or not self.result.files:
            return None
        return str(self.result.files[0])

    def thumbnail(self) -> str | None:
        """The row's image as a small JPEG in base64, made once (a growing sheet redraws often)."""
        if self._thumbnail is None and self.result is not None:
            try:
                self._thumbnail = b64encode(make_thumbnail(self.result.data, SHEET_EDGE))
            except (OSError, ValueError):
                return None
        return self._thumbnail

    def manifest_line(self) -> dict[str, Any]:
        """What the manifest keeps of this row: enough to find its image and to tell what to retry."""
        return {
            "row": self.number,
            "label": _plain(self.label),
            "prompt": self.prompt,
            "inputs": {key: _plain(value) for key, value in self.inputs.items()},
            "status": self.status,
            "entry": self.entry_id,
            "file": self.file,
            "cost": self.cost,
            "error": self.error,
            "finished": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        }


class BatchResult:
    """The rows of one batch, each with its status, its history entry and its error.

    Displays as a contact sheet; ``failed`` lists the rows to look at, ``to_pandas()``
    gives a DataFrame (when pandas is installed), ``manifest`` is the JSONL file of
    the finished rows.
    """

    def __init__(self, rows: list[BatchRow], manifest: Path | None = None, stopped: str | None = None) -> None:
        self.rows = rows
        self.manifest = manifest
        #: Why the batch stopped before every row was tried (a per-day quota, an interrupt), if it did.
        self.stopped = stopped
        #: True while the cell that ran the batch, whose output shows its sheet, still runs.
        self._in_its_cell = False

    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self):
        return iter(self.rows)

    def __getitem__(self, k: int) -> BatchRow:
        return self.rows[k]

    def _with(self, *statuses: str) -> list[BatchRow]:
        return [row for row in self.rows if row.status in statuses]

    @property
    def done(self) -> list[BatchRow]:
        """The rows that have their image (sent now or replayed)."""
        return self._with("done", "replayed")

    @property
    def failed(self) -> list[BatchRow]:
        return self._with("failed")

    @property
    def skipped(self) -> list[BatchRow]:
        return self._with("skipped", "pending")

    @property
    def results(self) -> list[ImageResult]:
        """The images made or replayed, in row order."""
        return [row.result for row in self.rows if row.result is not None]

    @property
    def cost(self) -> float:
        """What the rows sent now cost, where known (replayed rows cost nothing)."""
        return sum(row.cost or 0.0 for row in self.rows)

    def summary(self) -> str:
        """``40 rows: 38 done (12 replayed), 2 failed | $1.234 | manifest: ...``"""
        counts = {status: len(self._with(status)) for status in ("done", "replayed", "failed")}
        made = counts["done"] + counts["replayed"]
        parts = [f"{made} done" + (f" ({counts['replayed']} replayed)" if counts["replayed"] else "")]
        if counts["failed"]:
            parts.append(f"{counts['failed']} failed")
        left = len(self.skipped)
        if left:
            parts.append(f"{left} not sent")
        line = f"{counted(len(self.rows), 'row')}: " + ", ".join(parts)
        known = [row for row in self.rows if row.cost is not None]
        if known:
            estimated = any(row.cost_source == TABLE for row in known)
            line += f" | {format_cost(sum(row.cost for row in known), TABLE if estimated else None)}"
        if self.stopped:
            line += f" | stopped: {self.stopped}"
        return line

    def to_pandas(self):
        """The rows as a pandas DataFrame: one per row, with status, entry, file, cost and error;
        indexed like the DataFrame given (so ``df.join(result.to_pandas()[["status", "entry"]])``
        works), else by row number."""
        try:
            import pandas
        except ModuleNotFoundError:
            raise InputError("to_pandas() needs pandas: pip install pandas, or use .rows.") from None
        records = []
        for row in self.rows:
            record = {"row": row.number, "prompt": row.prompt, **row.inputs}
            record.update(status=row.status, entry=row.entry_id, file=row.file, cost=row.cost, error=row.error)
            records.append(record)
        frame = pandas.DataFrame.from_records(records)
        if not len(frame):
            return frame
        if all(row.label is not None for row in self.rows):  # a DataFrame's rows: its own index, to join on
            return frame.set_index(pandas.Index([row.label for row in self.rows]))
        return frame.set_index("row")

    def __repr__(self) -> str:
        return f"<BatchResult {self.summary()}>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        lines = [self.summary()]
        for row in self.failed[:10]:
            lines.append(f"  row {row.number}: {row.error}")
        printer.text("\n".join(lines))

    def _repr_mimebundle_(self, include=None, exclude=None) -> dict[str, str]:
        """A contact sheet; just the summary line when the batch's own growing sheet is already
        on screen above it (the same cell), so the images are not shown twice."""
        if self._in_its_cell:
            return {"text/plain": self.summary()}
        return {"text/html": contact_sheet(self.rows, self.summary()), "text/plain": self.summary()}


# -- rows -------------------------------------------------------------------------------------


def read_rows(rows: Any) -> list[tuple[Any, dict[str, Any]]]:
    """``rows`` as ``(label, columns)`` pairs: a list of prompts, of dicts, or a pandas DataFrame
    (its index gives the labels). pandas is never imported here: a DataFrame is known by its
    ``to_dict``."""
    if isinstance(rows, (str, bytes)) or rows is None:
        raise InputError(
            "batch() takes a list of prompts, a list of dicts or a DataFrame, not a single "
            f"{type(rows).__name__}; e.g. batch(['a red door', 'a blue door'])."
        )
    if hasattr(rows, "to_dict") and hasattr(rows, "columns") and hasattr(rows, "index"):
        records = rows.to_dict(orient="records")
        pairs = [(label, dict(record)) for label, record in zip(list(rows.index), records)]
        return [(_plain(label), {str(key): value for key, value in record.items()}) for label, record in pairs]
    if not isinstance(rows, Iterable) or isinstance(rows, Mapping):
        raise InputError(
            f"batch() takes a list of prompts, a list of dicts or a DataFrame, not {type(rows).__name__}."
        )
    pairs = []
    for number, row in enumerate(rows):
        if isinstance(row, str):
            pairs.append((None, {"prompt": row}))
        elif isinstance(row, Mapping):
            pairs.append((None, {str(key): value for key, value in row.items()}))
        else:
            raise InputError(
                f"Row {number} is a {type(row).__name__}; each row is a prompt (str) or a dict of columns."
            )
        if len(pairs) > MAX_ROWS:
            raise InputError(f"A batch takes at most {MAX_ROWS} rows; split it into several.")
    return pairs


def template_fields(template: str) -> list[str]:
    """The names of the ``{column}`` fields of a prompt template (``{{`` is a brace)."""
    names = []
    try:
        for _, name, _, _ in _FORMATTER.parse(template):
            if name:
                root = name.split(".", 1)[0].split("[", 1)[0]
                if root and root not in names:
                    names.append(root)
    except ValueError as exc:
        raise InputError(f"The prompt template cannot be read: {exc}; write {{{{ and }}}} for braces.") from None
    return names


def fill_template(template: str, values: Mapping[str, Any], number: int) -> str:
    """``template`` with its fields from ``values``, or one line naming the field that cannot be
    filled: a column that is missing, or one whose value the field cannot index, format or convert."""
    try:
        return template.format_map(_Strict(values))
    except _NoColumn as exc:
        missing = exc.args[0]
        columns = ", ".join(sorted(k for k in values if not k.startswith("_"))) or "none"
        raise InputError(
            f"Row {number}: the template's {{{missing}}} is not a column of the rows (columns: {columns})."
        ) from None
    except Exception as exc:  # noqa: BLE001 - a field may index, format or call into any value a row holds
        field = _failing_field(template, values)
        reason = one_line(str(exc)) or type(exc).__name__
        raise InputError(
            f"Row {number}: the template's {field or 'field'} cannot be filled ({reason}); "
            "check what that column holds in this row."
        ) from None


def _failing_field(template: str, values: Mapping[str, Any]) -> str | None:
    """The first ``{field}`` of ``template`` (as written) that cannot be filled from ``values``."""
    try:
        for _, name, spec, conversion in _FORMATTER.parse(template):
            if name is None:
                continue
            field = "{" + name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "") + "}"
            try:
                field.format_map(_Strict(values))
            except Exception:  # noqa: BLE001 - this is the one
                return field
    except ValueError:
        pass
    return None


class _NoColumn(KeyError):
    """A field names no column: told apart from a ``KeyError`` of indexing a column's value."""


class _Strict(dict):
    def __missing__(self, key: str) -> Any:
        raise _NoColumn(key)


# -- the run ----------------------------------------------------------------------------------


@dataclass
class BatchPlan:
    """The rows checked and turned into requests, before anything is sent."""

    rows: list[BatchRow]
    #: A name that stays the same when the same rows are run again (their request hashes).
    key: str = ""
    #: Rows the history already answers (replayed, no call).
    replays: int = 0
    #: The estimated cost in USD of the rows to send, or None where it is not known.
    estimate: float | None = None
    unknown_costs: int = 0
    options: dict[str, Any] = field(default_factory=dict)
    #: The estimates of the rows to send: held against the budget while the batch runs.
    costs: Estimates | None = None


def plan_batch(
    rows: Any,
    prompt: str | None = None,
    *,
    session: Session | None = None,
    namespace: Mapping[str, Any] | None = None,
    new: bool = False,
    **options: Any,
) -> BatchPlan:
    """Check every row and turn it into a ``Request``: a bad row is refused here, before
    anything is sent. ``namespace`` (a notebook's variables) resolves ``edit``/``images``
    names and fills template fields that no column fills."""
    session = session or current_session()
    unknown = set(options) - set(ROW_OPTIONS)
    if unknown:
        raise InputError(
            f"batch() has no option {sorted(unknown)[0]!r}; the options are {', '.join(ROW_OPTIONS)}, "
            "concurrency, rate, manifest, new, progress and display."
        )
    pairs = read_rows(rows)
    if not pairs:
        raise InputError("The batch has no rows; give it a list of prompts, of dicts, or a DataFrame.")
    if prompt is not None and not isinstance(prompt, str):
        raise InputError(f"prompt= is a template string such as 'a {{colour}} door', not {type(prompt).__name__}.")
    fields = template_fields(prompt) if prompt else []
    namespace = namespace or {}
    planned: list[BatchRow] = []
    for number, (label, columns) in enumerate(pairs):
        values = {**{k: v for k, v in namespace.items() if k in fields and k not in columns}, **columns}
        empty = [name for name in fields if name in values and _missing(values[name])]
        if empty:
            raise InputError(
                f"Row {number}: the column {empty[0]!r} is empty there (None or NaN), and the template needs it; "
                "fill it in or leave the row out."
            )
        if prompt:
            text = fill_template(prompt, values, number)
        elif "prompt" in columns:
            text = columns["prompt"]
        else:
            raise InputError(
                f"Row {number} has no 'prompt' column; give batch() a prompt template such as "
                "prompt='a {subject} in watercolour'."
            )
        if not isinstance(text, str) or not text.strip():
            raise InputError(f"Row {number}: the prompt is empty; every row needs words to send.")
        settings = {**options, **{k: v for k, v in columns.items() if k in OPTION_COLUMNS and _given(v)}}
        request = _request_for(session, text.strip(), settings, namespace, number, new)
        inputs = {key: value for key, value in columns.items() if key != "prompt"}
        planned.append(BatchRow(number=number, prompt=text.strip(), inputs=inputs, request=request, label=label))
    plan = BatchPlan(rows=planned, options=options)
    _check_and_estimate(session, plan)
    return plan


def _request_for(
    session: Session, text: str, settings: dict[str, Any], namespace: Mapping[str, Any], number: int, new: bool
) -> Request:
    images: list[Any] = []
    try:
        if _given(settings.get("edit")):
            images.append(session.resolve_image(_reference(settings["edit"]), namespace))
        for key in ("image", "images"):
            value = settings.get(key)
            if not _given(value):
                continue
            items = value if isinstance(value, (list, tuple)) else [value]
            images += [session.resolve_image(_reference(item), namespace) for item in items if _given(item)]
        return Request(
            prompt=text,
            model=_text_or_none(settings.get("model")),
            aspect_ratio=_text_or_none(settings.get("aspect_ratio")),
            image_size=_text_or_none(settings.get("image_size")),
            route=_text_or_none(settings.get("route")),
            images=tuple(images),
            new=new,
        )
    except AigateError as exc:
        raise InputError(f"Row {number}: {one_line(str(exc))}") from None


def _check_and_estimate(session: Session, plan: BatchPlan) -> None:
    """Each row checked by the session as any request is (model, ratio, size, images), its
    replay found, and the cost of what will be sent estimated and held against the budget.
    The batch's key is made of the rows' request hashes: the same rows, the same manifest."""
    replays, to_send = 0, []
    digest = hashlib.sha256()
    for row in plan.rows:
        try:
            prepared, _ = session.prepare(row.request)
        except AigateError as exc:
            raise InputError(f"Row {row.number}: {one_line(str(exc))}") from None
        digest.update(prepared.request_hash.encode("ascii"))
        if session.replays(row.request, prepared, 1):
            row.planned_replay = True
            replays += 1
            continue
        to_send.append(prepared)
    plan.key = digest.hexdigest()[:12]
    planned = Estimates(tuple(estimate(prepared, session.client.prices, 1) for prepared in to_send), "this batch")
    if to_send:
        session.check_budget(planned)  # refused here, before the first request, if it would pass the budget
    plan.replays = replays
    plan.estimate = planned.cost if to_send else 0.0
    plan.unknown_costs = planned.unknown
    plan.costs = planned if to_send else None


def run_batch(
    plan: BatchPlan,
    *,
    session: Session | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
    rate: str | None = None,
    manifest: str | os.PathLike | None = None,
    progress: bool = True,
    display: bool = True,
) -> BatchResult:
    """Send the plan's rows, ``concurrency`` at a time (fewer while the gateway says to slow
    down: a ``Pacer`` halves that on 429s and grows it back after a run of successes; ``rate``
    such as ``"60/min"`` caps how often one starts), each outcome written to the manifest as
    it finishes.

    Before the first request, the manifest is opened (a folder, or a missing one, is refused
    here) and the estimate of every row to send is held against the budget, so that what
    else the notebook sends meanwhile counts the rows still queued; what rows not sent held
    is let go when the batch ends. Each row is claimed in the manifest before it is sent: a
    row another run of the same batch has in hand is waited for, then replayed.

    The batch stops, leaving the rest unsent, at a used-up daily quota, the budget reached,
    or ``MAX_UNREACHABLE`` rows in a row that could not reach the gateway. An interrupt
    stops sending: nothing more is sent, the requests in flight still join the history (and
    the manifest, as each finishes), and ``KeyboardInterrupt`` is raised again with one line
    saying which rows were not sent and how to send them."""
    session = session or current_session()
    concurrency = _check_concurrency(concurrency)
    if rate is not None:
        parse_rate(rate)  # a bad rate is refused before anything is sent
    path = manifest_path(session, plan, manifest)
    # The default manifest lies in the history folder: opened there as every file is, through no link.
    ledger = _Manifest(path, plan.key, inside=session.history.folder if manifest is None else None)
    hold = session.reserve(plan.costs) if plan.costs is not None else None
    try:
        view = _Progress(plan, session, path, progress=progress, display=display)
        result = _send_rows(plan, session, ledger, hold, view, concurrency, rate)
    finally:
        if hold is not None:
            session.settle(hold)  # the rows sent hold their own; those not sent cost nothing
    if view.sheet is not None:
        _for_the_rest_of_the_cell(result)
    if result.stopped:
        print(f"The batch stopped: {result.stopped}. {result.summary()}.")
    return result


def _send_rows(
    plan: BatchPlan, session: Session, ledger: _Manifest, hold: Hold | None, view: _Progress,
    concurrency: int, rate: str | None,
) -> BatchResult:
    """``run_batch``'s loop: rows claimed and submitted while the window has room, outcomes
    written as they come back."""
    rows = plan.rows
    queue = list(rows)
    waiting: list[BatchRow] = []  # rows another run of this batch has in hand
    in_flight: dict[concurrent.futures.Future, BatchRow] = {}
    stopped: str | None = None
    unreachable = 0  # rows in a row that could not reach the gateway
    client = session.client
    own_pacer = client.pacer is None or rate is not None
    pacer = Pacer(concurrency, rate=rate) if own_pacer else client.pacer
    if own_pacer:
        client.pacer = pacer  # single requests sent meanwhile keep to it too
    try:
        while queue or in_flight or waiting:
            limit = _limit(pacer, concurrency)
            while queue and len(in_flight) < limit and stopped is None:
                row = queue.pop(0)
                if not row.planned_replay and not ledger.claim(row.number):
                    waiting.append(row)
                    continue
                try:
                    # The batch was held against the budget as a whole: the rows' own warnings are not repeated.
                    [future], _ = session.submit_noting(row.request, within=hold)
                except AigateError as exc:
                    _finish(row, Outcome(error=exc), ledger, view)
                    if isinstance(exc, BudgetError):
                        stopped = one_line(str(exc)).rstrip(".")
                    continue
                in_flight[future] = row
            if stopped is not None:
                _skip(queue)
                _skip(waiting)
            if waiting and not queue:  # their claims may have ended meanwhile: look again
                queue, waiting = waiting, []
            if not in_flight:
                if not queue:
                    break
                time.sleep(CLAIM_POLL)  # only rows another run has in hand: wait for it
                continue
            finished, _ = concurrent.futures.wait(
                list(in_flight), timeout=0.5, return_when=concurrent.futures.FIRST_COMPLETED
            )
            for future in finished:
                row = in_flight.pop(future)
                result = outcome(future)
                if _rate_limited(result.error) and row.requeued < MAX_REQUEUES:
                    # The gateway's limit outlasted the retries: the Pacer has slowed down meanwhile,
                    # so the row goes to the back of the queue (still claimed) instead of failing.
                    row.requeued += 1
                    queue.append(row)
                    continue
                _finish(row, result, ledger, view)
                unreachable = unreachable + 1 if isinstance(result.error, GatewayConnectionError) else 0
                if stopped is None and result.error is not None and _ends_batch(result.error):
                    stopped = one_line(str(result.error)).rstrip(".")
                elif stopped is None and unreachable >= MAX_UNREACHABLE:
                    stopped = _unreachable(session, unreachable, result.error)
                if stopped is not None:
                    _skip(queue)
                    _skip(waiting)
            view.tick()
    except BaseException as exc:
        not_sent = queue + waiting
        _skip(queue)
        _skip(waiting)
        for future, row in in_flight.items():  # their lines follow as they finish, from the pool's threads
            future.add_done_callback(lambda done, row=row: _finish(row, outcome(done), ledger, None))
        ledger.forget(row.number for row in not_sent)
        if not isinstance(exc, KeyboardInterrupt):
            raise
        view.stopped = "interrupted"
        view.close()
        raise KeyboardInterrupt(_interrupted(rows, not_sent, len(in_flight))) from None
    finally:
        if own_pacer and client.pacer is pacer:
            client.pacer = None
    ledger.forget(list(ledger.claims))  # rows claimed, then not sent after all (requeued when the batch stopped)
    view.stopped = stopped
    view.close()
    return BatchResult(rows, ledger.path, stopped)


def _unreachable(session: Session, failures: int, error: BaseException | None) -> str:
    """Why a batch stopped at a gateway it cannot reach, and how to go on."""
    return (f"the gateway at {session.client.base_url} could not be reached ({failures} rows in a row: "
            f"{one_line(str(error)).rstrip('.')}); the rest were not sent. Once it answers, run the same "
            "batch again: finished rows are replayed, the rest are sent")


def _interrupted(rows: list[BatchRow], not_sent: list[BatchRow], in_flight: int) -> str:
    """The line an interrupted batch ends with: what finished, what goes on, what is left."""
    finished = [row for row in rows if row.status in ("done", "replayed", "failed")]
    line = f"Batch interrupted: {len(finished)} of {counted(len(rows), 'row')} finished"
    if in_flight:
        line += f", {in_flight} in flight still join the history"
    if not_sent:
        line += f"; {_row_numbers(not_sent)} not sent"
    return line + ". Run the same batch again for the rest: finished rows are replayed, not paid again."


def _row_numbers(rows: list[BatchRow]) -> str:
    """``rows 2-4, 7`` for rows 2, 3, 4 and 7."""
    numbers = [row.number for row in rows]
    spans: list[list[int]] = []
    for number in numbers:
        if spans and number == spans[-1][1] + 1:
            spans[-1][1] = number
        else:
            spans.append([number, number])
    text = ", ".join(f"{a}" if a == b else f"{a}-{b}" for a, b in spans)
    return f"{'row' if len(numbers) == 1 else 'rows'} {text}"


def batch(
    rows: Any,
    prompt: str | None = None,
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
    rate: str | None = None,
    manifest: str | os.PathLike | None = None,
    new: bool = False,
    progress: bool = True,
    display: bool = True,
    session: Session | None = None,
    namespace: Mapping[str, Any] | None = None,
    **options: Any,
) -> BatchResult:
    """Make one image per row of ``rows`` (a list of prompts, a list of dicts, or a pandas DataFrame).

    ``prompt`` is a template whose ``{column}`` fields come from each row (without one,
    each row's ``prompt`` column is sent). Columns named like the options (``model``,
    ``aspect_ratio``, ``image_size``, ``route``, ``image``/``images``, ``edit``) set them
    for their row; ``options`` set them for every row. Every row is checked, and the cost
    of what will be sent estimated and held against the budget, before anything is sent.

    Rows already made are replayed from the history (``new=True`` sends them all again);
    the others go ``concurrency`` at a time, fewer while the gateway answers 429 (waiting what
    it asks), and no more often than ``rate`` (``"60/min"``) if given. Each finished row is a
    line of the manifest (JSONL; by default in the history's folder, one per batch). A failed
    row never stops the others, except a used-up daily quota or the budget reached.
    Interrupting the kernel stops sending and raises ``KeyboardInterrupt`` saying which rows
    were not sent; what finished, and what was in flight, is kept.
    """
    session = session or current_session()
    _check_concurrency(concurrency)
    if rate is not None:
        parse_rate(rate)
    plan = plan_batch(rows, prompt, session=session, namespace=namespace, new=new, **options)
    return run_batch(plan, session=session, concurrency=concurrency, rate=rate, manifest=manifest,
                     progress=progress, display=display)


# -- pieces -----------------------------------------------------------------------------------


def manifest_path(session: Session, plan: BatchPlan, manifest: str | os.PathLike | None) -> Path:
    """Where the rows' outcomes are written: ``manifest`` if given, else one file per batch
    (named by its rows and options) in the history's ``batches`` folder."""
    if manifest is not None:
        path = Path(manifest).expanduser()
        if path.is_dir():
            shown = display_path(path)
            raise InputError(f"manifest={shown!r} is a folder; name a file in it, e.g. {shown}/shots.jsonl.")
        if path.suffix.lower() not in (".jsonl", ".json", ".ndjson", ""):
            raise InputError(f"manifest={str(manifest)!r}: the manifest is a JSONL file; name it e.g. shots.jsonl.")
        return path if path.suffix else path.with_suffix(".jsonl")
    return session.history.folder / "batches" / f"batch-{plan.key}.jsonl"


def _finish(row: BatchRow, result: Outcome, ledger: _Manifest, view: _Progress | None) -> None:
    if result.result is not None:
        row.result = result.result
        row.status = "replayed" if result.result.replayed else "done"
        if result.not_kept is not None:
            row.error = one_line(str(result.not_kept))
    else:
        row.status = "failed"
        row.error = one_line(str(result.error)) if result.error is not None else "cancelled"
    ledger.finished(row.number, row.manifest_line())
    if view is not None:
        view.finished(row)


class _Manifest:
    """The batch's JSONL manifest: a line per finished row and, before a row is sent, a claim
    line (``"status": "claimed"``, with the batch's key, the process and a token), each
    appended whole under an OS file lock.

    A row is in another run's hand while its newest line is a claim from a process that still
    lives (this process: a claim it has not finished; another on this machine: its pid answers;
    another machine: for ``CLAIM_TIMEOUT`` seconds). A claim by a killed process is taken over.
    Opened when the batch starts, so that a manifest that cannot be written is refused before
    anything is sent."""

    def __init__(self, path: Path, key: str, inside: Path | None = None) -> None:
        self.path, self.key, self.inside = path, key, inside
        self.claims: dict[int, str] = {}  # row -> this run's token, until its outcome is written
        # The newest line of each row read so far, and how far: each claim reads only what was added.
        self.newest: dict[int, dict[str, Any]] = {}
        self.read_up_to = 0
        shown = display_path(path)
        if path.is_dir():
            raise InputError(f"manifest={shown!r} is a folder; name a file in it, e.g. {shown}/shots.jsonl.")
        if inside is None and not path.parent.is_dir():
            raise InputError(
                f"manifest={shown!r}: the folder {display_path(path.parent)} does not exist; create it or name "
                "a file in a folder that exists. Nothing was sent."
            )
        try:
            with _locked(path, inside):
                pass
        except OSError as exc:
            raise InputError(
                f"manifest={shown!r} cannot be written ({exc.strerror or exc}); name a file you can write to. "
                "Nothing was sent."
            ) from None

    def claim(self, row: int) -> bool:
        """Claim ``row`` for this run, unless another run has it in hand (then False)."""
        if row in self.claims:
            return True  # a row back in the queue after a rate limit: still ours
        with _locked(self.path, self.inside) as fd:
            self._read_new_lines(fd)
            newest = self.newest.get(row)
            if newest is not None and newest.get("status") == "claimed" and _held(newest):
                return False
            token = os.urandom(8).hex()
            os.write(fd, _encoded({
                "row": row, "status": "claimed", "batch": self.key, "pid": os.getpid(),
                "host": socket.gethostname(), "token": token, "claimed": time.time(),
            }))
        self.claims[row] = token
        with _CLAIMS_LOCK:
            _CLAIMS.add(token)
        return True

    def _read_new_lines(self, fd: int) -> None:
        size = os.fstat(fd).st_size
        if size < self.read_up_to:  # written anew (its history was cleared): read from the start
            self.newest, self.read_up_to = {}, 0
        os.lseek(fd, self.read_up_to, os.SEEK_SET)
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        added = b"".join(chunks)
        whole = added[: added.rfind(b"\n") + 1]  # a line still being written is read next time
        self.read_up_to += len(whole)
        for line in _lines(whole):
            # Another batch's claims in a manifest named by hand are not this batch's rows.
            if isinstance(line.get("row"), int) and (line.get("status") != "claimed" or line.get("batch") == self.key):
                self.newest[line["row"]] = line

    def finished(self, row: int, record: dict[str, Any]) -> None:
        """Write ``row``'s outcome, which ends this run's claim of it."""
        with _locked(self.path, self.inside) as fd:
            os.write(fd, _encoded(record))
        self.forget([row])

    def forget(self, rows: Iterable[int]) -> None:
        """Let go of the claims of ``rows``, not sent after all."""
        for row in list(rows):
            token = self.claims.pop(row, None)
            with _CLAIMS_LOCK:
                _CLAIMS.discard(token)


#: The tokens of the claims this process holds: its own claims are known without asking the OS.
_CLAIMS: set[str] = set()
_CLAIMS_LOCK = threading.Lock()


def _held(claim: dict[str, Any]) -> bool:
    """Whether the run that wrote ``claim`` still has the row in hand."""
    if claim.get("host") != socket.gethostname():
        return time.time() - float(claim.get("claimed") or 0) < CLAIM_TIMEOUT
    pid = claim.get("pid")
    if pid == os.getpid():
        with _CLAIMS_LOCK:
            return claim.get("token") in _CLAIMS
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False  # killed before it wrote the row's outcome: the row is free again
    except (PermissionError, TypeError, ValueError, OverflowError):
        return isinstance(pid, int)  # another user's process lives; a claim with no pid holds nothing
    return True


class _locked:
    """The manifest open for appending, locked against other processes until closed."""

    def __init__(self, path: Path, inside: Path | None = None) -> None:
        self.path, self.inside = path, inside

    def __enter__(self) -> int:
        flags = os.O_RDWR | os.O_CREAT | os.O_APPEND
        if self.inside is None:
            self.fd = os.open(self.path, flags, 0o644)
        else:  # its folders are made as needed, and no link is followed
            self.fd = history_files.open_file(self.inside, history_files.relative_to(self.inside, self.path), flags)
        if fcntl is not None:
            fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self.fd

    def __exit__(self, *exc_info: object) -> None:
        os.close(self.fd)  # closing releases the lock


def _encoded(record: dict[str, Any]) -> bytes:
    """One JSON line, written whole by one append, so that a killed kernel leaves every finished row."""
    return (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode("utf-8")


def _lines(raw: bytes) -> list[dict[str, Any]]:
    """The manifest's lines that can be read; a torn last line is skipped."""
    lines = []
    for text in raw.decode("utf-8", errors="replace").splitlines():
        try:
            line = json.loads(text)
        except json.JSONDecodeError:
            continue
        if isinstance(line, dict):
            lines.append(line)
    return lines


def read_manifest(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The manifest's outcome lines, newest outcome of each row last (claims left out); a torn
    last line is skipped."""
    return [line for line in _lines(Path(path).read_bytes()) if line.get("status") != "claimed"]


def _rate_limited(error: BaseException | None) -> bool:
    """A 429 the request layer's retries could not outwait (a daily quota is not one: it ends the batch)."""
    return isinstance(error, RateLimitError) and not isinstance(error, QuotaExhausted)


def _ends_batch(error: BaseException) -> bool:
    """A used-up daily quota, or the budget reached: every further row would fail the same way."""
    return isinstance(error, (QuotaExhausted, BudgetError))


def _skip(queue: list[BatchRow]) -> None:
    for row in queue:
        row.status = "skipped"
    queue.clear()


def _limit(pacer: Pacer, concurrency: int) -> int:
    """How many rows may be in flight now: the pacer's limit, which halves on 429s and grows back."""
    return max(1, min(concurrency, pacer.limit))


def _check_concurrency(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 16:
        raise InputError(f"concurrency={value!r}: send 1 to 16 requests at once.")
    return value


def _given(value: Any) -> bool:
    """A cell that says something: not None, not NaN, not an empty string."""
    return not _missing(value) and not (isinstance(value, str) and not value.strip())


def _missing(value: Any) -> bool:
    """None, NaN, or pandas' NA and NaT (known by name: pandas is never imported here)."""
    if value is None or type(value).__name__ in ("NAType", "NaTType"):
        return True
    return isinstance(value, float) and value != value


def _reference(value: Any) -> Any:
    """A history index read from a DataFrame column that also holds gaps (NaN makes ``0`` a
    ``0.0``) as the whole number it is; anything else as it is."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    item = getattr(value, "item", None)  # a numpy integer
    if callable(item) and type(value).__name__.startswith(("int", "uint")):
        return item()
    return value


def _text_or_none(value: Any) -> str | None:
    return str(value).strip() if _given(value) else None


def _plain(value: Any) -> Any:
    """A value as JSON can hold it (an image or a numpy number as text)."""
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    item = getattr(value, "item", None)
    if callable(item):
        try:
            return item()
        except (TypeError, ValueError):
            pass
    return str(value) if not hasattr(value, "_aigate_image_bytes") else repr(value)


def contact_sheet(rows: list[BatchRow], summary: str, newest: bool = False) -> str:
    """The rows as a grid of small thumbnails, each with its row number and status; a failed
    row as a blank tile with its reason. As many rows as ``SHEET_BUDGET`` holds are shown (the
    first ones, or with ``newest`` the last ones) and a line says how many more there are."""
    tiles: list[tuple[int, str]] = []
    spent = 0
    for row in reversed(rows) if newest else rows:
        tile = _tile(row)
        spent += len(tile)
        if spent > SHEET_BUDGET and tiles:
            break
        tiles.append((row.number, tile))
    tiles.sort()
    more = len(rows) - len(tiles)
    note = ""
    if more:
        which = "newest" if newest else "first"
        note = (f"<div style=\"font-size:smaller\">The {which} {len(tiles)} of {len(rows)} rows; the others are in "
                ".rows, .to_pandas() and %aigate history.</div>")
    return ('<div class="aigate-batch"><div style="display:grid;grid-template-columns:repeat(auto-fill,'
            'minmax(110px,1fr));gap:6px;align-items:start">' + "".join(tile for _, tile in tiles) + '</div>'
            f'{note}<pre style="white-space:pre-wrap;font-size:smaller;margin:4px 0 0 0">{html.escape(summary)}'
            '</pre></div>')


def _tile(row: BatchRow) -> str:
    """One row: its thumbnail fitted into a square box (a 1:4 beside a 16:9 stays a tile), or
    a blank box with its reason (in full on hover); its number and status below."""
    title = html.escape(f"{row.number}: {row.prompt}", quote=True)
    box = "aspect-ratio:1;display:flex;align-items:center;justify-content:center;overflow:hidden"
    thumbnail = row.thumbnail()
    if thumbnail is not None:
        body = (f'<div style="{box}"><img src="data:image/jpeg;base64,{thumbnail}" alt="{title}" title="{title}" '
                'style="max-width:100%;max-height:100%;display:block"/></div>')
    else:
        reason = "(image unreadable)" if row.result is not None else (row.error or row.status)
        body = (f'<div title="{html.escape(reason, quote=True)}" style="aspect-ratio:1;overflow:hidden;'
                'border:1px dashed #999;padding:6px;box-sizing:border-box;font-size:smaller;overflow-wrap:anywhere">'
                f'{html.escape(clip(reason, 100))}</div>')
    label = f"{row.number} · {row.status}"
    if row.cost:
        label += f" · {format_cost(row.cost, row.cost_source)}"
    return (f'<figure style="margin:0;min-width:0">{body}'
            f'<figcaption style="font-size:smaller">{html.escape(label)}</figcaption></figure>')


class _Progress:
    """The batch's progress: a ``tqdm`` bar (a widget in Jupyter, text on stderr in a terminal:
    ``waiting.progress_bar``) with done, failed, replayed and spent so far and the time left,
    and where the front end can redraw an output in place, a contact sheet that grows as
    images arrive.

    The rows the history answers are counted from the start (the bar's ``initial``), so
    that the time left is reckoned from the rows actually sent."""

    def __init__(self, plan: BatchPlan, session: Session, manifest: Path, progress: bool, display: bool) -> None:
        self.rows = plan.rows
        self.lock = threading.Lock()
        self.counts = {"done": 0, "replayed": 0, "failed": 0}
        self.spent: float | None = None
        self.stopped: str | None = None
        self.bar = None
        self.sheet = None
        self.drawn = 0.0
        self.dirty = False
        to_send = len(self.rows) - plan.replays
        line = f"Batch of {counted(len(self.rows), 'row')}: {to_send} to send"
        if plan.replays:
            line += f", {plan.replays} replayed from the history"
        if to_send:
            if plan.estimate is not None:
                approx = "~" if plan.unknown_costs == 0 else "at least ~"
                line += f", estimated {approx}${plan.estimate:.3f}"
            else:
                line += ", cost unknown"
        line += " (emulator)" if session.emulated else ""
        if progress or display:
            print(f"{line}. Manifest: {display_path(manifest)}")
        if progress:
            precounted = sum(1 for row in self.rows if row.planned_replay)
            self.bar = progress_bar(len(self.rows), initial=precounted, desc="images", unit="row", smoothing=0.1)
        if display and _redraws_in_place():
            from IPython.display import HTML
            from IPython.display import display as show

            self.sheet = show(HTML(_live_sheet([], "waiting for the first image")), display_id=True)

    def finished(self, row: BatchRow) -> None:
        with self.lock:
            self.counts[row.status if row.status in self.counts else "failed"] += 1
            if row.cost is not None and not row.planned_replay:
                self.spent = (self.spent or 0.0) + row.cost
            if self.bar is not None:
                shown = {"done": self.counts["done"], "failed": self.counts["failed"],
                         "replayed": self.counts["replayed"]}
                if self.spent is not None:
                    shown["spent"] = f"${self.spent:.3f}"
                self.bar.set_postfix(shown, refresh=False)
                self.bar.update(0 if row.planned_replay else 1)  # a planned replay is in the bar's start
            self.dirty = True

    def tick(self, force: bool = False) -> None:
        if self.sheet is None or not self.dirty:
            return
        now = time.monotonic()
        if force or now - self.drawn >= SHEET_INTERVAL:
            from IPython.display import HTML

            finished = [row for row in self.rows if row.status != "pending"]
            summary = BatchResult(self.rows, stopped=self.stopped).summary()
            self.sheet.update(HTML(_live_sheet(finished, summary)))
            self.drawn, self.dirty = now, False

    def close(self) -> None:
        self.dirty = True
        self.tick(force=True)
        if self.bar is not None:
            self.bar.close()


def _live_sheet(rows: list[BatchRow], summary: str) -> str:
    """The contact sheet that grows while the batch runs: its newest rows."""
    return f'<div class="aigate-batch-live">{contact_sheet(rows, summary, newest=True)}</div>'


def _for_the_rest_of_the_cell(result: BatchResult) -> None:
    """Mark ``result`` as shown (its sheet grew in this cell's output) until the cell ends:
    IPython's ``post_run_cell`` comes after the cell's value is displayed. An execution count
    would not do: a front end may run cells without counting them (nbval does)."""
    from IPython import get_ipython

    shell = get_ipython()
    if shell is None:
        return
    result._in_its_cell = True

    def ended(*_: Any) -> None:
        result._in_its_cell = False
        shell.events.unregister("post_run_cell", ended)

    shell.events.register("post_run_cell", ended)


def _redraws_in_place() -> bool:
    """Whether the front end can redraw an output in place (a Jupyter kernel): a terminal
    would print a new sheet at every redraw, so it gets none (as ``waiting.StatusLine``)."""
    try:
        from IPython import get_ipython
        from IPython.core.displaypub import DisplayPublisher
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and type(shell.display_pub) is not DisplayPublisher


__all__ = ["BatchResult", "BatchRow", "batch", "plan_batch", "read_manifest", "run_batch"]
