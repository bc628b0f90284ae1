"""Benchmarks: the library against the raw driver doing the same work in the same run.

``python -m bench`` runs them all; ``python -m bench claim`` (or ``append``, ``listing``,
``snapshot``) runs one. Figures are printed; ``--write`` also writes ``bench/RESULTS.md``.
Speed is measured here, never in the tests.
"""
