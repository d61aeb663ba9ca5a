"""The one error base of both Lambdas.

An ``OperatorError``'s message is written for the operator: it names what is wrong and what to do,
and it carries no secret (key ids, names and ARNs only). Reports and summaries show it as it is;
any other error is shown with its type (``describe``).
"""

from __future__ import annotations


class OperatorError(Exception):
    """Base class of the errors whose message is fit for the operator as it stands."""


def describe(error: Exception) -> str:
    """The text a report gives for ``error``: an ``OperatorError``'s message is written for the
    operator; any other error is named by its type as well."""
    return str(error) if isinstance(error, OperatorError) else f"{type(error).__name__}: {error}"
