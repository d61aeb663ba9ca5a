"""The functions' own metrics (CloudWatch embedded metric format, ``lambda_src/common/metrics.py``)
as CDK metrics, and the heartbeat alarm that catches a job that stopped running.

A heartbeat counts successful runs (``RunSucceeded``) in clock-aligned UTC periods
(``EvaluationWindow: WallClockWindow``) and treats missing data as breaching: it goes to ALARM when
``evaluation_periods`` whole periods in a row saw no successful run. CloudWatch allows at most
7 days of periods x evaluation periods (1 day for periods under an hour), so:

- hourly periods, as many as the schedule's longest silence in whole UTC hours + 1 +
  ``HEARTBEAT_MARGIN_HOURS`` (the default weekday schedule: 59 silent hours over the weekend, so 62),
  when that fits in 168 hours;
- else daily periods, the longest silence in whole UTC days + 1 (a weekly schedule: 7), when that
  fits in 7 days;
- else the schedule is too sparse: ``heartbeat_hours`` must be given (1 to 168), or 0 for none.
"""

from __future__ import annotations

from datetime import timedelta

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from .schedule_gaps import longest_silence

NAMESPACE = "GitLabKeyRotation"  # lambda_src/common/metrics.py NAMESPACE
FUNCTION_DIMENSION = "Function"
HEARTBEAT_MARGIN_HOURS = 2
MAX_ALARM_RANGE_HOURS = 7 * 24  # CloudWatch: Period x EvaluationPeriods <= 604,800 seconds


def job_metric(
    function: lambda_.IFunction,
    name: str,
    *,
    statistic: str = "Sum",
    period: Duration = Duration.hours(1),
    label: str | None = None,
    **dimensions: str,
) -> cloudwatch.Metric:
    return cloudwatch.Metric(
        namespace=NAMESPACE,
        metric_name=name,
        dimensions_map={FUNCTION_DIMENSION: function.function_name, **dimensions},
        statistic=statistic,
        period=period,
        label=label,
    )


def heartbeat_window(schedule_expression: str, heartbeat_hours: int | None, where: str) -> tuple[Duration, int] | None:
    """(period, evaluation periods) of the heartbeat; None when turned off (``heartbeat_hours=0``)."""
    if heartbeat_hours is not None:
        if isinstance(heartbeat_hours, bool) or not isinstance(heartbeat_hours, int) or not 0 <= heartbeat_hours <= MAX_ALARM_RANGE_HOURS:
            raise ValueError(
                f"{where} must be 0 (no heartbeat alarm) or 1 to {MAX_ALARM_RANGE_HOURS} hours (CloudWatch evaluates "
                f"at most 7 days), got {heartbeat_hours!r}"
            )
        return (Duration.hours(1), heartbeat_hours) if heartbeat_hours else None
    if not schedule_expression.startswith("cron("):
        raise ValueError(f"{where} must be given (1 to {MAX_ALARM_RANGE_HOURS} hours) for the schedule {schedule_expression!r}")
    hours = longest_silence(schedule_expression, timedelta(hours=1)) + 1 + HEARTBEAT_MARGIN_HOURS
    if hours <= MAX_ALARM_RANGE_HOURS:
        return Duration.hours(1), hours
    days = longest_silence(schedule_expression, timedelta(days=1)) + 1
    if days <= MAX_ALARM_RANGE_HOURS // 24:
        return Duration.days(1), days
    raise ValueError(
        f"the schedule {schedule_expression!r} can stay silent for {days - 1} whole days, longer than CloudWatch "
        f"can watch (7 days): set {where} (1 to {MAX_ALARM_RANGE_HOURS} hours), or 0 for no heartbeat alarm"
    )


def heartbeat_alarm(
    scope: Construct, id_: str, *, function: lambda_.IFunction, job: str, period: Duration, evaluation_periods: int
) -> cloudwatch.Alarm:
    window = (
        f"{evaluation_periods} hours" if period.to_hours() == 1 else f"{evaluation_periods} days (UTC calendar days)"
    )
    alarm = cloudwatch.Alarm(
        scope,
        id_,
        alarm_description=(
            f"No successful run of the {job} Lambda in {window}, longer than its schedule ever stays silent: the "
            "schedule rule is disabled or changed, the function is gone or throttled, or every run failed. See the "
            "README section 'Operating it'."
        ),
        metric=job_metric(function, "RunSucceeded", period=period),
        threshold=1,
        evaluation_periods=evaluation_periods,
        datapoints_to_alarm=evaluation_periods,
        comparison_operator=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
        treat_missing_data=cloudwatch.TreatMissingData.BREACHING,
    )
    # Whole UTC hours or days, not a sliding window: a weekly run must land in its own day, however
    # close to the 7-day limit the window is.
    alarm.node.default_child.add_property_override("EvaluationWindow", {"WallClockWindow": {"Timezone": "UTC"}})
    return alarm
