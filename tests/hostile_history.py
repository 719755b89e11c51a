"""A history whose every text field holds markup meant to run in the HTML report: the
payloads of the security review, each in an entry's prompt, model reply, model id, file
names, settings, region, parent, hashes and id. Shared by the report's parser test and its
browser test (import as ``from hostile_history import ...``).

Each payload, if it ever ran, would set ``window.pwned`` or call ``alert``; none may.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

from PIL import Image

from aigate_nb.core.images import ReplyImage
from aigate_nb.core.results import ImageResult
from aigate_nb.records.store import History

PAYLOADS = (
    "<script>window.pwned=1</script>",
    "</script><script>window.pwned=2</script>",
    "<img src=x onerror=window.pwned=3>",
    '"><img src=x onerror="window.pwned=4">',
    "'><svg onload=window.pwned=5>",
    "<svg><script>window.pwned=6</script></svg>",
    '<svg><a xlink:href="javascript:window.pwned=7"><text y="20">click</text></a></svg>',
    '<a href="javascript:window.pwned=8">link</a>',
    "javascript:window.pwned=9",
    '<iframe srcdoc="<script>parent.pwned=10</script>"></iframe>',
    '<iframe src="javascript:parent.pwned=11"></iframe>',
    "</style><script>window.pwned=12</script>",
    '<div style="background:url(javascript:window.pwned=13)">x</div>',
    "x{}*{background:url(\"javascript:window.pwned=14\")}",
    "@import url(data:text/css,*{});</style><style>*{background:red}",
    "--> <script>window.pwned=15</script> <!--",
    "<!-- <script>window.pwned=16</script> -->",
    "${window.pwned=17}`;window.pwned=18;`",
    '"}]</script><script>window.pwned=19</script>',
    '{"a":"</script><script>window.pwned=20</script>"}',
    "\u2028\u2029</script>\u2028<script>window.pwned=21</script>",
    "\uff1cscript\uff1ewindow.pwned=22\uff1c/script\uff1e",
    "\uff1cimg src=x onerror=window.pwned=23\uff1e",
    "\u202e>tpircs/<;42=denwp.wodniw>tpircs<",
    "<scr\u200bipt>window.pwned=25</scr\u200bipt>",
    "<scr<script>ipt>window.pwned=26</scr</script>ipt>",
    "<SCRIPT SRC=data:text/javascript,window.pwned=27></SCRIPT>",
    '<object data="data:text/html,<script>parent.pwned=28</script>"></object>',
    '<embed src="data:image/svg+xml,<svg onload=parent.pwned=29>">',
    '<math><mtext><table><mglyph><style><img src=x onerror="window.pwned=30">',
    "<template><img src=x onerror=window.pwned=31></template>",
    '<base href="javascript:window.pwned=32//">',
    '<meta http-equiv="refresh" content="0;url=javascript:window.pwned=33">',
    '<details open ontoggle="window.pwned=34">',
    '<form><button formaction="javascript:window.pwned=35">go</button></form>',
    "&lt;script&gt;window.pwned=36&lt;/script&gt; &#60;img src=x onerror=window.pwned=37&#62;",
    "<noscript><p title=\"</noscript><img src=x onerror=alert(38)>\">",
    "\x00<script\x00>window.pwned=39</script>",
)


def small_png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (48, 32), (200, 40, 40)).save(buffer, "PNG")
    return buffer.getvalue()


def hostile_record(template: dict, payload: str, k: int) -> dict:
    """``template`` (a real index line) with ``payload`` in every field a person or a gateway
    can fill, as a hand-edited or shared index could hold them."""
    record = dict(template)
    record.update(
        prompt=payload,
        text=payload,
        model=f"{payload}/{payload}",
        aspect_ratio=payload,
        image_size=payload,
        finish_reason=payload,
        route=payload,
        cost_source=payload,
        created=payload,
        parent_index=None,
        request_hash=payload,
        inputs=[{"name": payload}, {"name": payload}, {"sha256": payload}],
        # Ids, MIME types and boxes are checked when the line is read (a payload there skips the
        # line: test_tampering.py); the text fields are what reaches the page.
        id=f"hostile-{k}",
        index=k + 1,
        sha256s=[payload],
    )
    return record


#: The prompts of the last three entries: one its own parent, then two each other's.
LOOP_PROMPTS = ("its own parent", "parent of the next", "parent of the one before")


def hostile_history(root: Path) -> History:
    """A history of one ordinary entry, [0], then one entry a payload, [1] onwards, then three
    whose parents loop (``LOOP_PROMPTS``): the detail view walks each one's chain of parents."""
    history = History("hostile", root)
    history.append(ImageResult([ReplyImage("image/png", small_png())], "an ordinary picture", "google/some-model"))
    history.wait_for_thumbnails(timeout=30)
    template = json.loads(history.index_path.read_text(encoding="utf-8").splitlines()[0])
    lines = [json.dumps(hostile_record(template, payload, k)) for k, payload in enumerate(PAYLOADS)]
    first = len(PAYLOADS) + 1
    loops = [("self", "self"), ("a", "b"), ("b", "a")]
    lines += [json.dumps({**template, "id": f"loop-{own}", "parent": f"loop-{parent}", "index": first + k,
                          "prompt": prompt}) for k, ((own, parent), prompt) in enumerate(zip(loops, LOOP_PROMPTS))]
    with open(history.index_path, "a", encoding="utf-8") as index:
        index.write("\n".join(lines) + "\n")
    return History("hostile", root)
