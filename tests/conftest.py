"""Suite-wide: every test runs under the log guard of ``tests/log_guard.py`` (a log record that
carries an access key secret or a GitLab token fails the test)."""

from gitlab_key_rotation_dev.log_guard import no_secret_in_logs, pytest_configure  # noqa: F401  (fixture and hook)
