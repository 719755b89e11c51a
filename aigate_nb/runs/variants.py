"""``Variants``: the results of one ``%%gemini_image -n N`` cell, shown as a grid."""

from __future__ import annotations

import html
from collections.abc import Container
from typing import Any

from ..core.images import b64encode


class Variants(list):
    """A list of ``ImageResult`` that displays as a grid of previews, each with a short
    caption; together they take no more room in the notebook than one result. Any results
    may go side by side so (``Variants([h[0], h[-1]])``: a picture and its edit).
    """

    def shared_caption(self) -> str:
        """What the variants have in common, said once: model, ratio, size, how many, where."""
        first = self[0]
        parts = [first.model] + [value for value in (first.aspect_ratio, first.image_size) if value]
        alike = all(item.prompt == first.prompt and item.parent_id == first.parent_id for item in self)
        parts.append(f"{len(self)} variants" if alike else f"{len(self)} results")
        source = first.edited_from()
        if source and alike:
            parts.append(f"edited from {source}")
        return " | ".join(parts) + (" (emulator)" if first.emulated else "")

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """The captions, one per line: IPython's list printer would win over the bundle's text."""
        printer.text("\n".join(result.caption() for result in self))

    def _repr_mimebundle_(
        self, include: Container[str] | None = None, exclude: Container[str] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """A grid that wraps (two to four a row, by the output's width), each preview with a
        short caption (index, size, time) and the caption they share once, under the grid."""
        figures = []
        for result in self:
            budget = result.display_budget
            preview = result.previews(overhead=budget - budget // len(self))[0]
            width, height = result.size
            short = f"[{result.index}] " if result.index is not None else ""
            short += f"{width}x{height} · {result.elapsed:.2f} s"
            figures.append(
                '<figure style="margin:0;min-width:0">'
                f'<img src="data:{preview.mime};base64,{b64encode(preview.data)}" alt="{html.escape(short)}" '
                'style="width:100%;height:auto;display:block"/>'
                f'<figcaption style="font-size:smaller;overflow-wrap:anywhere">{html.escape(short)}</figcaption>'
                "</figure>"
            )
        data = {
            "text/html": '<div class="aigate-variants">'
            '<div style="display:grid;grid-template-columns:repeat(auto-fill,minmax(max(200px,calc(25% - 8px)),1fr));'
            'gap:8px;align-items:start">'
            + "".join(figures)
            + '</div><pre style="white-space:pre-wrap;font-size:smaller;margin:4px 0 0 0">'
            + html.escape(self.shared_caption())
            + "</pre></div>",
            "text/plain": "\n".join(result.caption() for result in self),
        }
        if include:
            data = {k: v for k, v in data.items() if k in include}
        if exclude:
            data = {k: v for k, v in data.items() if k not in exclude}
        metadata = {"aigate_nb": {"variants": [result.display_metadata()["aigate_nb"] for result in self]}}
        return data, metadata
