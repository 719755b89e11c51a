"""Run every benchmark against the emulator on loopback and write the report.

``python -m benchmarks`` (from the repository root) writes ``benchmarks/results.json`` and
``benchmarks/results.md`` and prints the table; ``--quick`` is a small smoke run.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from . import batching, figures, report
from .batching import BatchSettings
from .contenders import installed_peers
from .measure import Row, guard_loopback
from .payloads import TIERS, make_payloads, make_photo
from .profile import profile
from .serve import served

GROUPS = ("request", "display", "memory", "concurrency", "upload", "report", "batch")
#: The figures measured against the emulator serving fixed replies, with no latency.
SERVED = ("request", "display", "memory", "upload", "report")
#: The batch figures one at a time (``--only batch`` runs all three).
BATCH_PARTS = {"batch-throughput": batching.throughput, "batch-memory": batching.memory,
               "batch-resume": batching.resume}


@dataclass(frozen=True)
class Settings:
    tiers: tuple[str, ...]
    repeats: int
    memory_results: int
    variants: int
    latency: float
    concurrency_cases: tuple[str, ...]  # payload names
    tmpfs_control: bool  # repeat the last concurrency case with the history in memory
    photo: tuple[int, int]
    probe_mb: int  # the size of each new file of the machine's page-cache probe
    report_entries: int  # the history exported as an HTML report
    batch: BatchSettings

    @property
    def concurrency_repeats(self) -> int:
        """Fewer: each run of a concurrency case waits out the latency twice."""
        return min(self.repeats, 5)

    @classmethod
    def full(cls, repeats: int) -> Settings:
        return cls(("1K", "2K", "4K"), repeats, 50, 8, 1.0, ("1K PNG", "4K JPEG", "4K PNG"), True, (6000, 4000), 32,
                   figures.REPORT_ENTRIES, BatchSettings.full())

    @classmethod
    def quick(cls, repeats: int) -> Settings:
        return cls(("1K",), repeats, 3, 3, 0.1, ("1K PNG",), False, (1200, 800), 1, 30, BatchSettings.quick())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run: 1K only, few repeats, small counts")
    parser.add_argument("--repeats", type=int, help="runs of each timing, the fastest kept (default 7; quick 2)")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent,
                        help="folder for results.json and results.md (default: benchmarks/)")
    parser.add_argument("--no-peers", action="store_true", help="leave out the openai and google-genai SDKs")
    parser.add_argument("--only", choices=GROUPS + tuple(BATCH_PARTS), action="append",
                        help="run only these figures (repeatable)")
    parser.add_argument("--profile", action="store_true",
                        help="also write pyinstrument reports of Client.generate and the display to <out>/profiles/")
    args = parser.parse_args(argv)
    repeats = args.repeats or (2 if args.quick else 7)
    settings = Settings.quick(repeats) if args.quick else Settings.full(repeats)
    groups = args.only or GROUPS
    guard_loopback()
    peers = {} if args.no_peers else installed_peers()
    command = "python -m benchmarks" + (" " + " ".join(argv if argv is not None else sys.argv[1:])).rstrip()

    started = time.perf_counter()
    rows: list[Row] = []
    with contextlib.ExitStack() as stack:
        folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="aigate-bench-")))
        # The batch figures start emulators of their own and send none of these payloads.
        serving = bool(set(groups) & set(SERVED)) or args.profile
        payloads = make_payloads(list(settings.tiers), folder) if serving or "concurrency" in groups else []
        photos = [make_photo(settings.photo, format, folder) for format in ("JPEG", "PNG")] if serving else []
        largest = [p for p in payloads if p.tier == settings.tiers[-1]]
        by_name = {p.name: p for p in payloads}
        manifest = {p.prompt: p.path for p in payloads}
        with served(manifest, folder) if serving else contextlib.nullcontext() as url:
            if "request" in groups:
                rows += figures.request_layer(url, payloads, settings.repeats, peers)
            if "display" in groups:
                rows += figures.display(url, largest, settings.repeats, folder / "display")
            if "memory" in groups:
                pngs_first = sorted(largest, key=lambda p: p.format != "PNG")
                rows += figures.memory(url, pngs_first, settings.memory_results)
            if "upload" in groups:
                rows += figures.upload(url, photos, payloads[0], settings.repeats)
            if "report" in groups:
                rows += figures.report(url, payloads, settings.report_entries, folder / "report")
            if args.profile:
                png = next(p for p in largest if p.format == "PNG")
                for path in profile(url, png, args.out / "profiles"):
                    print(f"profile: {path}")
        if "concurrency" in groups:
            cases = [(by_name[name], folder / "concurrency", "on disk") for name in settings.concurrency_cases]
            if settings.tmpfs_control and Path("/dev/shm").is_dir():
                # The same as the last case with the history in memory: what the disk's fsync costs.
                memory_folder = stack.enter_context(tempfile.TemporaryDirectory(dir="/dev/shm"))
                cases.append((cases[-1][0], Path(memory_folder), "in memory (tmpfs)"))
            rows.append(figures.page_cache(folder / "page-cache", settings.probe_mb, settings.variants))
            with served(manifest, folder, latency=settings.latency) as slow:
                rows += figures.concurrency(slow, cases, settings.variants, settings.latency,
                                            settings.concurrency_repeats)
    for part, measure in BATCH_PARTS.items():
        if "batch" in groups or part in groups:
            rows += measure(settings.batch)

    notes = _notes(peers, args.no_peers, settings, time.perf_counter() - started)
    env = report.environment({"command": command, "repeats": settings.repeats,
                              "concurrency_repeats": settings.concurrency_repeats, "tiers": list(settings.tiers),
                              "pixels": {t: TIERS[t] for t in settings.tiers}, "groups": list(groups)})
    json_path, md_path, text = report.write(rows, env, notes, args.out)
    print(text)
    print(f"written: {json_path} and {md_path}")
    return 0


def _notes(peers: dict[str, str], skipped: bool, settings: Settings, seconds: float) -> list[str]:
    notes = [
        "Floor: requests with stream=True and one raw.read(), one json.loads, one pybase64.b64decode(validate=True) "
        "(after slicing the data URL on the chat route).",
        "aigate_nb: Client.generate(...).data. openai: chat.completions.create with modalities and image_config in "
        "extra_body, message.images[0]['image_url']['url'] decoded with base64.b64decode. google-genai: "
        "models.generate_content through HttpOptions(base_url=<emulator>, api_version='v1beta'), which posts to "
        "/v1beta/models/<bare id>:generateContent; the part's inline_data.data (decoded by the SDK).",
        "Display: ImageResult._repr_mimebundle_() on a fresh copy of a result (caption with sha256, preview under "
        "the 250 KB budget) against Image.open(...).load() of the same bytes.",
        f"Memory: a fresh process, {settings.memory_results} results through Session.run into a History in a "
        "temporary folder; RSS after a gc.collect(), before and after.",
        "Edit upload: preparing is what Client.generate does before sending (to_image_input, normalise_options, "
        "fit_inline_budget, build_chat_body, json.dumps); the bytes are the Content-Length the emulator received.",
        "Concurrency: Session.submit(request, count=n) against Session.run(request), each result written to the "
        "history (the index line synced, the image files not). With 4K PNGs each variant also receives 43 MB, "
        "decodes, hashes and writes 32 MB, on the same cores as the emulator; the in-memory (tmpfs) row takes the "
        "disk out. The concurrency floor does the same with no package code (one raw.read(), the base64 sliced "
        "from the body without parsing any JSON, one pybase64 decode, sha256, one write to a new file, on n "
        "threads); its ratio is what the machine allows any client, and 'concurrency over floor' is aigate_nb's "
        "-n time over the floor's.",
        "Fresh memory: on a virtual machine that hands freed memory back to its host (virtio-balloon free page "
        "reporting), the first touch of each page costs the hypervisor's time: touching 6 GB once took 22 s on "
        "such a machine, and writing 8 new 32 MB files on 8 threads took 430 ms there against 38 ms once the "
        "memory was warm. Eight 4K PNGs need 256 MB of new page cache, so there the floor itself misses the "
        "1.3x goal.",
        "Replies under 4 MB (1K and 2K JPEG, 1K PNG) take a few milliseconds each, so they are timed five times "
        "as often: one stray pause of the machine is then less likely to be the best of too few runs.",
        f"Report: History.export_html of a history of {settings.report_entries} entries (the emulator's own 1K "
        "PNGs, one in five a photo-like 1K PNG or JPEG, a third of them edits): as made by this version (each "
        "entry's previews made in the background as it was appended, and waited for), then as written before "
        "(thumbs/ removed: the export makes every preview), then with the previews kept; the floor, measured just "
        "before the second, reads and decodes every original once with no package code; in "
        "headless Chromium, the time from page.goto(file://...) to the first frame after load, and the slowest "
        "keystroke while 'red door' is typed, each until the next frame.",
        "Batches: aigate_nb.batch(rows, image_size='512', concurrency=4, progress=False, display=False), each row "
        "its own prompt, against an emulator in the benchmark process that draws each picture. Throughput: rows done "
        "over the batch's wall time, against an emulator that lets the limit through in any sliding window and "
        "refuses the rest with Google-style 429s (a RetryInfo saying how long until the window frees); the 429s "
        "after the first window are counted in the emulator's log among the requests it received a window or more "
        "after the first. Batch memory: a fresh process runs one row of another batch first (threads, connection, "
        "codecs), then the batch, and reads its RSS after a gc.collect() before and after, the BatchResult still "
        "held. Resume: the batch runs in a process of its own, is killed with SIGKILL once its manifest holds half "
        "the rows, and runs again in a new process; a finished row is one the manifest recorded as done, a row "
        "requested again one whose prompt the emulator received after the kill, a lost row one that is not done "
        "or replayed at the end, in the second run's result and the manifest, with its file.",
        f"Total time {seconds:.0f} s.",
    ]
    if skipped:
        notes.append("The SDKs were left out (--no-peers).")
    elif len(peers) < 2:
        missing = {"openai", "google-genai"} - set(peers)
        notes.append(f"Not installed, so not compared: {', '.join(sorted(missing))} (pip install -e '.[bench]').")
    return notes
