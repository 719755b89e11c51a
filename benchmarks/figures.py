"""Each figure of the report: what is measured, against what, and the goal it must meet."""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests
from PIL import Image

from aigate_nb import Client
from aigate_nb.core.images import DEFAULT_INLINE_BUDGET, ReplyImage, fit_inline_budget, to_image_input
from aigate_nb.core.models import normalise_options
from aigate_nb.core.results import ImageResult
from aigate_nb.gateway.wire import build_chat_body
from aigate_nb.records.report import ENTRY_BUDGET
from aigate_nb.records.store import History
from aigate_nb.session.session import Request, Session

from . import contenders
from .contenders import MODEL, RATIO
from .measure import Row, ms, sample_times
from .payloads import Payload
from .serve import KEY

OVERHEAD_GOAL = 1.25
PEER_GOAL = 0.6
DISPLAY_TIME_GOAL = 1.5
DISPLAY_BYTES_GOAL_KB = 250
MEMORY_GOAL_MB = 150
CONCURRENCY_GOAL = 1.3
#: Replies under this many bytes are timed SMALL_REPLY_FACTOR times as often.
SMALL_REPLY_BYTES = 4_000_000
SMALL_REPLY_FACTOR = 5
CONCURRENCY_FLOOR_GOAL = 1.1
#: The report of a 1000-entry history: written within 10 s, at most 300 KB an entry, and in the
#: browser open within 5 s and each keystroke of a search answered within 100 ms.
REPORT_ENTRIES = 1000
REPORT_EXPORT_GOAL_MS = 10_000
REPORT_ENTRY_GOAL_KB = 300
REPORT_OPEN_GOAL_MS = 5_000
REPORT_KEYSTROKE_GOAL_MS = 100
CHROMIUM = Path("/usr/bin/chromium")


def _check(name: str, got: bytes, payload: Payload) -> None:
    if got != payload.read():
        raise RuntimeError(f"{name} did not return the image of {payload.name} as sent")


def request_layer(url: str, payloads: list[Payload], repeats: int, peers: dict[str, str]) -> list[Row]:
    """Client overhead (over the floor, both routes) and aigate_nb against each installed SDK."""
    floor = contenders.Floor(url)
    runners = {
        ("chat", "floor"): floor.chat,
        ("chat", "aigate_nb"): contenders.aigate(url, "chat"),
        ("google", "floor"): floor.google,
        ("google", "aigate_nb"): contenders.aigate(url, "google"),
    }
    if "openai" in peers:
        runners[("chat", "openai")] = contenders.openai_sdk(url)
    if "google-genai" in peers:
        runners[("google", "google-genai")] = contenders.google_genai_sdk(url)
    overhead, versus = [], []
    for payload in payloads:
        for key, run in runners.items():
            _check(f"{key[1]} ({key[0]} route)", run(payload), payload)
        # A reply of a few milliseconds is timed more often: one stray pause is then not the best of so few.
        runs = repeats * SMALL_REPLY_FACTOR if payload.path.stat().st_size < SMALL_REPLY_BYTES else repeats
        samples = sample_times({key: (lambda run=run: run(payload)) for key, run in runners.items()}, runs)
        best = {key: min(times) for key, times in samples.items()}
        measures = {f"{who} {route} ms": round(best[(route, who)] * 1000, 2) for route, who in best}
        measures["runs"] = runs
        reply = f"{payload.name} ({payload.path.stat().st_size / 1e6:.1f} MB image)"
        for route in ("chat", "google"):
            ours, least = best[(route, "aigate_nb")], best[(route, "floor")]
            overhead.append(Row(
                "client overhead", f"{reply}, {route} route", ours / least, "x", OVERHEAD_GOAL,
                f"aigate_nb {ms(ours)}, floor {ms(least)}", measures,
            ))
        for route, peer in (("chat", "openai"), ("google", "google-genai")):
            if (route, peer) in best:
                ours, theirs = best[(route, "aigate_nb")], best[(route, peer)]
                versus.append(Row(
                    f"vs {peer}", f"{reply}, {route} route", ours / theirs, "x", PEER_GOAL,
                    f"aigate_nb {ms(ours)}, {peer} {ms(theirs)}", measures,
                ))
    return overhead + versus


def _stored_output_bytes(data: dict, metadata: dict) -> int:
    """What one displayed output adds to an .ipynb file, as nbformat writes it."""
    try:
        import nbformat
    except ImportError:
        output = {"output_type": "execute_result", "execution_count": 1, "data": data, "metadata": metadata}
        return len(json.dumps(output, indent=1, ensure_ascii=False).encode("utf-8"))
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("%%gemini_image\nprompt")])
    empty = len(nbformat.writes(notebook).encode("utf-8"))
    output = nbformat.v4.new_output("execute_result", data=data, metadata=metadata, execution_count=1)
    notebook.cells[0].outputs.append(output)
    return len(nbformat.writes(notebook).encode("utf-8")) - empty


def display(url: str, payloads: list[Payload], repeats: int, folder: Path) -> list[Row]:
    """Building the inline bundle of a result, against one full decode of its image; and the
    bytes that bundle adds to the notebook."""
    client = Client(api_key=KEY, base_url=url, model=MODEL)
    history = History("display", folder)
    rows = []
    for payload in payloads:
        result = client.generate(payload.prompt, aspect_ratio=RATIO, image_size=payload.tier)
        history.append(result)
        data = result.data

        def decode() -> None:
            Image.open(io.BytesIO(data)).load()

        def bundle() -> None:  # a fresh copy each time: a result keeps what it has computed
            dataclasses.replace(result, _pixels=None, _sizes=None, _sha256s=None, _previews=None)._repr_mimebundle_()

        best = {name: min(times) for name, times in sample_times({"decode": decode, "bundle": bundle}, repeats).items()}
        shown, metadata = result._repr_mimebundle_()
        stored = _stored_output_bytes(shown, metadata)
        preview = next(mime for mime in shown if mime.startswith("image/"))
        judged = payload.tier == "4K"  # the goals are set for 4K results
        rows.append(Row(
            "display time", f"{payload.name} ({payload.size[0]}x{payload.size[1]})", best["bundle"] / best["decode"],
            "x", DISPLAY_TIME_GOAL if judged else None,
            f"bundle {ms(best['bundle'])}, full decode {ms(best['decode'])}",
            {"bundle ms": round(best["bundle"] * 1000, 2), "decode ms": round(best["decode"] * 1000, 2)},
        ))
        rows.append(Row(
            "display size", f"{payload.name}", stored / 1000, "KB", DISPLAY_BYTES_GOAL_KB if judged else None,
            f"{preview} preview and caption, as nbformat stores them", {"bytes": stored},
        ))
    return rows


def _memory_run(url: str, payload: Payload, count: int, *flags: str) -> dict:
    command = [sys.executable, "-m", "benchmarks.memory", url, payload.prompt, payload.tier, str(count), *flags]
    done = subprocess.run(command, capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1], check=False)
    if done.returncode != 0:
        raise RuntimeError(f"the memory run failed:\n{done.stderr}")
    run = json.loads(done.stdout.splitlines()[-1])
    if run["growth_mb"] is None:
        raise RuntimeError("resident memory cannot be read here (no /proc/self/status, no psutil); use --only")
    return run


def memory(url: str, payloads: list[Payload], count: int) -> list[Row]:
    """Resident memory gained while ``count`` results enter a fresh history, each displayed."""
    rows = []
    for payload in payloads:
        run = _memory_run(url, payload, count, "--display")
        judged = count >= 50 and payload.tier == "4K"  # the goal is set for 50 4K results
        rows.append(Row(
            "memory", f"{count} x {payload.name} results, each displayed", run["growth_mb"], "MB",
            MEMORY_GOAL_MB if judged else None,
            f"RSS {run['before_mb']:.0f} -> {run['after_mb']:.0f} MB, {run['seconds']:.1f} s", run,
        ))
    payload = payloads[0]
    run = _memory_run(url, payload, count, "--keep")
    rows.append(Row(
        "memory", f"{count} x {payload.name} results kept alive (as IPython's Out keeps them)", run["growth_mb"], "MB",
        None,
        f"RSS {run['before_mb']:.0f} -> {run['after_mb']:.0f} MB: a kept result reads its bytes from its file", run,
    ))
    return rows


def concurrency(url: str, cases: list[tuple[Payload, Path, str]], variants: int, latency: float,
                repeats: int) -> list[Row]:
    """``-n variants`` (``Session.submit(request, count=variants)``) against one request, with
    latency; each case names its payload, its history's folder and where that folder is.

    The keeping floor does the same with no package code (fetch, decode, hash, write a file,
    on as many threads), in the same folder: its own ratio is what this machine allows any
    client, and aigate_nb's ``-n`` time over the floor's is what the package adds to it.
    """
    rows = []
    judged = variants == 8 and latency >= 1.0  # the goal is set for -n 8 with 1 s of latency
    for payload, root, where in cases:
        session = Session(Client(api_key=KEY, base_url=url, model=MODEL), History("concurrency", root))
        floor = contenders.KeepingFloor(url, root / "floor")
        request = Request(payload.prompt, model=MODEL, aspect_ratio=RATIO, image_size=payload.tier)

        def many() -> None:
            for future in session.submit(request, count=variants):
                future.result()

        try:
            samples = sample_times({
                "one": lambda: session.run(request),
                "many": many,
                "floor one": lambda: floor.one(payload),
                "floor many": lambda: floor.many(payload, variants),
            }, repeats)
        finally:
            session.close()
            floor.close()
            session.history.wait_for_thumbnails(timeout=120)  # before its folder is removed
        best = {name: min(times) for name, times in samples.items()}
        case = f"-n {variants}, {payload.name}, {latency:g} s latency, history {where}"
        measures = {f"{name} s": round(seconds, 4) for name, seconds in best.items()}
        rows.append(Row(
            "concurrency", case, best["many"] / best["one"], "x", CONCURRENCY_GOAL if judged else None,
            f"{variants} variants {best['many']:.3f} s, one request {best['one']:.3f} s",
            measures,
        ))
        rows.append(Row(
            "concurrency floor", case, best["floor many"] / best["floor one"], "x", None,
            f"no package code: {variants} fetches, decodes, hashes and file writes on {variants} threads "
            f"{best['floor many']:.3f} s, one {best['floor one']:.3f} s",
            measures,
        ))
        rows.append(Row(
            "concurrency over floor", case, best["many"] / best["floor many"], "x",
            CONCURRENCY_FLOOR_GOAL if judged else None,
            f"aigate_nb {best['many']:.3f} s, floor {best['floor many']:.3f} s, for {variants} variants",
            measures,
        ))
    return rows


def page_cache(folder: Path, size_mb: int = 32, files: int = 8, repeats: int = 3) -> Row:
    """The machine alone: ``files`` new files of ``size_mb`` written at once on as many
    threads, against one. New files take new page cache, and on a virtual machine that hands
    freed memory back to its host each new page costs the hypervisor's time."""
    folder.mkdir(parents=True, exist_ok=True)
    data = os.urandom(size_mb << 20)
    numbers = itertools.count()

    def write() -> None:
        with open(folder / f"{next(numbers)}.bin", "wb") as file:
            file.write(data)

    def many() -> None:
        threads = [threading.Thread(target=write) for _ in range(files)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    try:
        best = {name: min(times) for name, times in sample_times({"one": write, "many": many}, repeats).items()}
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    balloon = Path("/sys/bus/virtio/drivers/virtio_balloon").is_dir()
    rate = files * size_mb / best["many"]
    return Row(
        "machine", f"{files} new {size_mb} MB files written at once on {files} threads", best["many"] * 1000, "ms",
        None,
        f"one file {ms(best['one'])}; new page cache at {rate:,.0f} MB/s; "
        + ("virtio-balloon present" if balloon else "no virtio-balloon"),
        {"many ms": round(best["many"] * 1000, 2), "one ms": round(best["one"] * 1000, 2),
         "MB per s": round(rate), "virtio_balloon": balloon},
    )


def _sent_bytes(url: str, prompt: str) -> int:
    """Content-Length of the last request the emulator received for ``prompt``."""
    reply = requests.get(url + "/emulator/requests", headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
    reply.raise_for_status()
    records = [r for r in reply.json()["requests"] if r["prompt"] == prompt]
    return int(records[-1]["headers"]["content-length"])


def upload(url: str, photos: list[Path], reply: Payload, repeats: int) -> list[Row]:
    """A camera photo as an edit source: preparing the request (the steps of
    ``Client.generate`` before sending) and the bytes actually sent, against the inline budget."""
    client = Client(api_key=KEY, base_url=url, model=MODEL)
    rows = []
    for photo in photos:

        def prepare() -> bytes:
            inputs = [to_image_input(photo)]
            ratio, size = normalise_options(MODEL, RATIO, reply.tier, len(inputs))
            inputs = fit_inline_budget(inputs, client.inline_budget)
            return json.dumps(build_chat_body(reply.prompt, MODEL, inputs, ratio, size)).encode("utf-8")

        prepared = len(prepare())
        best = min(sample_times({"prepare": prepare}, repeats)["prepare"])
        started = time.perf_counter()
        client.generate(reply.prompt, images=[photo], aspect_ratio=RATIO, image_size=reply.tier)
        round_trip = time.perf_counter() - started
        sent = _sent_bytes(url, reply.prompt)
        with Image.open(photo) as image:
            pixels = f"{image.width}x{image.height} {image.format}"
        rows.append(Row(
            "edit upload", f"{pixels} photo, {photo.stat().st_size / 1e6:.1f} MB", sent / 1e6, "MB",
            DEFAULT_INLINE_BUDGET / 1e6,
            f"prepared in {ms(best)}; whole edit request {ms(round_trip)} (the emulator decodes the photo too); "
            f"budget {DEFAULT_INLINE_BUDGET / 1e6:g} MB",
            {"prepare ms": round(best * 1000, 2), "request bytes": sent, "prepared bytes": prepared,
             "round trip ms": round(round_trip * 1000, 2), "budget bytes": DEFAULT_INLINE_BUDGET},
        ))
    return rows



def _report_history(url: str, payloads: list[Payload], count: int, folder: Path) -> History:
    """A history of ``count`` entries: the emulator's own 1K pictures (PNG, as it draws them) and,
    one in five, a photo-like 1K PNG or JPEG; each third entry an edit of an earlier one, so the
    tree has chains and forks."""
    client = Client(api_key=KEY, base_url=url, model=MODEL)
    drawn = [client.generate(f"report picture {k}: a red door, a lighthouse, a fox", aspect_ratio=RATIO,
                             image_size="1K") for k in range(8)]
    photos = [(p.mime, p.read()) for p in payloads if p.tier == "1K"]
    sources = [(r.mime, r.data) for r in drawn] + photos
    history = History("report", folder)
    words = ("red door", "lighthouse", "fox in the snow", "blue teapot", "paper boat", "owl", "garden", "city")
    for k in range(count):
        mime, data = sources[k % len(sources)]
        result = ImageResult([ReplyImage(mime, data)], prompt=f"{words[k % len(words)]}, take {k}", model=MODEL,
                             aspect_ratio=RATIO, image_size="1K", route=("chat", "google")[k % 2])
        parent = history[k - 1 - (k // 3) % 3] if k % 3 == 2 else None
        history.append(result, parent=parent)
    return history


def report(url: str, payloads: list[Payload], count: int, folder: Path) -> list[Row]:
    """``History.export_html`` of a ``count``-entry history: made in this version (its previews made
    in the background as each entry was appended), written before (no previews kept: the export
    makes them) against the floor of decoding every original once, and again with them kept; its
    size per entry, and, in headless Chromium, opening it from ``file://`` and the slowest
    keystroke while typing a search."""
    started = time.perf_counter()
    history = _report_history(url, payloads, count, folder)
    appended = time.perf_counter() - started
    history.wait_for_thumbnails()
    background = time.perf_counter() - started
    judged = count >= REPORT_ENTRIES
    out = folder / "report.html"
    started = time.perf_counter()
    history.export_html(out)
    made_here = time.perf_counter() - started
    shutil.rmtree(history.folder / "thumbs")  # as a history written by an earlier version has none
    floor = _decode_every_original(history)
    started = time.perf_counter()
    history.export_html(out)
    cold = time.perf_counter() - started
    warm = min(sample_times({"export": lambda: history.export_html(out)}, 3)["export"])
    size = out.stat().st_size
    case = f"{count} entries, 1K pictures (emulator PNGs, one in five photo-like)"
    rows = [
        Row("report export", f"{case}, made in this version", made_here * 1000, "ms",
            REPORT_EXPORT_GOAL_MS if judged else None,
            f"each entry's preview made in the background as it was appended: the {count} appends took "
            f"{appended:.1f} s, their previews were all made {background:.1f} s after the first; "
            f"{size / 1e6:.1f} MB written",
            {"entries": count, "seconds": round(made_here, 3), "appends seconds": round(appended, 3),
             "previews made seconds": round(background, 3), "bytes": size}),
        Row("report export", f"{case}, written before (no previews kept)", cold * 1000, "ms", None,
            f"previews made by the export on {os.cpu_count()} cores and kept in the history: "
            f"{cold / floor:.2f}x the floor measured just before it",
            {"seconds": round(cold, 3), "over floor": round(cold / floor, 3)}),
        Row("report export", f"{case}, previews kept", warm * 1000, "ms", None,
            "the previews read back from the history's thumbs/", {"seconds": round(warm, 3)}),
        Row("report floor", f"{case}: every original read and decoded once", floor * 1000, "ms", None,
            f"no package code: Image.open(...).load() of each file on {os.cpu_count()} threads; what any preview "
            f"costs before it is made (the export of a history written before took {cold / floor:.2f}x this)",
            {"seconds": round(floor, 3)}),
        Row("report size", f"{case}, per entry", size / count / 1000, "KB",
            REPORT_ENTRY_GOAL_KB if judged else None,
            f"{size / 1e6:.1f} MB in all; the budget of one entry is {ENTRY_BUDGET / 1000:g} KB",
            {"bytes": size, "entries": count}),
    ]
    rows += _report_in_browser(out, case, judged)
    return rows


def _decode_every_original(history: History) -> float:
    """Seconds to read and decode every original of ``history`` once, on as many threads as cores."""
    paths = [path for entry in history for path in entry.files]

    def decode(path: Path) -> None:
        with Image.open(path) as image:
            image.load()

    started = time.perf_counter()
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        list(pool.map(decode, paths))
    return time.perf_counter() - started


#: Types a search one key at a time; each keystroke is timed until the next frame is drawn.
_TYPE_SEARCH = """async (text) => {
  const box = document.getElementById("q");
  const frame = () => new Promise(done => requestAnimationFrame(() => setTimeout(done, 0)));
  const times = [];
  for (let k = 1; k <= text.length; k++) {
    const started = performance.now();
    box.value = text.slice(0, k);
    box.dispatchEvent(new Event("input"));
    document.body.offsetHeight;
    await frame();
    times.push(performance.now() - started);
  }
  return {times, shown: document.querySelectorAll("#grid .card:not([hidden])").length};
}"""


def _report_in_browser(path: Path, case: str, judged: bool) -> list[Row]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return []
    if not CHROMIUM.exists():
        return []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=["--no-sandbox", "--disable-gpu"])
        try:
            opened, slowest, typed = [], [], {}
            for _ in range(3):
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                started = time.perf_counter()
                page.goto(path.as_uri(), wait_until="load")
                page.evaluate("() => new Promise(done => requestAnimationFrame(() => setTimeout(done, 0)))")
                opened.append(time.perf_counter() - started)
                typed = page.evaluate(_TYPE_SEARCH, "red door")
                slowest.append(max(typed["times"]))
                page.close()
        finally:
            browser.close()
    return [
        Row("report in browser", f"{case}: open from file:// until drawn", min(opened) * 1000, "ms",
            REPORT_OPEN_GOAL_MS if judged else None, "headless Chromium; best of 3", {"open ms": [
                round(t * 1000, 1) for t in opened]}),
        Row("report in browser", f"{case}: slowest keystroke typing 'red door'", min(slowest), "ms",
            REPORT_KEYSTROKE_GOAL_MS if judged else None,
            f"each key until the next frame; {typed['shown']} entries left shown; best of 3",
            {"keystroke ms": [round(t, 1) for t in slowest]}),
    ]
