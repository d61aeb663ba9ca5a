"""The summary line both Lambdas log (``common.summary``): fields top-level, level by outcome, and
the package logger's level rule."""

from __future__ import annotations

import logging

import pytest

from gitlab_key_rotation.lambda_src.common.summary import handler_logger, log_summary
from gitlab_key_rotation_dev.log_records import fields


@pytest.mark.parametrize(("ok", "level"), [(True, logging.INFO), (False, logging.ERROR)])
def test_the_summary_line_carries_its_fields_top_level_at_the_level_of_its_outcome(caplog, ok, level):
    logger = logging.getLogger("summary_test.ok" if ok else "summary_test.failed")
    with caplog.at_level(logging.INFO):
        log_summary(logger, "job summary", {"event": "job_summary", "ok": ok, "users": [{"iam_user": "ci"}]}, ok=ok)
    [record] = caplog.records
    assert (record.getMessage(), record.levelno) == ("job summary", level)
    assert fields(record) == {"event": "job_summary", "ok": ok, "users": [{"iam_user": "ci"}]}


def test_a_handler_logger_puts_its_package_at_info_unless_a_level_was_chosen():
    chosen = logging.getLogger("summary_test_chosen")
    chosen.setLevel(logging.WARNING)
    try:
        assert handler_logger("summary_test_fresh.handler").name == "summary_test_fresh.handler"
        assert logging.getLogger("summary_test_fresh").level == logging.INFO
        assert logging.getLogger("summary_test_fresh.handler").getEffectiveLevel() == logging.INFO
        handler_logger("summary_test_chosen.handler")
        assert chosen.level == logging.WARNING
    finally:
        chosen.setLevel(logging.NOTSET)
        logging.getLogger("summary_test_fresh").setLevel(logging.NOTSET)


def test_both_handlers_keep_their_summary_line_at_info():
    from gitlab_key_rotation.lambda_src.revocation import handler as revocation
    from gitlab_key_rotation.lambda_src.rotation import handler as rotation

    for module in (rotation, revocation):
        assert module.__name__.endswith(".handler")
        assert logging.getLogger(module.__package__).level == logging.INFO
