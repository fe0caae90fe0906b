"""Shared test infrastructure: helpers the tests import, and the fake servers `benchmarks/` imports too.

Nothing here is a pytest fixture (those live in `tests/conftest.py`) and nothing here is a test
module, except the tests of these helpers themselves (`support/test_*.py`).
"""
