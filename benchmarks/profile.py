"""``python -m benchmarks --profile``: where ``Client.generate`` (both routes) and the inline
display of the largest PNG reply spend their time, as pyinstrument text reports."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from aigate_nb import Client

from .contenders import MODEL, RATIO
from .payloads import Payload
from .serve import KEY


def profile(url: str, payload: Payload, folder: Path, runs: int = 5) -> list[Path]:
    try:
        from pyinstrument import Profiler
    except ImportError:
        raise SystemExit("--profile needs pyinstrument: pip install -e '.[bench]'") from None
    folder.mkdir(parents=True, exist_ok=True)
    client = Client(api_key=KEY, base_url=url, model=MODEL)
    written = []

    def record(name: str, work) -> None:
        work()  # warm: connection, codecs, the emulator's encoded reply
        profiler = Profiler(interval=0.0005)
        profiler.start()
        for _ in range(runs):
            work()
        profiler.stop()
        path = folder / f"{name}.txt"
        path.write_text(profiler.output_text(unicode=False, show_all=False))
        written.append(path)

    for route in ("chat", "google"):
        record(f"generate-{payload.tier}-{payload.format}-{route}".lower(),
               lambda route=route: client.generate(payload.prompt, aspect_ratio=RATIO, image_size=payload.tier,
                                                   route=route))
    result = client.generate(payload.prompt, aspect_ratio=RATIO, image_size=payload.tier)
    record(f"display-{payload.tier}-{payload.format}".lower(), lambda: dataclasses.replace(
        result, _pixels=None, _sizes=None, _sha256s=None, _previews=None)._repr_mimebundle_())
    return written
