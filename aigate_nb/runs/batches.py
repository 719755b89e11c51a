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
import os
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..core.costs import REPLAY, TABLE, PlanEstimate, format_cost
from ..core.errors import AigateError, BudgetError, GatewayConnectionError, InputError
from ..core.images import b64encode, make_thumbnail
from ..core.results import ImageResult
from ..core.text import counted, display_path, one_line
from ..gateway.pacing import Pacer, parse_rate
from ..session.budget import Hold
from ..session.session import Outcome, Request, Session, current_session, outcome
from . import runner
from .manifest import Manifest, read_manifest
from .runner import MADE, Status
from .sheet import Progress, contact_sheet
from .templates import fill_template, given, missing, plain, read_rows, reference, template_fields, text_or_none

#: Columns of a row that set a request's option instead of filling the template.
OPTION_COLUMNS = ("model", "aspect_ratio", "image_size", "route", "image", "images", "edit")
#: The options ``batch()`` takes for every row (a row's own column wins).
ROW_OPTIONS = ("model", "aspect_ratio", "image_size", "route", "images", "edit")
#: Requests in flight at once, unless ``concurrency`` says otherwise.
DEFAULT_CONCURRENCY = 4
#: How many times one row goes back in the queue after a rate limit outlasted its retries.
MAX_REQUEUES = 3
#: Rows in a row that fail to reach the gateway (each after its retries) before the batch stops:
#: the rest would only fail the same way, one after another.
MAX_UNREACHABLE = 3
#: Seconds between two looks at rows another run of the same batch has in hand.
CLAIM_POLL = 0.2
#: The long edge of a contact-sheet thumbnail, in pixels.
SHEET_EDGE = 160


@dataclass
class BatchRow:
    """One row of a batch and how it ended.

    ``status`` is a ``runner.Status``: done (sent now), replayed (answered from the history),
    failed (``error`` says why), skipped (not sent: the batch stopped first) or pending
    (not finished yet); its value is what the manifest and ``to_pandas()`` hold.
    """

    number: int
    prompt: str
    inputs: dict[str, Any]
    request: Request | None = None
    status: Status = Status.PENDING
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
            "label": plain(self.label),
            "prompt": self.prompt,
            "inputs": {key: plain(value) for key, value in self.inputs.items()},
            "status": self.status.value,
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

    def __iter__(self) -> Iterator[BatchRow]:
        return iter(self.rows)

    def __getitem__(self, k: int) -> BatchRow:
        return self.rows[k]

    def _with(self, *statuses: Status) -> list[BatchRow]:
        return [row for row in self.rows if row.status in statuses]

    @property
    def done(self) -> list[BatchRow]:
        """The rows that have their image (sent now or replayed)."""
        return self._with(*MADE)

    @property
    def failed(self) -> list[BatchRow]:
        return self._with(Status.FAILED)

    @property
    def skipped(self) -> list[BatchRow]:
        return self._with(Status.SKIPPED, Status.PENDING)

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
        counts = {status.value: len(self._with(status)) for status in (*MADE, Status.FAILED)}
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
            line += f" | {format_cost(sum(row.cost or 0.0 for row in known), TABLE if estimated else None)}"
        if self.stopped:
            line += f" | stopped: {self.stopped}"
        return line

    def to_pandas(self) -> Any:
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
            record.update(status=row.status.value, entry=row.entry_id, file=row.file, cost=row.cost, error=row.error)
            records.append(record)
        frame = pandas.DataFrame.from_records(records)
        if not len(frame):
            return frame
        if all(row.label is not None for row in self.rows):  # a DataFrame's rows: its own index, to join on
            return frame.set_index(pandas.Index([row.label for row in self.rows]))
        return frame.set_index("row")

    @classmethod
    def summary_of(cls, rows: list[BatchRow], stopped: str | None) -> str:
        """The summary line of ``rows`` so far (the growing sheet's caption)."""
        return cls(rows, stopped=stopped).summary()

    def __repr__(self) -> str:
        return f"<BatchResult {self.summary()}>"

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        lines = [self.summary()]
        for row in self.failed[:10]:
            lines.append(f"  row {row.number}: {row.error}")
        printer.text("\n".join(lines))

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        """A contact sheet; just the summary line when the batch's own growing sheet is already
        on screen above it (the same cell), so the images are not shown twice."""
        if self._in_its_cell:
            return {"text/plain": self.summary()}
        return {"text/html": contact_sheet(self.rows, self.summary()), "text/plain": self.summary()}


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
    costs: PlanEstimate | None = None


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
        empty = [name for name in fields if name in values and missing(values[name])]
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
        settings = {**options, **{k: v for k, v in columns.items() if k in OPTION_COLUMNS and given(v)}}
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
        if given(settings.get("edit")):
            images.append(session.resolve_image(reference(settings["edit"]), namespace))
        for key in ("image", "images"):
            value = settings.get(key)
            if not given(value):
                continue
            items = value if isinstance(value, (list, tuple)) else [value]
            images += [session.resolve_image(reference(item), namespace) for item in items if given(item)]
        return Request(
            prompt=text,
            model=text_or_none(settings.get("model")),
            aspect_ratio=text_or_none(settings.get("aspect_ratio")),
            image_size=text_or_none(settings.get("image_size")),
            route=text_or_none(settings.get("route")),
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
        assert row.request is not None  # every planned row has its request
        try:
            prepared, replayed = runner.prepare(session, row.request)
        except AigateError as exc:
            raise InputError(f"Row {row.number}: {one_line(str(exc))}") from None
        digest.update(prepared.request_hash.encode("ascii"))
        if replayed:
            row.planned_replay = True
            replays += 1
        else:
            to_send.append(prepared)
    plan.key = digest.hexdigest()[:12]
    planned = runner.estimate_all(session, to_send, "this batch")
    if planned is not None:
        session.check_budget(planned)  # refused here, before the first request, if it would pass the budget
    plan.replays = replays
    plan.estimate = planned.cost if planned is not None else 0.0
    plan.unknown_costs = planned.unknown if planned is not None else 0
    plan.costs = planned


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
    concurrency = runner.check_concurrency(concurrency)
    if rate is not None:
        parse_rate(rate)  # a bad rate is refused before anything is sent
    path = manifest_path(session, plan, manifest)
    # The default manifest lies in the history folder: opened there as every file is, through no link.
    ledger = Manifest(path, plan.key, inside=session.history.folder if manifest is None else None)
    hold = session.reserve(plan.costs) if plan.costs is not None else None
    try:
        view = Progress(plan.rows, _headline(plan, session, path), BatchResult.summary_of, progress, display)
        result = _send_rows(plan, session, ledger, hold, view, concurrency, rate)
    finally:
        if hold is not None:
            session.settle(hold)  # the rows sent hold their own; those not sent cost nothing
    if view.sheet is not None:
        _for_the_rest_of_the_cell(result)
    if result.stopped:
        print(f"The batch stopped: {result.stopped}. {result.summary()}.")
    return result


def _headline(plan: BatchPlan, session: Session, manifest: Path) -> str:
    """The line a batch starts with: what it sends, what it replays, its estimate, its manifest."""
    to_send = len(plan.rows) - plan.replays
    line = f"Batch of {counted(len(plan.rows), 'row')}: {to_send} to send"
    if plan.replays:
        line += f", {plan.replays} replayed from the history"
    if to_send:
        if plan.estimate is not None:
            approx = "~" if plan.unknown_costs == 0 else "at least ~"
            line += f", estimated {approx}${plan.estimate:.3f}"
        else:
            line += ", cost unknown"
    line += " (emulator)" if session.emulated else ""
    return f"{line}. Manifest: {display_path(manifest)}"


def _send_rows(
    plan: BatchPlan, session: Session, ledger: Manifest, hold: Hold | None, view: Progress,
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
    pacer = client.pacer
    own_pacer = pacer is None or rate is not None
    if pacer is None or rate is not None:
        pacer = Pacer(concurrency, rate=rate)
        client.pacer = pacer  # single requests sent meanwhile keep to it too
    try:
        while queue or in_flight or waiting:
            limit = runner.window(pacer, concurrency)
            while queue and len(in_flight) < limit and stopped is None:
                row = queue.pop(0)
                if not row.planned_replay and not ledger.claim(row.number):
                    waiting.append(row)
                    continue
                assert row.request is not None  # every planned row has its request
                submitted = runner.submit(session, row.request, within=hold)
                if isinstance(submitted, Outcome):  # refused before it was sent
                    _finish(row, submitted, ledger, view)
                    if isinstance(submitted.error, BudgetError):
                        stopped = one_line(str(submitted.error)).rstrip(".")
                    continue
                in_flight[submitted] = row
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
                if runner.rate_limited(result.error) and row.requeued < MAX_REQUEUES:
                    # The gateway's limit outlasted the retries: the Pacer has slowed down meanwhile,
                    # so the row goes to the back of the queue (still claimed) instead of failing.
                    row.requeued += 1
                    queue.append(row)
                    continue
                _finish(row, result, ledger, view)
                unreachable = unreachable + 1 if isinstance(result.error, GatewayConnectionError) else 0
                if stopped is None and result.error is not None and runner.ends_run(result.error):
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
            future.add_done_callback(_finish_later(row, ledger))
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
    finished = [row for row in rows if row.status in (*MADE, Status.FAILED)]
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
    runner.check_concurrency(concurrency)
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


def _finish_later(row: BatchRow, ledger: Manifest) -> Callable[[concurrent.futures.Future], None]:
    """What writes ``row``'s outcome when its request, left in flight, finishes."""
    return lambda done: _finish(row, outcome(done), ledger, None)


def _finish(row: BatchRow, result: Outcome, ledger: Manifest, view: Progress | None) -> None:
    ended = runner.ended(result)
    row.status, row.result, row.error = ended.status, ended.result, ended.error
    ledger.finished(row.number, row.manifest_line())
    if view is not None:
        view.finished(row)




def _skip(queue: list[BatchRow]) -> None:
    for row in queue:
        row.status = Status.SKIPPED
    queue.clear()





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



__all__ = ["BatchResult", "BatchRow", "batch", "contact_sheet", "plan_batch", "read_manifest", "run_batch"]
