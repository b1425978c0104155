"""Quarters and the quarterly reporting deadline (the 25th of each quarter's last month)."""

from __future__ import annotations

import datetime as dt

import pytest

from geoapp.domain.errors import InvalidInput
from geoapp.domain.quarters import (
    Quarter,
    next_deadline,
    parse_quarter,
    quarters_between,
    report_quarter,
)


@pytest.mark.parametrize("day, expected", [
    (dt.date(2019, 1, 1), Quarter(2019, 1)), (dt.date(2019, 3, 31), Quarter(2019, 1)),
    (dt.date(2019, 4, 1), Quarter(2019, 2)), (dt.date(2019, 9, 30), Quarter(2019, 3)),
    (dt.date(2019, 10, 1), Quarter(2019, 4)), (dt.date(2019, 12, 31), Quarter(2019, 4)),
])
def test_a_date_falls_in_its_calendar_quarter(day, expected):
    assert Quarter.of(day) == expected


@pytest.mark.parametrize("q, deadline", [(1, dt.date(2019, 3, 25)), (2, dt.date(2019, 6, 25)),
                                         (3, dt.date(2019, 9, 25)), (4, dt.date(2019, 12, 25))])
def test_deadline_is_the_25th_of_the_quarters_last_month(q, deadline):
    assert Quarter(2019, q).deadline == deadline


def test_quarter_bounds_cover_every_day_once():
    q = Quarter(2020, 1)  # leap year
    assert (q.first_day, q.last_day) == (dt.date(2020, 1, 1), dt.date(2020, 3, 31))
    assert Quarter(2019, 4).last_day == dt.date(2019, 12, 31)
    assert q.contains(dt.date(2020, 2, 29)) and not q.contains(dt.date(2020, 4, 1))


def test_report_is_for_the_quarter_the_day_falls_in_before_and_after_the_deadline():
    assert report_quarter(dt.date(2019, 9, 25)) == Quarter(2019, 3)
    assert report_quarter(dt.date(2019, 9, 26)) == Quarter(2019, 3)  # overdue, still Q3
    assert report_quarter(dt.date(2019, 10, 1)) == Quarter(2019, 4)


def test_next_deadline_moves_to_the_next_quarter_after_the_25th():
    assert next_deadline(dt.date(2019, 9, 25)) == dt.date(2019, 9, 25)
    assert next_deadline(dt.date(2019, 9, 26)) == dt.date(2019, 12, 25)
    assert next_deadline(dt.date(2019, 12, 26)) == dt.date(2020, 3, 25)


def test_shift_crosses_years_both_ways():
    assert Quarter(2019, 4).shift(1) == Quarter(2020, 1)
    assert Quarter(2019, 1).shift(-1) == Quarter(2018, 4)
    assert quarters_between(Quarter(2018, 3), Quarter(2019, 2)) == [
        Quarter(2018, 3), Quarter(2018, 4), Quarter(2019, 1), Quarter(2019, 2)]
    assert quarters_between(Quarter(2019, 2), Quarter(2019, 1)) == []


def test_labels_are_chinese_and_parse_back():
    q = Quarter(2019, 3)
    assert q.label == "2019年第3季度"
    assert str(q) == "2019Q3"
    assert Quarter.parse("2019-Q3") == q == Quarter.parse(str(q))
    assert parse_quarter("2019", "Q3") == q == parse_quarter(2019, 3)


@pytest.mark.parametrize("year, quarter, word", [("2019", "5", "quarter"), ("2019", "0", "quarter"),
                                                 ("2019", "x", "quarter"), ("19x", "1", "year"),
                                                 ("", "1", "year")])
def test_bad_year_or_quarter_is_an_error_naming_it(year, quarter, word):
    with pytest.raises(InvalidInput, match=word):
        parse_quarter(year, quarter)


def test_text_that_is_not_a_quarter_is_refused():
    with pytest.raises(InvalidInput, match="2019Q3"):
        Quarter.parse("2019-09")
