"""Talking to the gateway: settings and the key, request bodies and replies, sending with
retries and pacing, and the ``Client``. Usable alone from a script; knows no history."""
