"""When an EventBridge cron expression fires, and how long it can stay silent: what the heartbeat
alarms derive their windows from.

The firings are enumerated over a representative period (``PERIOD_START`` for ``PERIOD_DAYS``
days: two calendar years, one of them a leap year, so every weekday, month length and February
occurs). ``longest_gap`` is the longest time between two consecutive firings;
``longest_silence`` counts the longest run of whole UTC buckets (hours or days) without one, which
is what an alarm over clock-aligned periods sees.
"""

from __future__ import annotations

import calendar
import re
from datetime import date, datetime, timedelta

from .lambda_src.contract.rules import Schedule, schedule_problem

PERIOD_START = date(2031, 1, 1)
PERIOD_DAYS = 731  # 2031 and the leap year 2032
_DAYS = {name: number for number, name in enumerate(("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"), start=1)}
_MONTHS = {name: number for number, name in enumerate(calendar.month_abbr[1:], start=1)}


class UnsupportedSchedule(ValueError):
    """The expression fires fewer than twice in the representative period, or is a rate()."""


def firings(expression: str, start: date = PERIOD_START, days: int = PERIOD_DAYS) -> list[datetime]:
    """Every firing of a 6-field EventBridge cron expression (UTC) from ``start`` on, in order."""
    problem = schedule_problem(expression) or (None if expression.strip().startswith("cron(") else "not a cron expression")
    if problem:
        raise ValueError(f"schedule must be {Schedule.allowed}; got {expression!r} ({problem})")
    minutes, hours, day_of_month, month, day_of_week, year = re.match(r"cron\((.*)\)", expression.strip()).group(1).split()
    minute_set = _values(minutes, 0, 59, {})
    hour_set = _values(hours, 0, 23, {})
    month_set = _values(month, 1, 12, _MONTHS)
    year_set = None if year == "*" else _values(year, 1970, 2199, {})
    times = sorted(timedelta(hours=h, minutes=m) for h in hour_set for m in minute_set)
    found = []
    for offset in range(days):
        day = start + timedelta(days=offset)
        if day.month not in month_set or (year_set is not None and day.year not in year_set):
            continue
        if _day_matches(day, day_of_month, day_of_week):
            midnight = datetime(day.year, day.month, day.day)
            found.extend(midnight + t for t in times)
    return found


def longest_gap(expression: str) -> timedelta:
    """The longest time between two consecutive firings."""
    fired = _at_least_two(expression)
    return max(later - earlier for earlier, later in zip(fired, fired[1:]))


def longest_silence(expression: str, bucket: timedelta) -> int:
    """The most consecutive whole UTC buckets (``bucket``: an hour or a day) without a firing,
    between the first and the last firing of the period."""
    fired = _at_least_two(expression)
    origin = datetime(PERIOD_START.year, PERIOD_START.month, PERIOD_START.day)
    indexes = sorted({(moment - origin) // bucket for moment in fired})
    return max(later - earlier - 1 for earlier, later in zip(indexes, indexes[1:]))


def _at_least_two(expression: str) -> list[datetime]:
    if not expression.startswith("cron("):
        raise UnsupportedSchedule(f"{expression!r} is not a cron expression")
    fired = firings(expression)
    if len(fired) < 2:
        raise UnsupportedSchedule(
            f"{expression!r} fires {len(fired)} time(s) in {PERIOD_START.year}-{PERIOD_START.year + 1}, too rarely "
            "for a heartbeat window to be derived"
        )
    return fired


def _values(field: str, low: int, high: int, names: dict[str, int]) -> set[int]:
    result: set[int] = set()
    for item in field.split(","):
        base, _, step = item.partition("/")
        if base in ("*", "?"):
            first, last = low, high
        elif "-" in base:
            first, last = (_number(part, names) for part in base.split("-", 1))
        else:
            first = _number(base, names)
            last = high if step else first
        stride = int(step) if step else 1
        if first <= last:
            result.update(range(first, last + 1, stride))
        else:  # a range that wraps, such as FRI-MON
            result.update([*range(first, high + 1), *range(low, last + 1)][::stride])
    return result


def _number(value: str, names: dict[str, int]) -> int:
    return names[value.upper()] if value.upper() in names else int(value)


def _day_matches(day: date, day_of_month: str, day_of_week: str) -> bool:
    last = calendar.monthrange(day.year, day.month)[1]
    weekday = day.isoweekday() % 7 + 1  # EventBridge: 1 = SUN ... 7 = SAT
    if day_of_month != "?":
        return any(_month_day_matches(day, item, last) for item in day_of_month.split(","))
    return any(_week_day_matches(day, item, weekday, last) for item in day_of_week.split(","))


def _month_day_matches(day: date, item: str, last: int) -> bool:
    if item == "L":
        return day.day == last
    if item == "LW":
        return day == _nearest_weekday(day.replace(day=last), last)
    if item.endswith("W"):
        return day == _nearest_weekday(day.replace(day=min(int(item[:-1]), last)), last)
    return day.day in _values(item, 1, 31, {})


def _nearest_weekday(target: date, last: int) -> date:
    """The weekday nearest ``target`` within its month (cron's ``W``)."""
    if target.weekday() == 5:  # Saturday: Friday, or Monday when Friday is in the previous month
        return target - timedelta(days=1) if target.day > 1 else target + timedelta(days=2)
    if target.weekday() == 6:  # Sunday: Monday, or Friday when Monday is in the next month
        return target + timedelta(days=1) if target.day < last else target - timedelta(days=2)
    return target


def _week_day_matches(day: date, item: str, weekday: int, last: int) -> bool:
    if "#" in item:
        name, _, nth = item.partition("#")
        return weekday == _number(name, _DAYS) and (day.day - 1) // 7 + 1 == int(nth)
    if item.endswith("L") and item != "L":
        return weekday == _number(item[:-1], _DAYS) and day.day > last - 7
    if item == "L":
        return weekday == 7  # L alone in day-of-week: the last day of the week, Saturday
    return weekday in _values(item, 1, 7, _DAYS)
