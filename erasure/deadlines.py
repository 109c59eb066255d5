"""Deadlines as the law counts them: rules, presets, the production calendar, the due instant.

Pure: no I/O, no clock (``now`` is always given). A deadline is the END of
its due day in the job's timezone (``[input] timezone``, an IANA name), as
an instant with its offset; a request finished at any time on its due day
is on time. Days are counted from the day after receipt:

- ``"N days"``: the due day is N calendar days after the day of receipt;
- ``"N months"``: the same day N months later, the last day of that month
  when the day does not exist (31 January + 1 month = 28 or 29 February);
  never moved off a weekend or a holiday (stricter than readings that move
  it to the next working day);
- ``"N working days"``: the Nth working day after the day of receipt, by
  the shipped production calendar (:mod:`erasure.calendar_ru`); a day
  outside its verified years is refused (:class:`CalendarGap`), never
  guessed.

An extension moves the due day on by a duration counted from the original
due day, within the rule's limit; :func:`in_force` says which deadline
holds at a given moment, so that an extension recorded after a deadline
passed never clears the lateness.
"""

from __future__ import annotations

import calendar as _calendar
import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from erasure import calendar_ru
from erasure.errors import ConfigError


class DeadlineError(ConfigError):
    """A deadline setting that cannot be used (78): an unknown rule, preset or timezone."""


class CalendarGap(DeadlineError):
    """A working-day count needs a year the shipped production calendar does not hold."""


class Unit(enum.StrEnum):
    """What a duration counts."""

    DAYS = "days"  # calendar days
    MONTHS = "months"  # calendar months, same day of the month
    WORKING_DAYS = "working days"  # working days of the production calendar


@dataclass(frozen=True, slots=True)
class Duration:
    """A number of days, months or working days (``"10 working days"``, ``"1 month"``)."""

    count: int
    unit: Unit

    def __str__(self) -> str:
        if self.count == 1:
            return f"1 {self.unit.value[:-1]}"  # "1 day", "1 month", "1 working day"
        return f"{self.count} {self.unit.value}"


_DURATION = re.compile(r"\s*(\d{1,4})\s+(working\s+days?|days?|months?)\s*", re.IGNORECASE)


def parse_duration(text: str, what: str = "deadline") -> Duration:
    """``"30 days"``, ``"1 month"``, ``"2 months"``, ``"10 working days"``; else DeadlineError."""
    m = _DURATION.fullmatch(text)
    if m is None or int(m.group(1)) < 1:
        raise DeadlineError(
            f'{what} = "{text}" is not a duration: write "N days", "N months" or '
            '"N working days" (N at least 1)'
        )
    word = " ".join(m.group(2).lower().split())
    unit = (
        Unit.WORKING_DAYS
        if word.startswith("working")
        else Unit.MONTHS
        if word.startswith("month")
        else Unit.DAYS
    )
    return Duration(int(m.group(1)), unit)


@dataclass(frozen=True, slots=True)
class Preset:
    """A legal ground's period and its extension limit (None: no extension)."""

    period: Duration
    extension_max: Duration | None
    source: str  # for a lawyer to confirm (the README gives the same)


PRESETS: dict[str, Preset] = {
    "gdpr": Preset(
        Duration(1, Unit.MONTHS),
        Duration(2, Unit.MONTHS),
        "GDPR Art. 12(3): within one month, extendable by two further months",
    ),
    "152fz-answer": Preset(
        Duration(10, Unit.WORKING_DAYS),
        Duration(5, Unit.WORKING_DAYS),
        "152-FZ Art. 14(3) and 20: 10 working days, extendable by 5 with a reasoned notice",
    ),
    "152fz-withdrawal": Preset(
        Duration(30, Unit.DAYS),
        None,
        "152-FZ Art. 21(5): destruction within 30 days of the consent's withdrawal",
    ),
    "152fz-unlawful": Preset(
        Duration(10, Unit.WORKING_DAYS),
        None,
        "152-FZ Art. 21(3): destruction within 10 working days where processing was unlawful",
    ),
}

CALENDARS = ("RU",)  # the production calendars shipped


@dataclass(frozen=True, slots=True)
class Rule:
    """How a request's deadline is computed: the period, its limit, the timezone, the calendar."""

    period: Duration = Duration(30, Unit.DAYS)
    extension_max: Duration | None = None
    preset: str | None = None  # the preset's name, when the rule is one
    timezone: str = "UTC"
    calendar: str = "RU"

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def days(self) -> int | None:
        """N for a rule of "N days", else None."""
        return self.period.count if self.period.unit is Unit.DAYS else None

    @property
    def name(self) -> str:
        """The rule as the job file says it: a preset's name or the period."""
        return self.preset or str(self.period)

    def settings(self) -> dict[str, str | None]:
        """What a run records of the rule (so that reports read the rule the run used)."""
        return {
            "deadline": self.name,
            # a preset brings its own limit: recorded only for a rule that is not one
            "extension_max": (
                None if self.preset or self.extension_max is None else str(self.extension_max)
            ),
            "timezone": self.timezone,
            "calendar": self.calendar,
        }


def zone(name: str) -> ZoneInfo:
    """The IANA timezone ``name``; DeadlineError naming it when there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise DeadlineError(
            f'timezone = "{name}" is not an IANA timezone name (such as "Europe/Moscow" or "UTC")'
        ) from None


def rule(
    deadline: str | None = None,
    *,
    deadline_days: int | None = None,
    extension_max: str | None = None,
    timezone: str | None = None,
    calendar: str | None = None,
) -> Rule:
    """The rule a job (or a run's recorded settings) asks for; DeadlineError when unusable.

    ``deadline`` is a preset's name or a duration; ``deadline_days = N``
    stays as ``"N days"``; neither: ``"30 days"``. ``extension_max`` is
    for a rule that is not a preset (a preset brings its own).
    """
    tz = timezone or "UTC"
    zone(tz)
    cal = calendar or "RU"
    if cal not in CALENDARS:
        raise DeadlineError(
            f'calendar = "{cal}" is not a shipped production calendar (shipped: '
            f"{', '.join(CALENDARS)})"
        )
    if deadline is not None and deadline_days is not None:
        raise DeadlineError("give deadline or deadline_days, not both")
    if deadline is not None and deadline.strip().lower() in PRESETS:
        name = deadline.strip().lower()
        if extension_max is not None:
            raise DeadlineError(
                f'extension_max is for a rule that is not a preset: "{name}" has its own'
            )
        preset = PRESETS[name]
        return Rule(preset.period, preset.extension_max, name, tz, cal)
    if deadline is not None:
        period = parse_duration(deadline)
    else:
        period = Duration(30 if deadline_days is None else deadline_days, Unit.DAYS)
    limit = None if extension_max is None else parse_duration(extension_max, "extension_max")
    return Rule(period, limit, None, tz, cal)


# ---------------------------------------------------------------- counting days


def is_working_day(day: date, calendar: str = "RU") -> bool:
    """Whether ``day`` is a working day; CalendarGap outside the calendar's verified years."""
    if day.year not in calendar_ru.DAYS_OFF:
        years = sorted(calendar_ru.DAYS_OFF)
        raise CalendarGap(
            f"{day.isoformat()} is outside the shipped {calendar} production calendar "
            f"({years[0]}-{years[-1]}): a working-day deadline is not guessed; "
            "use a rule in days or months, or a release that ships that year"
        )
    if day.weekday() >= 5:
        return day in calendar_ru.WORKING_WEEKENDS[day.year]
    return day not in calendar_ru.DAYS_OFF[day.year]


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later; the month's last day when that day does not exist."""
    index = day.month - 1 + months
    year, month = day.year + index // 12, index % 12 + 1
    return date(year, month, min(day.day, _calendar.monthrange(year, month)[1]))


def add(day: date, duration: Duration, calendar: str = "RU") -> date:
    """The day ``duration`` after ``day``, counted from the day after it."""
    if duration.unit is Unit.DAYS:
        return day + timedelta(days=duration.count)
    if duration.unit is Unit.MONTHS:
        return add_months(day, duration.count)
    left, current = duration.count, day
    while left:
        current += timedelta(days=1)
        if is_working_day(current, calendar):
            left -= 1
    return current


def local_day(moment: datetime, rule_: Rule) -> date:
    """The day ``moment`` falls on in the rule's timezone (a naive moment is read there)."""
    tz = rule_.zone
    if moment.tzinfo is None:
        return moment.date()
    return moment.astimezone(tz).date()


def end_of(day: date, rule_: Rule) -> datetime:
    """The last instant of ``day`` in the rule's timezone (23:59:59.999999, with its offset)."""
    return datetime.combine(day, time.max, tzinfo=rule_.zone)


def due_day(received: datetime, rule_: Rule) -> date:
    """The due day of a request received at ``received``."""
    return add(local_day(received, rule_), rule_.period, rule_.calendar)


def deadline(received: datetime, rule_: Rule) -> datetime:
    """The deadline of a request received at ``received``: the end of its due day."""
    return end_of(due_day(received, rule_), rule_)


def check_received(first: datetime | None, last: datetime | None, rule_: Rule) -> None:
    """CalendarGap (78) when a working-day rule would need a year the calendar lacks for a
    request received between ``first`` and ``last`` (the shipped years are contiguous and a
    count only moves forward: the two ends answer for every day between)."""
    if rule_.period.unit is not Unit.WORKING_DAYS:
        return
    for moment in (first, last):
        if moment is not None:
            due_day(moment, rule_)


def show(moment: datetime) -> str:
    """An instant as reports show it: ISO 8601 to the second, with its offset."""
    return moment.isoformat(timespec="seconds")


# ---------------------------------------------------------------- extensions


@dataclass(frozen=True, slots=True)
class Extension:
    """An extension as recorded: when, and the due day it set (``extended_to``)."""

    at: datetime  # when it was recorded (UTC)
    extended_to: date  # the new due day


def extension_limit(original: date, rule_: Rule) -> date | None:
    """The last due day an extension may reach (None: the rule allows no extension)."""
    if rule_.extension_max is None:
        return None
    return add(original, rule_.extension_max, rule_.calendar)


def extend(
    original: date,
    current: date,
    by: Duration,
    rule_: Rule,
    *,
    now: datetime,
) -> date:
    """The new due day after extending ``current`` by ``by``; DeadlineError when not allowed.

    Refused when the rule allows no extension, when ``now`` is past the
    deadline in force (the end of ``current``), or when the new due day is
    beyond the original one plus the rule's ``extension_max``.
    """
    limit = extension_limit(original, rule_)
    if limit is None:
        raise DeadlineError(f'the deadline rule "{rule_.name}" allows no extension')
    if now > end_of(current, rule_):
        raise DeadlineError(
            f"the deadline {show(end_of(current, rule_))} has passed: it can no longer be extended"
        )
    new = add(current, by, rule_.calendar)
    if new > limit:
        raise DeadlineError(
            f"extending by {by} would end on {new.isoformat()}, beyond the rule's limit of "
            f'{rule_.extension_max} ("{rule_.name}"): the latest allowed due day is '
            f"{limit.isoformat()}"
        )
    return new


def in_force(original: datetime, extensions: Iterable[Extension], rule_: Rule) -> datetime:
    """The deadline in force: each extension counts only if recorded before the one it extends.

    ``original`` is the end of the original due day. Extensions are taken in
    the order they were recorded; one recorded after the deadline then in
    force had passed is ignored, so that a lateness is never cleared after
    the fact.
    """
    current = original
    for ext in sorted(extensions, key=lambda e: e.at):
        if ext.at <= current:
            current = max(current, end_of(ext.extended_to, rule_))
    return current


def overdue(deadline_: datetime, finished: datetime | None, now: datetime) -> bool:
    """Finished after the deadline, or not finished and ``now`` is past it (instants)."""
    return (finished if finished is not None else now) > deadline_


def parse_instant(text: str, rule_: Rule) -> datetime:
    """An ISO 8601 date or date-time; without an offset it is read in the rule's timezone."""
    moment = datetime.fromisoformat(text.strip())
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=rule_.zone)
    return moment.astimezone(UTC)
