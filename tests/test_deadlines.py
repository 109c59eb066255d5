"""Deadlines as the law counts them (erasure.deadlines, erasure.calendar_ru): pure rules."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from erasure import calendar_ru, deadlines
from erasure.deadlines import CalendarGap, DeadlineError, Duration, Unit

UTC_DAYS = deadlines.rule("30 days")
MONTH = deadlines.rule("1 month")
GDPR = deadlines.rule("gdpr")
ANSWER = deadlines.rule("152fz-answer", timezone="Europe/Moscow")


def at(text: str) -> datetime:
    return datetime.fromisoformat(text)


# ---------------------------------------------------------------- rules and presets


def test_presets_carry_their_period_and_extension_limit() -> None:
    assert GDPR.period == Duration(1, Unit.MONTHS)
    assert GDPR.extension_max == Duration(2, Unit.MONTHS)
    assert ANSWER.period == Duration(10, Unit.WORKING_DAYS)
    assert ANSWER.extension_max == Duration(5, Unit.WORKING_DAYS)
    assert deadlines.rule("152fz-withdrawal").period == Duration(30, Unit.DAYS)
    assert deadlines.rule("152fz-withdrawal").extension_max is None
    assert deadlines.rule("152fz-unlawful").period == Duration(10, Unit.WORKING_DAYS)
    assert deadlines.rule("152fz-unlawful").extension_max is None


def test_deadline_days_stays_n_days_and_30_is_the_default() -> None:
    assert deadlines.rule(deadline_days=14) == deadlines.rule("14 days")
    assert deadlines.rule().period == Duration(30, Unit.DAYS)
    assert deadlines.rule("1 month") == deadlines.rule("1 months")


@pytest.mark.parametrize(
    ("kwargs", "says"),
    [
        ({"deadline": "soon"}, '"soon" is not a duration'),
        ({"deadline": "0 days"}, "is not a duration"),
        ({"deadline": "gdpr", "extension_max": "1 month"}, "has its own"),
        ({"deadline": "10 days", "deadline_days": 10}, "not both"),
        ({"timezone": "Mars/Olympus"}, '"Mars/Olympus" is not an IANA timezone'),
        ({"calendar": "FR"}, '"FR" is not a shipped production calendar'),
        ({"deadline": "5 days", "extension_max": "a while"}, "extension_max"),
    ],
)
def test_unusable_settings_are_refused_with_one_line(kwargs: dict[str, object], says: str) -> None:
    with pytest.raises(DeadlineError, match=says) as caught:
        deadlines.rule(**kwargs)  # type: ignore[arg-type]
    assert caught.value.exit_code == 78 and "\n" not in str(caught.value)


# ---------------------------------------------------------------- months


@pytest.mark.parametrize(
    ("received", "due"),
    [
        ("2026-01-31", "2026-02-28"),  # 31 January + 1 month: the month's last day
        ("2024-01-31", "2024-02-29"),  # a leap year
        ("2024-02-29", "2024-03-29"),
        ("2026-01-30", "2026-02-28"),
        ("2026-03-31", "2026-04-30"),
        ("2026-12-15", "2027-01-15"),  # over the year's end
        ("2026-02-28", "2026-03-28"),  # a Saturday: not moved to the next working day
    ],
)
def test_one_month_is_the_same_day_of_the_next_month(received: str, due: str) -> None:
    assert deadlines.due_day(at(received + "T10:00:00+00:00"), MONTH) == date.fromisoformat(due)


def test_gdpr_extension_adds_two_months_from_the_original_due_day() -> None:
    original = date(2026, 2, 28)  # received 31 January
    assert deadlines.extension_limit(original, GDPR) == date(2026, 4, 28)


# ---------------------------------------------------------------- working days


def test_the_shipped_years_hold_the_published_working_day_counts() -> None:
    counts = {
        year: sum(
            deadlines.is_working_day(date(year, 1, 1) + timedelta(days=i))
            for i in range(366 if year % 4 == 0 else 365)
        )
        for year in calendar_ru.DAYS_OFF
    }
    assert counts == {2024: 248, 2025: 247, 2026: 247}
    for year, days in calendar_ru.DAYS_OFF.items():
        assert all(d.weekday() < 5 and d.year == year for d in days)
        assert all(d.weekday() >= 5 for d in calendar_ru.WORKING_WEEKENDS[year])
        assert str(year) in calendar_ru.SOURCES[year]


def test_ten_working_days_skip_the_new_year_holiday_week() -> None:
    # received Wednesday 31 December 2025; 1-9 January 2026 are days off
    received = at("2025-12-30T12:00:00+03:00")  # Tuesday; 31 December is a day off too
    assert deadlines.due_day(received, ANSWER) == date(2026, 1, 23)


def test_a_moved_working_saturday_counts() -> None:
    # 1 November 2025 (a Saturday) was a working day; 3 and 4 November were not
    rule = deadlines.rule("3 working days")
    assert deadlines.is_working_day(date(2025, 11, 1))
    assert not deadlines.is_working_day(date(2025, 11, 3))
    assert deadlines.due_day(at("2025-10-30T09:00:00+00:00"), rule) == date(2025, 11, 5)
    # 31 October (Fri), 1 November (Sat, working), 5 November (Wed)


def test_a_date_outside_the_shipped_calendar_is_refused_not_guessed() -> None:
    with pytest.raises(CalendarGap, match="outside the shipped RU production calendar") as caught:
        deadlines.due_day(at("2023-05-02T09:00:00+00:00"), ANSWER)
    assert caught.value.exit_code == 78
    with pytest.raises(CalendarGap, match="2027-01-"):
        deadlines.due_day(at("2026-12-28T09:00:00+00:00"), ANSWER)
    # a rule in days or months needs no calendar
    assert deadlines.due_day(at("2023-05-02T09:00:00+00:00"), GDPR) == date(2023, 6, 2)


# ---------------------------------------------------------------- the due instant


def test_the_deadline_is_the_end_of_the_due_day_in_the_timezone() -> None:
    moscow = deadlines.rule("1 day", timezone="Europe/Moscow")
    # 22:30 UTC on 9 March is 01:30 on 10 March in Moscow: received the 10th
    end = deadlines.deadline(at("2026-03-09T22:30:00+00:00"), moscow)
    assert deadlines.show(end) == "2026-03-11T23:59:59+03:00"
    assert end.astimezone(UTC) == at("2026-03-11T20:59:59.999999+00:00")
    # the same instant read in UTC is the 9th
    assert deadlines.show(
        deadlines.deadline(at("2026-03-09T22:30:00+00:00"), deadlines.rule("1 day"))
    ) == ("2026-03-10T23:59:59+00:00")


def test_a_time_without_offset_is_read_in_the_timezone() -> None:
    moscow = deadlines.rule("1 day", timezone="Europe/Moscow")
    assert deadlines.parse_instant("2026-03-10 01:30", moscow) == at("2026-03-09T22:30:00+00:00")
    assert deadlines.parse_instant("2026-03-10", deadlines.rule()) == at(
        "2026-03-10T00:00:00+00:00"
    )


def test_finishing_any_time_on_the_due_day_is_on_time() -> None:
    rule = deadlines.rule("1 day", timezone="Europe/Moscow")
    end = deadlines.deadline(at("2026-03-10T04:21:00+03:00"), rule)
    assert not deadlines.overdue(end, at("2026-03-11T13:35:00+03:00"), now=end)
    assert not deadlines.overdue(end, at("2026-03-11T23:59:59.999999+03:00"), now=end)
    assert deadlines.overdue(end, at("2026-03-12T00:00:00+03:00"), now=end)
    assert deadlines.overdue(end, None, now=at("2026-03-12T00:00:00+03:00"))
    assert not deadlines.overdue(end, None, now=at("2026-03-11T23:00:00+03:00"))


# ---------------------------------------------------------------- extensions


def test_an_extension_within_the_limit_moves_the_due_day() -> None:
    original = deadlines.due_day(at("2026-03-02T10:00:00+03:00"), ANSWER)
    assert original == date(2026, 3, 17)  # 9 March is a day off (8 March was a Sunday)
    new = deadlines.extend(
        original,
        original,
        Duration(5, Unit.WORKING_DAYS),
        ANSWER,
        now=at("2026-03-10T00:00:00+00:00"),
    )
    assert new == date(2026, 3, 24)


def test_an_extension_beyond_the_limit_is_refused() -> None:
    original = date(2026, 3, 17)
    with pytest.raises(DeadlineError, match="beyond the rule's limit") as caught:
        deadlines.extend(
            original,
            original,
            Duration(6, Unit.WORKING_DAYS),
            ANSWER,
            now=at("2026-03-10T00:00:00+00:00"),
        )
    assert caught.value.exit_code == 78
    # two extensions add up against the same limit
    first = deadlines.extend(
        original,
        original,
        Duration(3, Unit.WORKING_DAYS),
        ANSWER,
        now=at("2026-03-10T00:00:00+00:00"),
    )
    with pytest.raises(DeadlineError, match="latest allowed due day is 2026-03-24"):
        deadlines.extend(
            original,
            first,
            Duration(3, Unit.WORKING_DAYS),
            ANSWER,
            now=at("2026-03-11T00:00:00+00:00"),
        )


def test_an_extension_after_the_deadline_passed_is_refused() -> None:
    original = date(2026, 3, 17)
    with pytest.raises(DeadlineError, match="has passed"):
        deadlines.extend(
            original,
            original,
            Duration(1, Unit.WORKING_DAYS),
            ANSWER,
            now=at("2026-03-17T21:00:00+00:00"),
        )


def test_a_preset_without_extension_refuses_one() -> None:
    with pytest.raises(DeadlineError, match="allows no extension"):
        deadlines.extend(
            date(2026, 3, 17),
            date(2026, 3, 17),
            Duration(1, Unit.DAYS),
            deadlines.rule("152fz-withdrawal"),
            now=at("2026-03-10T00:00:00+00:00"),
        )


def test_the_deadline_in_force_ignores_an_extension_recorded_after_it_passed() -> None:
    rule = GDPR
    original = deadlines.end_of(date(2026, 2, 28), rule)
    timely = deadlines.Extension(at("2026-02-20T10:00:00+00:00"), date(2026, 3, 28))
    late = deadlines.Extension(at("2026-03-01T10:00:00+00:00"), date(2026, 4, 28))
    assert deadlines.in_force(original, [timely], rule) == deadlines.end_of(date(2026, 3, 28), rule)
    assert deadlines.in_force(original, [late], rule) == original
    # a second extension recorded while the first one was in force counts
    second = deadlines.Extension(at("2026-03-20T10:00:00+00:00"), date(2026, 4, 28))
    assert deadlines.in_force(original, [second, timely], rule) == deadlines.end_of(
        date(2026, 4, 28), rule
    )


@pytest.mark.parametrize("preset", sorted(deadlines.PRESETS))
def test_a_preset_recorded_by_a_run_reads_back(preset: str) -> None:
    """What a run records of a preset rule is read back as that preset by status and
    report (a recorded limit beside a preset's name, as runs of an earlier build wrote
    it, is the preset's own)."""
    from erasure import deadline_table

    rule = deadlines.rule(preset, timezone="Europe/Moscow")
    assert deadline_table.rule_of_settings(rule.settings()) == rule
    older = {**rule.settings(), "extension_max": str(rule.extension_max)}
    assert deadline_table.rule_of_settings(older) == rule


def test_status_and_report_of_a_gdpr_job(
    sandbox: object, write_job: object, tmp_path: object, capsys: pytest.CaptureFixture[str]
) -> None:
    from pathlib import Path

    from erasure import cli
    from tests import e2e

    tmp = Path(str(tmp_path))
    (tmp / "in.csv").write_text("ticket,email,received_at\nT1,user1@example.com,2026-11-30\n")
    job = e2e.job(
        write_job,
        sandbox.url,  # type: ignore[attr-defined]
        input={
            "received_at_column": "received_at",
            "deadline": "gdpr",
            "timezone": "Europe/Moscow",
        },
    )
    assert e2e.run(job) == 0
    assert cli.main(["status", str(job)]) == 0
    assert cli.main(["report", str(job), "--out", str(tmp / "r.csv")]) == 0
    assert "2026-12-30T23:59:59+03:00" in (tmp / "r.csv").read_text(encoding="utf-8-sig")
