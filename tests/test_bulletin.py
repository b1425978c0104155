"""The bulletin's arithmetic and wording on plain numbers: weeks, percentages, text."""

from datetime import UTC, date, datetime

import pytest

from geoapp.domain.bulletin import (
    IsoWeek,
    bulletin_text,
    change_phrase,
    complaints_paragraph,
    counties_in_bulletin_order,
    date_range_zh,
    largest_remainder_percentages,
    last_full_week,
    warnings_paragraph,
    weeks_ending,
)
from geoapp.domain.errors import InvalidInput

COUNTIES = ["解放区", "中站区", "马村区", "山阳区", "示范区", "修武县", "博爱县", "武陟县",
            "温县", "沁阳市", "孟州市"]


def test_iso_week_runs_monday_to_sunday():
    w = IsoWeek.parse("2026-W47")
    assert (w.monday, w.sunday) == (date(2026, 11, 16), date(2026, 11, 22))
    assert w.start == datetime(2026, 11, 16) and w.end == datetime(2026, 11, 23)
    assert str(w.previous()) == "2026-W46"


def test_week_one_may_start_in_the_previous_december():
    w = IsoWeek.parse("2026-W01")
    assert w.monday == date(2025, 12, 29)
    assert date_range_zh(w) == "2025年12月29日至2026年1月4日"
    assert str(w.previous()) == "2025-W52"


def test_week_53_exists_only_in_long_years():
    assert IsoWeek.parse("2026-W53").monday == date(2026, 12, 28)
    with pytest.raises(InvalidInput):
        IsoWeek.parse("2025-W53")


@pytest.mark.parametrize("text", ["2026-47", "W47", "2026-W", "2026-W00", "next week"])
def test_malformed_week_is_rejected(text):
    with pytest.raises(InvalidInput):
        IsoWeek.parse(text)


def test_last_full_week_on_a_monday_morning_in_shanghai_is_the_week_just_ended():
    # Monday 23 Nov 2026 07:00 in Shanghai is still Sunday 23:00 UTC.
    now = datetime(2026, 11, 22, 23, 0, tzinfo=UTC)
    assert str(last_full_week(now)) == "2026-W47"
    assert str(last_full_week(datetime(2026, 11, 22, 15, 0, tzinfo=UTC))) == "2026-W46"


def test_weeks_ending_gives_eight_weeks_oldest_first():
    weeks = weeks_ending(IsoWeek(2026, 2), 8)
    assert [str(w) for w in weeks][:2] == ["2025-W47", "2025-W48"]
    assert str(weeks[-1]) == "2026-W02" and len(weeks) == 8


@pytest.mark.parametrize("counts", [[1, 1, 1], [20, 12, 5, 2, 1], [7, 0, 3], [1, 2, 3, 4, 5, 6, 7]])
def test_percentages_are_whole_and_sum_to_100(counts):
    shares = largest_remainder_percentages(counts)
    assert sum(shares) == 100
    assert all(abs(s - c * 100 / sum(counts)) < 1 for s, c in zip(shares, counts, strict=True))


def test_largest_remainder_gives_the_extra_point_to_the_largest_remainder():
    # 1/3 each: 33.33 -> the first gets the missing point; 2/7 = 28.57 beats 1/7 = 14.29.
    assert largest_remainder_percentages([1, 1, 1]) == [34, 33, 33]
    assert largest_remainder_percentages([2, 1, 4]) == [29, 14, 57]


def test_no_counts_give_zero_percentages():
    assert largest_remainder_percentages([0, 0]) == [0, 0]


def test_change_phrases():
    assert change_phrase(40, 34) == "比前一周增加6件"
    assert change_phrase(30, 34) == "比前一周减少4件"
    assert change_phrase(5, 5) == "与前一周持平"


def test_counties_descend_by_count_then_list_every_county_without_in_city_order():
    warned, quiet = counties_in_bulletin_order({"博爱县": 2, "温县": 3, "马村区": 2}, COUNTIES)
    assert warned == [("温县", 3), ("马村区", 2), ("博爱县", 2)]
    assert quiet == [c for c in COUNTIES if c not in ("温县", "马村区", "博爱县")]


def test_warning_text_in_bureau_style():
    text = warnings_paragraph(IsoWeek(2026, 47), {"温县": 3, "博爱县": 2}, COUNTIES)
    assert text == ("2026年11月16日至11月22日，全市共有5个（次）热点网格产生预警信息。其中，"
                    "温县3件、博爱县2件，解放区、中站区、马村区、山阳区、示范区、修武县、武陟县、"
                    "沁阳市、孟州市均未产生预警信息。")


def test_week_without_warnings_says_so():
    text = warnings_paragraph(IsoWeek(2026, 30), {}, COUNTIES)
    assert "均未产生预警信息" in text and "共有" not in text


def test_complaint_text_lists_categories_with_shares_summing_to_100():
    text = complaints_paragraph({"air": 20, "noise": 12, "water": 5, "other": 3}, 34)
    assert text.startswith("本周12369环境热线中心共接到群众投诉40件，比前一周增加6件。")
    assert "大气污染投诉20件，占总投诉量的50%；噪声污染投诉12件，占总投诉量的30%" in text
    assert "固废" not in text
    shares = [int(p.split("%")[0]) for p in text.split("占总投诉量的")[1:]]
    assert sum(shares) == 100


def test_week_without_complaints_says_so():
    text = complaints_paragraph({}, 12)
    assert text == "本周12369环境热线中心未接到群众投诉，比前一周减少12件。"


def test_whole_text_has_title_week_and_both_sections():
    text = bulletin_text("焦作市", IsoWeek(2026, 47), {"温县": 1}, COUNTIES, {"air": 1}, 1,
                         ["JZ3K-0001"])
    lines = text.splitlines()
    assert lines[1] == "2026年第47周（2026年11月16日至11月22日）"
    assert "一、热点网格预警情况" in lines and "二、12369环境热线投诉情况" in lines
    assert "JZ3K-0001" in text and text.endswith("持平。其中，大气污染投诉1件，占总投诉量的100%。\n")
