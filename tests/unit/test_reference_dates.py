"""Reference dates (the month starts anonymous registry figures are offered for) are the city's month starts."""

from datetime import UTC, date, datetime

import pytest

from cityos.gis.statistics import latest_reference_date
from cityos.platform.settings import get_settings

EVENING_OF_NOVEMBER_30_UTC = datetime(2026, 11, 30, 20, 0, tzinfo=UTC)  # already 1 December in Tokyo


@pytest.mark.parametrize(("zone", "expected"), [("Asia/Tokyo", date(2026, 12, 1)), ("UTC", date(2026, 11, 1))])
def test_the_latest_reference_date_is_the_month_start_in_the_citys_time_zone(monkeypatch, zone, expected):
    monkeypatch.setenv("CITYOS_TIMEZONE", zone)
    get_settings.cache_clear()
    try:
        assert latest_reference_date(EVENING_OF_NOVEMBER_30_UTC) == expected
    finally:
        get_settings.cache_clear()
