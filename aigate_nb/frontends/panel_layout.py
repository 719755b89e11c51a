"""Small layout helpers the panel's views share: a labelled field, a row, a button's width, a dropdown's options."""

from __future__ import annotations

import html
from typing import Any

import ipywidgets as w


def field(label: str, control: w.Widget, width: str = "auto", margin: str = "0 12px 8px 0") -> w.VBox:
    """``control`` under a small upper-case caption."""
    caption = w.HTML(f'<span class="aigate-label">{html.escape(label) or "&nbsp;"}</span>')
    return w.VBox([caption, control], layout=w.Layout(width=width, max_width="100%", margin=margin))


def row(*children: w.Widget, wrap: bool = True, align: str = "flex-end", margin: str = "0") -> w.HBox:
    """Widgets side by side, wrapping onto the next line where there is no room (unless ``wrap`` is off)."""
    return w.HBox(
        list(children),
        layout=w.Layout(
            flex_flow="row wrap" if wrap else "row nowrap", align_items=align, width="100%", margin=margin
        ),
    )


def auto_width(min_width: str = "0") -> w.Layout:
    """A button as wide as its label, never squeezed below it."""
    return w.Layout(width="auto", flex="0 0 auto", min_width=min_width)


def set_options(dropdown: w.Dropdown, options: list, keep: Any = None) -> None:
    """Replace a dropdown's options, keeping ``keep`` selected when it is still offered."""
    values = [o[1] if isinstance(o, tuple) else o for o in options]
    if list(dropdown.options) == list(options) and dropdown.value in values:
        return
    dropdown.options = options  # selects the first option, then ours below
    dropdown.value = keep if keep in values else values[0]


def choose(dropdown: w.Dropdown, value: Any, otherwise: Any = None) -> None:
    """Select ``value`` in ``dropdown`` if it is offered, else ``otherwise`` (None: leave it)."""
    offered = [o[1] if isinstance(o, tuple) else o for o in dropdown.options]
    if value in offered:
        dropdown.value = value
    elif otherwise is not None:
        dropdown.value = otherwise
