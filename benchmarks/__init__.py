"""Benchmarks of aigate_nb against the least possible work and the official SDKs.

Run ``python -m benchmarks`` from the repository root (``pip install -e '.[bench]'`` first, for
the SDKs); it writes ``benchmarks/results.json`` and ``benchmarks/results.md``.
"""
