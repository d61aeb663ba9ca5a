"""RateBudget on a fake clock: what it lets through, when, and what it says is left."""

from __future__ import annotations

import random

import pytest

from gitlab_key_rotation.lambda_src.rotation.rate_budget import RateBudget


class Time:
    """Seconds that pass only when someone sleeps (or the test moves them)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def time_():
    return Time()


def budget(time_: Time, per_minute: int, **options) -> RateBudget:
    return RateBudget(per_minute, clock=time_.clock, sleep=time_.sleep, **options)


def most_in_any_window(sends: list[float], window: float) -> int:
    """The largest number of sends in a half-open interval [t, t + window): it suffices to
    start the interval at each send."""
    return max(sum(1 for s in sends if start <= s < start + window) for start in sends)


def test_a_burst_up_to_the_budget_goes_out_without_waiting(time_):
    paced = budget(time_, 5)
    assert [paced.take() for _ in range(5)] == [0.0] * 5
    assert (time_.slept, paced.taken, paced.waited) == ([], 5, 0.0)


def test_the_next_request_waits_until_the_oldest_leaves_the_window(time_):
    paced = budget(time_, 3)
    for step in (0.0, 10.0, 20.0):
        time_.now = 1000.0 + step
        paced.take()
    assert paced.delay_for(1) == 40.0  # the send at 1000 leaves the window at 1060; now is 1020
    assert paced.take() == 40.0
    assert time_.now == 1060.0
    assert paced.delay_for(1) == 10.0  # the send at 1010 leaves at 1070


def test_delay_for_counts_several_windows(time_):
    paced = budget(time_, 2)
    assert paced.delay_for(0) == 0.0
    assert paced.delay_for(2) == 0.0
    assert paced.delay_for(3) == 60.0
    assert paced.delay_for(5) == 120.0
    paced.take()
    assert paced.delay_for(2) == 60.0
    assert paced.taken == 1  # asking records nothing


def test_delay_for_is_what_taking_that_many_takes(time_):
    paced = budget(time_, 4)
    rng = random.Random(7)
    for _ in range(30):
        time_.now += rng.choice((0.0, 0.5, 3.0, 20.0))
        paced.take()
    promised = paced.delay_for(9)
    start = time_.now
    for _ in range(9):
        paced.take()
    assert time_.now - start == pytest.approx(promised)


@pytest.mark.parametrize("per_minute", [1, 3, 10])
def test_no_window_of_a_minute_ever_holds_more_than_the_budget(time_, per_minute):
    paced = budget(time_, per_minute)
    rng = random.Random(per_minute)
    sends = []
    for _ in range(20 * per_minute):
        time_.now += rng.choice((0.0, 0.0, 0.1, 1.0, 7.0, 30.0))
        paced.take()
        sends.append(time_.now)
    assert most_in_any_window(sends, 60.0) == per_minute
    # and so no fixed minute of a Rack::Attack-style throttle, whatever its phase, sees more either
    for phase in (0.0, 13.0, 59.9):
        minutes = [int((s - phase) // 60) for s in sends]
        assert max(minutes.count(m) for m in set(minutes)) <= per_minute


def test_a_scaled_window(time_):
    paced = budget(time_, 2, window=1.5)
    for _ in range(6):
        paced.take()
    assert time_.slept == [1.5, 1.5]  # two at 1000, two at 1001.5, two at 1003
    assert (time_.now, paced.taken, paced.waited) == (1003.0, 6, 3.0)


def test_a_pause_holds_back_every_later_request(time_):
    paced = budget(time_, 100)
    paced.take()
    paced.pause_for(7.0)
    assert paced.delay_for(1) == 7.0
    assert paced.delay_for(3) == 7.0
    assert paced.take() == 7.0
    assert paced.take() == 0.0
    assert time_.now == 1007.0


def test_a_shorter_pause_does_not_cut_a_longer_one(time_):
    paced = budget(time_, 100)
    paced.pause_until(1030.0)
    paced.pause_until(1010.0)
    assert paced.delay_for(1) == 30.0


def test_a_pause_and_a_full_window_wait_for_the_later_of_the_two(time_):
    paced = budget(time_, 1)
    paced.take()
    paced.pause_for(5.0)
    assert paced.delay_for(1) == 60.0
    paced.pause_for(90.0)
    assert paced.delay_for(2) == 150.0  # the first at 1090, the second a window later


def test_a_clock_that_moved_on_by_itself_needs_no_sleep(time_):
    paced = budget(time_, 1)
    paced.take()
    time_.now += 61.0  # the work between two requests took that long
    assert paced.take() == 0.0
    assert time_.slept == []


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, None, "80"])
def test_the_budget_is_a_whole_number_of_at_least_one(time_, bad):
    with pytest.raises(ValueError, match="max_requests_per_minute must be a whole number >= 1"):
        budget(time_, bad)


def test_the_window_is_positive(time_):
    with pytest.raises(ValueError, match="window must be a positive number of seconds"):
        budget(time_, 1, window=0)


def test_a_clock_that_wakes_a_fraction_of_a_microsecond_early_does_not_keep_it_waiting(time_):
    def sleep_in_whole_microseconds(seconds: float) -> None:
        time_.slept.append(seconds)
        time_.now += int(seconds * 1e6) / 1e6  # rounded down, as a datetime clock may

    paced = RateBudget(1, clock=time_.clock, sleep=sleep_in_whole_microseconds)
    paced.take()
    paced.pause_for(0.7234564)
    paced.take()
    assert len(time_.slept) == 1
