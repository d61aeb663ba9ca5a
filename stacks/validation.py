"""Checks shared by the typed config (``stacks.config``) and the constructs' props.

Each check raises ``ValueError`` with a message that names the setting (``where``), the value it
got, and what is allowed. Values that are unresolved CDK tokens are not checked here: the caller
skips them.
"""

from __future__ import annotations

import re

# GitLab CI/CD variable keys (GITLAB_API.md): letters, digits and '_', 1 to 255 characters.
VARIABLE_KEY = re.compile(r"\A[a-zA-Z0-9_]{1,255}\Z")
# IAM user and group names: up to 64 (users) / 128 (groups) of these characters.
IAM_NAME = re.compile(r"\A[\w+=,.@-]+\Z", re.ASCII)
# IAM paths: "/" or "/a/b/" (letters, digits and most printable ASCII except "/" inside a segment).
IAM_PATH = re.compile(r"\A/(?:[\x21-\x2e\x30-\x7e]+/)*\Z")

_CRON = re.compile(r"\Acron\((?P<body>[^()]*)\)\Z")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_DAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
# name, lowest, highest, symbolic names, extra characters allowed in the field
_CRON_FIELDS = (
    ("minutes", 0, 59, (), ""),
    ("hours", 0, 23, (), ""),
    ("day-of-month", 1, 31, (), "?LW"),
    ("month", 1, 12, _MONTHS, ""),
    ("day-of-week", 1, 7, _DAYS, "?L#"),
    ("year", 1970, 2199, (), ""),
)
CRON_HELP = (
    "a 6-field EventBridge cron expression, 'cron(minutes hours day-of-month month day-of-week year)' "
    "in UTC, with '?' in day-of-month or day-of-week, e.g. 'cron(55 23 ? * FRI *)'"
)


def check_cron(expression: object, where: str) -> str:
    """Return the expression when it is a valid EventBridge cron expression, else raise."""
    problem = _cron_problem(expression)
    if problem:
        raise ValueError(f"{where} must be {CRON_HELP}; got {expression!r} ({problem})")
    return expression  # type: ignore[return-value]


def _cron_problem(expression: object) -> str | None:
    if not isinstance(expression, str):
        return f"a {type(expression).__name__}, not a string"
    match = _CRON.match(expression.strip())
    if not match:
        return "it is not of the form cron(...)"
    fields = match.group("body").split()
    if len(fields) != 6:
        return f"{len(fields)} fields instead of 6"
    for value, (name, low, high, names, extra) in zip(fields, _CRON_FIELDS, strict=True):
        problem = _cron_field_problem(value, low, high, names, extra)
        if problem:
            return f"{name} field {value!r}: {problem}"
    day_of_month, day_of_week = fields[2], fields[4]
    if (day_of_month == "?") == (day_of_week == "?"):
        return "exactly one of day-of-month and day-of-week must be '?'"
    return None


def _cron_field_problem(value: str, low: int, high: int, names: tuple[str, ...], extra: str) -> str | None:
    if value in ("*", "?"):
        return None if value == "*" or "?" in extra else "'?' is only allowed in day-of-month or day-of-week"
    for item in value.split(","):
        base, _, step = item.partition("/")
        if step and not (step.isdigit() and int(step) >= 1):
            return f"step {step!r} must be a positive number"
        if base == "*" and step:
            continue
        if "L" in extra and base in ("L", "LW"):
            continue
        if "#" in extra and "#" in base:
            day, _, nth = base.partition("#")
            if not (_in_range(day, low, high, names) and nth in ("1", "2", "3", "4", "5")):
                return f"{base!r} must be <day>#<1-5>"
            continue
        if "W" in extra and base.endswith("W"):
            base = base[:-1]
        if "L" in extra and "#" in extra and base.endswith("L"):  # e.g. 6L: last Friday
            base = base[:-1]
        for bound in base.split("-", 1):
            if not _in_range(bound, low, high, names):
                allowed = f"{low}-{high}" + (f" or {names[0]}-{names[-1]}" if names else "")
                return f"{bound!r} is not in {allowed}"
    return None


def _in_range(value: str, low: int, high: int, names: tuple[str, ...]) -> bool:
    if value.upper() in names:
        return True
    return value.isdigit() and low <= int(value) <= high


def check_https_url(url: object, where: str) -> str:
    """Return the URL without a trailing slash when it is an https URL with a host, else raise."""
    if not isinstance(url, str) or not re.match(r"\Ahttps://[^/\s?#]+(/[^\s?#]*)?\Z", url):
        raise ValueError(f"{where} must be an https:// URL such as 'https://gitlab.com', got {url!r}")
    return url.rstrip("/")


def check_variable_key(key: object, where: str) -> str:
    if not isinstance(key, str) or not VARIABLE_KEY.match(key):
        raise ValueError(f"{where} must be a GitLab variable key of 1 to 255 letters, digits or '_', got {key!r}")
    return key


def check_iam_name(name: object, where: str, max_length: int) -> str:
    if not isinstance(name, str) or not IAM_NAME.match(name) or len(name) > max_length:
        raise ValueError(
            f"{where} must be an IAM name of 1 to {max_length} characters from letters, digits and '+=,.@_-', got {name!r}"
        )
    return name


def check_iam_path(path: object, where: str) -> str:
    if not isinstance(path, str) or not IAM_PATH.match(path) or len(path) > 512:
        raise ValueError(f"{where} must be an IAM path such as '/' or '/ci/machines/', got {path!r}")
    return path


def check_at_least(value: object, minimum: int, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{where} must be a whole number >= {minimum}, got {value!r}")
    return value
