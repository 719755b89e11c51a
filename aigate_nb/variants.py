"""``Variants``: the results of one ``%%gemini_image -n N`` cell, shown side by side."""

from __future__ import annotations

import html
from typing import Any

from .images import b64encode


class Variants(list):
    """A list of ``ImageResult`` that displays as one row of previews, each with
    its caption; together they take no more room in the notebook than one result.
    """

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        """The captions, one per line: IPython's list printer would win over the bundle's text."""
        printer.text("\n".join(result.caption() for result in self))

    def _repr_mimebundle_(self, include=None, exclude=None) -> tuple[dict[str, Any], dict[str, Any]]:
        figures = []
        for result in self:
            budget = result.display_budget
            preview = result.previews(overhead=budget - budget // len(self))[0]
            figures.append(
                '<figure style="margin:0;flex:1 1 0;min-width:0">'
                f'<img src="data:{preview.mime};base64,{b64encode(preview.data)}" style="width:100%;height:auto"/>'
                f'<figcaption><pre style="white-space:pre-wrap;font-size:smaller">{html.escape(result.caption())}</pre>'
                "</figcaption></figure>"
            )
        data = {
            "text/html": '<div class="aigate-variants" style="display:flex;gap:8px;align-items:flex-start">'
            + "".join(figures)
            + "</div>",
            "text/plain": "\n".join(result.caption() for result in self),
        }
        if include:
            data = {k: v for k, v in data.items() if k in include}
        if exclude:
            data = {k: v for k, v in data.items() if k not in exclude}
        metadata = {"aigate_nb": {"variants": [result.display_metadata()["aigate_nb"] for result in self]}}
        return data, metadata
