"""The Russian production calendar (производственный календарь), as data.

Only the years whose days off are known from the Government's decree on
moving days off for that year (cited below with the transfers it makes) and
the Labour Code's article 112 (the non-working holidays, and the rule that a
holiday falling on a day off moves to the next working day, except the 1-8
January block). How they were checked: the transfers as each decree lists
them, and the year's total of working days (2024: 248, 2025: 247, 2026: 247,
as published with the production calendars), which tests/test_deadlines.py
recomputes; the decree texts themselves were not at hand when this was
written, so an operator should compare this file with them once. A year that
is not here is not guessed: :mod:`erasure.deadlines` refuses a working-day
deadline that needs it. Add a year only after reading its decree, and cite it.

For each year: ``days_off`` are the weekdays (Monday to Friday) that are not
working days (holidays, and days off moved onto a weekday); ``working`` are
the Saturdays and Sundays that are working days (a day off moved away).
Saturday and Sunday are days off otherwise. Pre-holiday short days do not
change a count of working days and are not kept.
"""

from __future__ import annotations

from datetime import date

# Трудовой кодекс РФ, ст. 112: 1-6 и 8 января (новогодние каникулы),
# 7 января, 23 февраля, 8 марта, 1 мая, 9 мая, 12 июня, 4 ноября.

SOURCES: dict[int, str] = {
    2024: "Постановление Правительства РФ от 10.08.2023 № 1306 «О переносе выходных дней в 2024 "
    "году»: с 6 января на 10 мая, с 7 января на 31 декабря, с 27 апреля на 29 апреля, "
    "со 2 ноября на 30 апреля, с 28 декабря на 30 декабря",
    2025: "Постановление Правительства РФ от 04.10.2024 № 1335 «О переносе выходных дней в 2025 "
    "году»: с 4 января на 2 мая, с 5 января на 31 декабря, с 23 февраля на 8 мая, с 8 марта на "
    "13 июня, с 1 ноября на 3 ноября",
    2026: "Постановление Правительства РФ от 24.09.2025 № 1466 «О переносе выходных дней в 2026 "
    "году»: с 3 января на 9 января, с 4 января на 31 декабря; ст. 112 ТК РФ: 8 марта "
    "(воскресенье) на 9 марта, 9 мая (суббота) на 11 мая",
}


def _days(year: int, *month_days: tuple[int, int]) -> frozenset[date]:
    return frozenset(date(year, m, d) for m, d in month_days)


DAYS_OFF: dict[int, frozenset[date]] = {
    # 2024: 248 working days
    2024: _days(
        2024,
        (1, 1),
        (1, 2),
        (1, 3),
        (1, 4),
        (1, 5),
        (1, 8),  # 6-7 January: Saturday, Sunday
        (2, 23),
        (3, 8),
        (4, 29),
        (4, 30),  # moved from 27 April and 2 November
        (5, 1),
        (5, 9),
        (5, 10),  # 10 May moved from 6 January
        (6, 12),
        (11, 4),
        (12, 30),
        (12, 31),  # moved from 28 December and 7 January
    ),
    # 2025: 247 working days
    2025: _days(
        2025,
        (1, 1),
        (1, 2),
        (1, 3),
        (1, 6),
        (1, 7),
        (1, 8),
        (5, 1),
        (5, 2),
        (5, 8),
        (5, 9),  # 2 May from 4 January, 8 May from 23 February
        (6, 12),
        (6, 13),  # 13 June from 8 March
        (11, 3),
        (11, 4),  # 3 November from 1 November
        (12, 31),  # from 5 January
    ),
    # 2026: 247 working days
    2026: _days(
        2026,
        (1, 1),
        (1, 2),
        (1, 5),
        (1, 6),
        (1, 7),
        (1, 8),
        (1, 9),  # 9 January from 3 January
        (2, 23),
        (3, 9),  # 8 March is a Sunday
        (5, 1),
        (5, 11),  # 9 May is a Saturday
        (6, 12),
        (11, 4),
        (12, 31),  # from 4 January
    ),
}

WORKING_WEEKENDS: dict[int, frozenset[date]] = {
    2024: _days(2024, (4, 27), (11, 2), (12, 28)),
    2025: _days(2025, (11, 1)),
    2026: frozenset(),
}
