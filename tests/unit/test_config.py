"""Settings read from text: rates as curl reads them (`--max-rate`)."""

from __future__ import annotations

import pytest

from wanmodels.config import parse_rate

MIB = 1 << 20


@pytest.mark.parametrize(
    ("text", "rate"),
    [("500K", 500 << 10), ("12M", 12 << 20), ("1G", 1 << 30), ("2048", 2048), ("1.5m", int(1.5 * MIB))],
)
def test_rates_read_as_curl_reads_them(text: str, rate: int) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["", "fast", "-1M", "0", "12X"])
def test_bad_rates_are_refused(text: str) -> None:
    with pytest.raises(ValueError, match=r"rate|at least"):
        parse_rate(text)
