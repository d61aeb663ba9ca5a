"""How long a cron schedule stays silent: what the heartbeat alarms' windows are derived from."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from gitlab_key_rotation.observability import heartbeat_window
from gitlab_key_rotation.schedule_gaps import UnsupportedSchedule, firings, longest_gap, longest_silence

HOUR, DAY = timedelta(hours=1), timedelta(days=1)


@pytest.mark.parametrize(
    ("expression", "gap", "silent_hours", "silent_days"),
    [
        ("cron(0 6-18 ? * MON-FRI *)", timedelta(hours=60), 59, 2),  # Friday 18:00 to Monday 06:00
        ("cron(0 7-17 ? * MON-FRI *)", timedelta(hours=62), 61, 2),
        ("cron(55 23 ? * FRI *)", timedelta(days=7), 167, 6),
        ("cron(15 * ? * * *)", HOUR, 0, 0),
        ("cron(0 0 L * ? *)", timedelta(days=31), 743, 30),  # the last day of each month
        ("cron(0 12 ? * 6#3 *)", timedelta(days=35), 839, 34),  # the third Friday
        ("cron(30 9 ? * SAT-MON *)", timedelta(days=5), 119, 4),  # a range across the week's end
    ],
)
def test_longest_gap_and_silence(expression, gap, silent_hours, silent_days):
    assert longest_gap(expression) == gap
    assert longest_silence(expression, HOUR) == silent_hours
    assert longest_silence(expression, DAY) == silent_days


def test_firings_follow_eventbridge_fields():
    fired = firings("cron(0 6-18 ? * MON-FRI *)", days=7)  # 2031-01-01 is a Wednesday
    assert fired[0] == datetime(2031, 1, 1, 6) and fired[-1] == datetime(2031, 1, 7, 18)
    assert len(fired) == 5 * 13 and {f.weekday() for f in fired} == {0, 1, 2, 3, 4}
    assert firings("cron(0 0 15W * ? *)", days=31) == [datetime(2031, 1, 15)]
    assert firings("cron(0 0 1W 2 ? *)", days=59)[0] == datetime(2031, 2, 3)  # Feb 1st 2031 is a Saturday
    assert len(firings("cron(0 0 29 2 ? *)")) == 1  # 2032 is the leap year of the period


def test_a_schedule_that_fires_once_has_no_gap():
    with pytest.raises(UnsupportedSchedule, match="fires 1 time"):
        longest_gap("cron(0 0 29 2 ? *)")


@pytest.mark.parametrize(
    ("expression", "hours", "window"),
    [
        ("cron(0 6-18 ? * MON-FRI *)", None, (3600, 62)),  # 59 silent hours + 1 + 2 of margin
        ("cron(55 23 ? * FRI *)", None, (86400, 7)),  # 170 hours would exceed 7 days: whole UTC days
        ("cron(15 * ? * * *)", None, (3600, 3)),
        ("cron(55 23 ? * FRI *)", 100, (3600, 100)),  # set explicitly
        ("rate(1 hour)", 5, (3600, 5)),
    ],
)
def test_heartbeat_window(expression, hours, window):
    period, periods = heartbeat_window(expression, hours, "heartbeat_hours")
    assert (period.to_seconds(), periods) == window
    assert period.to_seconds() * periods <= 7 * 86400


def test_heartbeat_can_be_turned_off_or_must_be_set_when_it_cannot_be_derived():
    assert heartbeat_window("cron(55 23 ? * FRI *)", 0, "heartbeat_hours") is None
    with pytest.raises(ValueError, match="must be given"):
        heartbeat_window("rate(1 hour)", None, "heartbeat_hours")
