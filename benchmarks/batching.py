"""The batch figures: throughput under a gateway's rate limit, memory over a long batch, and a
batch killed halfway and run again. Each runs against an emulator in this process, whose request
log says what was sent, when, and how it was answered.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from aigate_nb import Client
from aigate_nb.emulator import Emulator
from aigate_nb.emulator.limits import parse_rate_limit
from aigate_nb.emulator.records import RecordedRequest
from aigate_nb.records.store import History
from aigate_nb.runs.batches import BatchResult, batch, read_manifest
from aigate_nb.session.session import Session

from .batchrun import CONCURRENCY, SIZE, batch_prompts
from .contenders import MODEL
from .measure import Row
from .serve import KEY

#: Images a minute a batch must make under a rate limit, as a share of that limit.
THROUGHPUT_SHARE_GOAL = 0.9
#: 429s among the requests after the limit's first window, in percent.
LATE_429_GOAL_PERCENT = 5.0
#: Resident memory a batch of 1000 rows of 512 px pictures may gain, in MB.
BATCH_MEMORY_GOAL_MB = 100
#: The goal of every count of rows that must not happen: failed, requested twice, lost.
NONE = 0
REPO = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class BatchSettings:
    rows: int  # rows of the throughput batch
    rate_limit: str  # the emulator's sliding window
    latency: float  # seconds before each reply
    capped: bool  # also run the batch with rate= set to the limit
    memory_rows: int
    resume_rows: int
    resume_latency: float

    @property
    def judged(self) -> bool:
        """The throughput and memory goals are set for the full sizes."""
        return self.rows >= 200 and self.memory_rows >= 1000

    @classmethod
    def full(cls) -> BatchSettings:
        return cls(200, "120/min", 0.3, True, 1000, 80, 0.3)

    @classmethod
    def quick(cls) -> BatchSettings:
        return cls(30, "15/s", 0.05, False, 20, 16, 0.1)


def throughput(settings: BatchSettings) -> list[Row]:
    """``settings.rows`` rows through ``aigate_nb.batch`` (concurrency 4) against an emulator that
    lets ``rate_limit`` through in any window and answers the rest with Google-style 429s: first
    with no rate given (the Pacer learns the pace from the 429s), then, if ``capped``, with
    ``rate=`` the limit. Images a minute over the whole batch, failed rows, and the share of 429s
    among the requests after the limit's first window."""
    count, period, _ = parse_rate_limit(settings.rate_limit)
    per_minute = count * 60 / period
    rows = []
    cases = [(None, "no rate given")] + ([(settings.rate_limit, f"rate='{settings.rate_limit}'")]
                                         if settings.capped else [])
    for rate, how in cases:
        with tempfile.TemporaryDirectory(prefix="aigate-bench-") as folder, Emulator(
            api_key=KEY, latency=settings.latency, rate_limit=settings.rate_limit, style="google",
        ) as emulator:
            session = Session(Client(api_key=KEY, base_url=emulator.url, model=MODEL), History("throughput", folder))
            prompts = batch_prompts(f"throughput {how}", settings.rows)
            started = time.perf_counter()
            made = batch(prompts, session=session, image_size=SIZE, concurrency=CONCURRENCY, rate=rate,
                         progress=False, display=False)
            seconds = time.perf_counter() - started
            session.close()
            # The previews are made on a background thread: done before the folder is removed.
            session.history.wait_for_thumbnails(timeout=120)
            records = [r for r in emulator.requests if r.prompt is not None]
        rows += _throughput_rows(made, records, seconds, settings, how, per_minute, period)
    return rows


def _throughput_rows(made: BatchResult, records: list[RecordedRequest], seconds: float, settings: BatchSettings,
                     how: str, per_minute: float, period: float) -> list[Row]:
    first = min(r.started for r in records)
    late = [r for r in records if r.started - first >= period]
    refused = [r for r in records if r.status == 429]
    late_refused = [r for r in late if r.status == 429]
    share = 100 * len(late_refused) / len(late) if late else 0.0
    made_per_minute = len(made.done) * 60 / seconds
    in_first = sum(1 for r in records if r.status == 200 and r.started - first < period)
    window = "minute" if period == 60 else f"{period:g} s"
    case = (f"{settings.rows} rows, concurrency {CONCURRENCY}, {how}; emulator at {settings.rate_limit} "
            f"(sliding window, Google-style 429s), {settings.latency:g} s latency")
    measures = {"seconds": round(seconds, 2), "rows": settings.rows, "done": len(made.done),
                "failed": len(made.failed), "requests": len(records), "429s": len(refused),
                "requests after the first window": len(late), "429s after the first window": len(late_refused),
                "made in the first window": in_first, "limit per minute": per_minute}
    judged = settings.judged
    return [
        Row("batch throughput", f"{case}: images a minute", made_per_minute, "/min",
            THROUGHPUT_SHARE_GOAL * per_minute if judged else None,
            f"{len(made.done)} rows in {seconds:.1f} s, {made_per_minute / per_minute:.2f}x the limit; "
            f"{in_first} made in the first {window}", measures, at_least=True),
        Row("batch throughput", f"{case}: failed rows", len(made.failed), "rows", NONE,
            f"{len(made.done)} of {settings.rows} rows done" + "".join(
                f"; row {row.number}: {row.error}" for row in made.failed[:1]), measures),
        Row("batch throughput", f"{case}: 429s after the first {window}", share, "%",
            LATE_429_GOAL_PERCENT if judged else None,
            f"{len(late_refused)} of the {len(late)} requests after the first {window} answered 429; "
            f"{len(refused)} of {len(records)} in all", measures),
    ]


def _child(url: str, folder: Path, prefix: str, count: int, *flags: str) -> list[str]:
    return [sys.executable, "-m", "benchmarks.batchrun", url, str(folder), prefix, str(count), *flags]


def _finished_run(command: list[str]) -> dict:
    done = subprocess.run(command, capture_output=True, text=True, cwd=REPO, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the batch process failed:\n{done.stderr}")
    return json.loads(done.stdout.splitlines()[-1])


def memory(settings: BatchSettings) -> list[Row]:
    """Resident memory a fresh process gains while ``aigate_nb.batch`` makes ``memory_rows`` 512 px
    pictures (the emulator's own, drawn in this process) and keeps its ``BatchResult``."""
    with tempfile.TemporaryDirectory(prefix="aigate-bench-") as folder, Emulator(api_key=KEY) as emulator:
        run = _finished_run(_child(emulator.url, Path(folder), "memory", settings.memory_rows, "--memory"))
        sizes = [os.path.getsize(f) for f in run["files"] if f]
    if run["growth_mb"] is None:
        raise RuntimeError("resident memory cannot be read here (no /proc/self/status, no psutil); use --only")
    statuses = Counter(run["statuses"])
    average = sum(sizes) / len(sizes) / 1000 if sizes else 0.0
    return [Row(
        "batch memory", f"{settings.memory_rows} rows of 512x512 pictures (the emulator's, {average:.0f} KB PNGs), "
        f"concurrency {CONCURRENCY}, the BatchResult kept", run["growth_mb"], "MB",
        BATCH_MEMORY_GOAL_MB if settings.judged else None,
        f"RSS {run['before_mb']:.0f} -> {run['after_mb']:.0f} MB, {run['seconds']:.1f} s; "
        + ", ".join(f"{n} {status}" for status, n in statuses.items()),
        {**{k: run[k] for k in ("before_mb", "after_mb", "growth_mb", "seconds")}, "statuses": dict(statuses)},
    )]


def resume(settings: BatchSettings) -> list[Row]:
    """A batch in a process of its own, killed (SIGKILL) once its manifest holds half its rows, then
    the same batch run again in a new process. From the emulator's log and the manifest: rows the
    first run finished that were requested again, and rows that did not end with their picture."""
    count = settings.resume_rows
    with tempfile.TemporaryDirectory(prefix="aigate-bench-") as folder, Emulator(
        api_key=KEY, latency=settings.resume_latency,
    ) as emulator:
        manifest = Path(folder) / "resume.jsonl"
        command = _child(emulator.url, Path(folder), "resume", count, "--manifest", str(manifest))
        first = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=REPO)
        try:
            _wait_for_lines(manifest, count // 2, first)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait()
        _wait_until_answered(emulator)  # what the killed process had sent is all in the log
        sent_before = len(emulator.requests)
        lines = read_manifest(manifest)  # what the first run recorded before it died
        second = _finished_run(command)
        records = emulator.requests
        final = {line["row"]: line for line in read_manifest(manifest)}
        kept = [bool(file) and Path(file).is_file() for file in second["files"]]
    finished_first = {line["prompt"] for line in lines if line["status"] == "done"}
    asked_first = {r.prompt for r in records[:sent_before] if r.prompt is not None}
    asked_again = [r.prompt for r in records[sent_before:] if r.prompt is not None]
    twice = [prompt for prompt in asked_again if prompt in finished_first]
    resent = {prompt for prompt in asked_again if prompt in asked_first} - finished_first
    lost = [k for k in range(count) if not kept[k] or second["statuses"][k] not in ("done", "replayed")
            or final.get(k, {}).get("status") not in ("done", "replayed")]
    case = (f"{count} rows, concurrency {CONCURRENCY}, {settings.resume_latency:g} s latency, killed (SIGKILL) "
            f"with {len(lines)} rows in the manifest, then run again")
    measures = {"rows": count, "in the manifest at the kill": len(lines), "finished in the first run":
                len(finished_first), "requests of the first run": sent_before,
                "requests of the second run": len(asked_again), "in flight at the kill, sent again": len(resent),
                "second run": dict(Counter(second["statuses"])), "second run seconds": round(second["seconds"], 2)}
    return [
        Row("batch resume", f"{case}: finished rows requested again", len(twice), "rows", NONE,
            f"{len(finished_first)} finished in the first run, none of them among the {len(asked_again)} requests "
            f"of the second" if not twice else f"{len(twice)} of {len(finished_first)} finished rows sent again",
            measures),
        Row("batch resume", f"{case}: rows lost", len(lost), "rows", NONE,
            f"{count - len(lost)} of {count} rows done at the end, with their files (manifest and history); "
            f"{len(resent)} in flight at the kill were sent again", measures),
    ]


def _wait_for_lines(manifest: Path, lines: int, process: subprocess.Popen, timeout: float = 120) -> None:
    """Poll until ``manifest`` holds ``lines`` lines (the batch's process still running)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the batch ended before it could be killed:\n{process.stderr.read().decode()}")
        if manifest.exists() and manifest.read_bytes().count(b"\n") >= lines:
            return
        time.sleep(0.005)
    raise RuntimeError(f"the batch's manifest did not reach {lines} lines within {timeout:g} s")


def _wait_until_answered(emulator: Emulator, timeout: float = 30) -> None:
    """Poll until the emulator has settled every request it received."""
    deadline = time.monotonic() + timeout
    while any(r.status is None for r in emulator.requests) and time.monotonic() < deadline:
        time.sleep(0.01)
