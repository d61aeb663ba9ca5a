"""Value rules: what one setting may hold, said once, used by the cdk.json parser, the constructs'
props and both Lambdas.

A rule's ``check`` returns the value (normalized: a URL without its trailing slash, a numeric target
id as a string) or raises ``Invalid``; ``allowed`` says what is allowed, in words that complete
"<key> must be ...". ``show`` is how a refused value is echoed: a URL's password never is.
"""

from __future__ import annotations

import base64
import binascii
import re
from pathlib import Path
from contextvars import ContextVar
from typing import Any, Sequence
from urllib.parse import urlsplit


class Invalid(ValueError):
    """The value breaks the rule; the message (optional) says which part and why."""


class Rule:
    allowed = "a valid value"
    text = False  # the value is a string (a -c override is then taken as written, not as JSON)

    def check(self, value: Any) -> Any:
        raise NotImplementedError

    def show(self, value: Any) -> str:
        return repr(value)


class Boolean(Rule):
    allowed = "true or false"

    def check(self, value: Any) -> bool:
        if not isinstance(value, bool):
            raise Invalid()
        return value


class Integer(Rule):
    def __init__(self, minimum: int, maximum: int | None = None, unit: str | None = None):
        self.minimum, self.maximum, self.unit = minimum, maximum, unit
        what = f"a whole number of {unit}" if unit else "a whole number"
        self.allowed = f"{what} from {minimum} to {maximum}" if maximum is not None else f"{what} >= {minimum}"

    def check(self, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise Invalid()
        if value < self.minimum or (self.maximum is not None and value > self.maximum):
            raise Invalid()
        return value


class Choice(Rule):
    def __init__(self, values: Sequence[Any], note: str = ""):
        self.values = tuple(values)
        self.allowed = "one of " + ", ".join(repr(v) for v in self.values) + (f" ({note})" if note else "")

    def check(self, value: Any) -> Any:
        if isinstance(value, bool) or value not in self.values:
            raise Invalid()
        return value


class Pattern(Rule):
    text = True
    def __init__(self, regex: str, allowed: str, flags: int = 0):
        self.regex = re.compile(regex, flags)
        self.allowed = allowed

    def check(self, value: Any) -> str:
        if not isinstance(value, str) or not self.regex.fullmatch(value):
            raise Invalid()
        return value


class Text(Rule):
    text = True
    def __init__(self, max_length: int, min_length: int = 0, one_line: bool = False):
        self.max_length, self.min_length, self.one_line = max_length, min_length, one_line
        self.allowed = f"a string of {min_length} to {max_length} characters" + (" on one line" if one_line else "")

    def check(self, value: Any) -> str:
        if not isinstance(value, str) or not self.min_length <= len(value) <= self.max_length:
            raise Invalid()
        if self.one_line and ("\n" in value or "\r" in value):
            raise Invalid("it holds a line break")
        return value


class Optional(Rule):
    """``None`` or a value of ``rule``."""

    def __init__(self, rule: Rule):
        self.rule = rule
        self.text = rule.text
        self.allowed = f"{rule.allowed}, or null"

    def check(self, value: Any) -> Any:
        return None if value is None else self.rule.check(value)

    def show(self, value: Any) -> str:
        return self.rule.show(value)


# ---- IAM --------------------------------------------------------------------------------------


class IamName(Rule):
    """IAM user (64) and group (128) names: letters, digits and ``+=,.@_-``."""

    text = True

    _NAME = re.compile(r"[\w+=,.@-]+", re.ASCII)

    def __init__(self, max_length: int, what: str):
        self.max_length = max_length
        self.allowed = f"an IAM {what} name of 1 to {max_length} characters from letters, digits and '+=,.@_-'"

    def check(self, value: Any) -> str:
        if not isinstance(value, str) or not self._NAME.fullmatch(value) or len(value) > self.max_length:
            raise Invalid()
        return value


IAM_USER_NAME = IamName(64, "user")
IAM_GROUP_NAME = IamName(128, "group")


class IamPath(Rule):
    text = True
    allowed = "an IAM path of up to 512 characters, '/' or '/segment/.../' (printable ASCII, no spaces), such as '/ci/machines/'"
    _PATH = re.compile(r"/(?:[\x21-\x2e\x30-\x7e]+/)*")

    def check(self, value: Any) -> str:
        if not isinstance(value, str) or len(value) > 512 or not self._PATH.fullmatch(value):
            raise Invalid()
        return value


class IamTagKey(Rule):
    """What IAM accepts as a tag key (``TagResource``): 1 to 128 of letters, digits, spaces and
    ``_.:/=+-@``, not starting with ``aws:`` (reserved). ``""`` turns the exemption off."""

    text = True

    allowed = (
        "an IAM tag key of 1 to 128 letters, digits, spaces and '_.:/=+-@', not starting with 'aws:' "
        "(or '' to turn the tag exemption off)"
    )
    _KEY = re.compile(r"[\w .:/=+\-@]{1,128}")

    def check(self, value: Any) -> str:
        if not isinstance(value, str):
            raise Invalid()
        if value == "":
            return value
        if not self._KEY.fullmatch(value) or "\u00a0" in value:
            raise Invalid()
        if value.lower().startswith("aws:"):
            raise Invalid("the prefix 'aws:' is reserved for AWS")
        return value


# ---- AWS ----------------------------------------------------------------------------------------

# aws_cdk.region_info.RegionInfo.regions of aws-cdk-lib 2.2xx (a test keeps the two equal).
KNOWN_REGIONS = (
    "af-south-1", "ap-east-1", "ap-east-2", "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-south-1",
    "ap-south-2", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3", "ap-southeast-4", "ap-southeast-5",
    "ap-southeast-6", "ap-southeast-7", "ca-central-1", "ca-west-1", "cn-north-1", "cn-northwest-1", "eu-central-1",
    "eu-central-2", "eu-isoe-west-1", "eu-north-1", "eu-south-1", "eu-south-2", "eu-west-1", "eu-west-2", "eu-west-3",
    "eusc-de-east-1", "il-central-1", "me-central-1", "me-south-1", "mx-central-1", "sa-east-1", "us-east-1",
    "us-east-2", "us-gov-east-1", "us-gov-west-1", "us-iso-east-1", "us-iso-west-1", "us-isob-east-1",
    "us-isob-west-1", "us-isof-east-1", "us-isof-south-1", "us-west-1", "us-west-2",
)  # fmt: skip


class Region(Rule):
    text = True
    allowed = "a known AWS region code such as 'eu-west-1'"

    def check(self, value: Any) -> str:
        if not isinstance(value, str) or value not in KNOWN_REGIONS:
            raise Invalid()
        return value


ACCOUNT = Pattern(r"\d{12}", "a 12-digit AWS account id such as '123456789012'")
STACK_NAME = Pattern(
    r"[A-Za-z][A-Za-z0-9-]{0,127}", "a CloudFormation stack name: a letter, then up to 127 letters, digits or '-'"
)
SECRET_ARN = Pattern(
    r"arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[\w/+=.@-]+-[A-Za-z0-9]{6}",
    "the complete ARN of a secret (with its 6-character suffix), "
    "such as 'arn:aws:secretsmanager:eu-west-1:123456789012:secret:gitlab-token-AbCdEf'",
)
KMS_KEY_ARN = Pattern(
    r"arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[a-zA-Z0-9-]+",
    "a KMS key ARN such as 'arn:aws:kms:eu-west-1:123456789012:key/<key id>' (not an alias)",
)
SNS_TOPIC_ARN = Pattern(r"arn:aws[\w-]*:sns:[a-z0-9-]+:\d{12}:[\w.-]{1,256}", "an SNS topic ARN", re.ASCII)
VPC_ID = Pattern(r"vpc-[0-9a-f]{8,17}", "a VPC id such as 'vpc-0123456789abcdef0'")
SUBNET_ID = Pattern(r"subnet-[0-9a-f]{8,17}", "a subnet id such as 'subnet-0123456789abcdef0'")
OU_ID = Pattern(r"ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}", "an organizational unit id such as 'ou-ab12-34cd56ef'")
OU_OR_ROOT_ID = Pattern(
    r"ou-[0-9a-z]{4,32}-[a-z0-9]{8,32}|r-[0-9a-z]{4,32}", "an organizational unit id such as 'ou-ab12-34cd56ef' or a root id such as 'r-ab12'"
)
# Member role names get "-rotation" / "-revocation" appended: IAM's 64 characters minus the longer suffix.
MEMBER_ROLE_NAME = Pattern(
    r"[\w+=,.@-]{1,53}", "an IAM role name of 1 to 53 letters, digits and +=,.@_- (the suffixes '-rotation' and '-revocation' are appended)", re.ASCII
)
SLACK_WORKSPACE_ID = Pattern(r"[0-9A-Z]{1,255}", "a Slack workspace (team) id such as 'T0123456789'")
SLACK_CHANNEL_ID = Pattern(r"[A-Za-z0-9]{1,255}", "a Slack channel id such as 'C0123456789'")
SECURITY_GROUP_ID = Pattern(r"sg-[0-9a-f]{8,17}", "a security group id such as 'sg-0123456789abcdef0'")
EMAIL = Pattern(r"[^@\s]+@[^@\s]+\.[^@\s]+", "an e-mail address such as 'platform-team@example.com'")
# CloudWatch Logs accepts only these retention periods (days); another value fails the deployment.
LOG_RETENTION_DAYS = (
    1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
)  # fmt: skip


# ---- EventBridge schedules ----------------------------------------------------------------------

_CRON = re.compile(r"cron\((?P<body>[^()]*)\)")
_RATE = re.compile(r"rate\((?P<value>\d+) (?P<unit>minutes?|hours?|days?)\)")
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


class Schedule(Rule):
    text = True
    allowed = (
        "an EventBridge schedule in UTC: 'cron(minutes hours day-of-month month day-of-week year)' with '?' in "
        "exactly one of day-of-month and day-of-week, e.g. 'cron(55 23 ? * FRI *)', or 'rate(N minutes|hours|days)'"
    )

    def check(self, value: Any) -> str:
        problem = schedule_problem(value)
        if problem:
            raise Invalid(problem)
        return value


def schedule_problem(expression: Any) -> str | None:
    if not isinstance(expression, str):
        return f"a {type(expression).__name__}, not a string"
    rate = _RATE.fullmatch(expression)
    if rate:
        value, unit = int(rate.group("value")), rate.group("unit")
        if value < 1:
            return "a rate must be at least 1"
        if (value == 1) != (not unit.endswith("s")):
            return f"EventBridge wants the singular for 1 and the plural otherwise ('rate(1 day)', 'rate(2 days)')"
        return None
    match = _CRON.fullmatch(expression)
    if not match:
        return "it is neither cron(...) nor rate(...)"
    fields = match.group("body").split()
    if len(fields) != 6:
        return f"{len(fields)} fields instead of 6"
    for value, (name, low, high, names, extra) in zip(fields, _CRON_FIELDS, strict=True):
        problem = _cron_field_problem(value, low, high, names, extra)
        if problem:
            return f"{name} field {value!r}: {problem}"
    if (fields[2] == "?") == (fields[4] == "?"):
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


# ---- GitLab -------------------------------------------------------------------------------------


class GitLabUrl(Rule):
    """The base URL of GitLab: https, a host (and port), an optional path for a GitLab under a
    relative URL; no credentials, query, fragment, or ``/api/v4`` (the client adds it)."""

    text = True

    allowed = (
        "the https:// base URL of GitLab, such as 'https://gitlab.com' or 'https://gitlab.example.com:8443/gitlab', "
        "without credentials, query, fragment or /api/v4"
    )
    _HOST = re.compile(r"[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\]")

    def check(self, value: Any) -> str:
        if not isinstance(value, str) or any(c.isspace() for c in value):
            raise Invalid()
        try:
            parts = urlsplit(value)
            port = parts.port
        except ValueError:
            raise Invalid("it is not a well-formed URL") from None
        if parts.scheme != "https":
            raise Invalid("the scheme must be https")
        if "@" in parts.netloc:
            raise Invalid("credentials do not belong in the URL (they would sit in the template in clear): put a token into the token secret")
        host = parts.netloc.rsplit(":", 1)[0] if port is not None else parts.netloc
        if not host or not self._HOST.fullmatch(host):
            raise Invalid("it has no valid host")
        if parts.query or parts.fragment or value.endswith(("?", "#")):
            raise Invalid("a query or fragment does not belong in the base URL")
        path = parts.path.rstrip("/")
        if re.search(r"/api(/v\d+)?\Z", path):
            raise Invalid("drop the trailing /api/v4: the client adds it")
        return value.rstrip("/")

    def show(self, value: Any) -> str:
        if isinstance(value, str) and "@" in value:
            scheme, sep, rest = value.partition("://")
            authority, slash, path = rest.partition("/")
            credentials, _, host = authority.rpartition("@")
            user = credentials.split(":", 1)[0]
            value = f"{scheme}{sep}{user}:***@{host}{slash}{path}" if ":" in credentials else f"{scheme}{sep}***@{host}{slash}{path}"
        return repr(value)


VARIABLE_KEY = Pattern(r"[a-zA-Z0-9_]{1,255}", "a GitLab variable key of 1 to 255 letters, digits or '_'")


class EnvironmentScope(Rule):
    """GitLab's ``environment_scope``: ``*``, an environment name, or a pattern with ``*``
    (``review/*``); letters, digits, spaces and ``_/${}.-*``, 1 to 255 characters."""

    text = True

    allowed = (
        "'*' (every environment), an environment name or a wildcard pattern such as 'review/*': "
        "1 to 255 letters, digits, spaces and '_/${}.-*'"
    )
    _SCOPE = re.compile(r"[a-zA-Z0-9_/${}. *-]{1,255}")

    def check(self, value: Any) -> str:
        if not isinstance(value, str) or not self._SCOPE.fullmatch(value):
            raise Invalid()
        if value != value.strip():
            raise Invalid("GitLab strips leading and trailing spaces, so the variable would land at another scope")
        return value


class TargetId(Rule):
    """A GitLab group or project: its numeric id, or its full path (``group/sub/project``)."""

    allowed = (
        "a numeric id such as 1234 or a full path such as 'my-group/sub-group/my-project' "
        "(letters, digits, '_', '-', '.'; no URL, no leading or trailing '/')"
    )
    _SEGMENT = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")

    def check(self, value: Any) -> str:
        if isinstance(value, int) and not isinstance(value, bool):
            if value < 1:
                raise Invalid("numeric ids start at 1")
            return str(value)
        if not isinstance(value, str) or not value:
            raise Invalid()
        if value.isdigit():
            if int(value) < 1:
                raise Invalid("numeric ids start at 1")
            return value
        if "://" in value or value.lower().startswith(("gitlab.", "www.")):
            raise Invalid("it is a URL: give the path after the host, e.g. 'grp/proj' for https://gitlab.com/grp/proj")
        if value.startswith("/") or value.endswith("/"):
            raise Invalid("no leading or trailing '/'")
        for segment in value.split("/"):
            if not self._SEGMENT.fullmatch(segment) or segment.endswith((".git", ".atom", ".")):
                raise Invalid(f"segment {segment!r} is not a GitLab path")
        return value


DESCRIPTION = Text(255, one_line=False)


# ---- files --------------------------------------------------------------------------------------

_PEM_BLOCK = re.compile(rb"-----BEGIN CERTIFICATE-----(?P<body>.*?)-----END CERTIFICATE-----", re.DOTALL)


def pem_problem(content: bytes) -> str | None:
    """Why ``content`` is not a PEM bundle of certificates, or None."""
    blocks = list(_PEM_BLOCK.finditer(content))
    if not blocks:
        return "it holds no '-----BEGIN CERTIFICATE----- ... -----END CERTIFICATE-----' block: give a PEM file"
    for number, block in enumerate(blocks, start=1):
        try:
            der = base64.b64decode(b"".join(block.group("body").split()), validate=True)
        except (binascii.Error, ValueError):
            return f"certificate {number} is not base64"
        if not der.startswith(b"\x30"):
            return f"certificate {number} is not a DER certificate"
    return None


# The directory relative paths in the settings are taken from (the CDK app's directory).
BASE_DIR: ContextVar[Path] = ContextVar("BASE_DIR", default=Path("."))


class PemFile(Rule):
    """A path (relative to ``BASE_DIR``) of a readable PEM bundle; returns the absolute ``Path``."""

    text = True

    allowed = "the path of a PEM file of CA certificates (relative to the app's directory)"

    def check(self, value: Any) -> Path:
        if isinstance(value, Path):
            path = value
        elif isinstance(value, str) and value:
            path = Path(value)
        else:
            raise Invalid()
        path = (BASE_DIR.get() / path).resolve()
        if not path.is_file():
            raise Invalid(f"{str(path)!r} is not a file")
        problem = pem_problem(path.read_bytes())
        if problem:
            raise Invalid(f"{path.name}: {problem}")
        return path


class AbsolutePath(Rule):
    text = True
    allowed = "an absolute path"

    def check(self, value: Any) -> str:
        if not isinstance(value, str) or not value.startswith("/"):
            raise Invalid()
        return value


class AccountsOrOrganization(Rule):
    """``"organization"`` (every ACTIVE account), or a non-empty list of distinct 12-digit account ids."""

    allowed = "'organization' or a non-empty list of distinct 12-digit account ids (as strings)"

    def check(self, value: Any) -> Any:
        if value == "organization":
            return value
        return ListOf(ACCOUNT, min_items=1).check(value)


class ListOf(Rule):
    """A JSON list of ``rule`` values; ``unique`` refuses repeats (compared without case, as IAM does)."""

    def __init__(self, rule: Rule, min_items: int = 0, unique: bool = True):
        self.rule, self.min_items, self.unique = rule, min_items, unique
        self.allowed = (
            f"a {'non-empty ' if min_items else ''}list, each item {rule.allowed}"
            + (", none repeated (case-insensitive)" if unique else "")
        )

    def check(self, value: Any) -> list:
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            raise Invalid("not a list")
        if len(value) < self.min_items:
            raise Invalid("it is empty")
        items = []
        for index, item in enumerate(value):
            try:
                items.append(self.rule.check(item))
            except Invalid as error:
                raise Invalid(f"item [{index}] {self.rule.show(item)} is not {self.rule.allowed}" + (f": {error}" if str(error) else "")) from None
        if self.unique:
            seen: dict[str, int] = {}
            for index, item in enumerate(items):
                folded = str(item).casefold()
                if folded in seen:
                    raise Invalid(f"item [{index}] {item!r} repeats item [{seen[folded]}]")
                seen[folded] = index
        return items
