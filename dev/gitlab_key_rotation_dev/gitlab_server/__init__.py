"""The project's GitLab API server for tests and the local end-to-end run.

It follows ../shared/GITLAB_API.md: personal access tokens (scopes, expiry, revocation,
self-rotation), groups and projects by numeric id or URL-encoded full path, roles, the CI/CD
variables API with environment scopes, masking, pagination and GitLab's exact error bodies, plus
injected faults (429, 5xx, resource locks, timeouts, lost answers, dropped connections, writes
applied late), a per-token rate limit as GitLab's throttle enforces it, and request counts.

    from gitlab_key_rotation_dev.gitlab_server import OWNER, GitLabServer, late_write, rate_limited

    with GitLabServer(tls=True) as gitlab:
        ...

See ``GitLabServer`` for the whole API.
"""

from gitlab_key_rotation_dev.gitlab_server.faults import (
    PLAIN_RATE_LIMIT_BODY,
    Fault,
    LoggedRequest,
    late_write,
    rate_limited,
)
from gitlab_key_rotation_dev.gitlab_server.model import (
    DEVELOPER,
    GUEST,
    MAINTAINER,
    OWNER,
    REPORTER,
    Group,
    Project,
    Token,
    User,
    Variable,
)
from gitlab_key_rotation_dev.gitlab_server.server import GitLabServer

__all__ = [
    "DEVELOPER",
    "GUEST",
    "MAINTAINER",
    "OWNER",
    "PLAIN_RATE_LIMIT_BODY",
    "REPORTER",
    "Fault",
    "GitLabServer",
    "Group",
    "LoggedRequest",
    "Project",
    "Token",
    "User",
    "Variable",
    "late_write",
    "rate_limited",
]
