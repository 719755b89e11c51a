"""Keeping results: a notebook's history on disk, browsing it, what it cost, and its report.
Knows nothing of the session or the front ends."""
