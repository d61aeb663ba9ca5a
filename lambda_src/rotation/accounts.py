"""Organization mode for the rotation: each user's IAM calls go to the IAM of the user's account.

``AccountRoutedIamKeys`` is the ``IamKeys`` port the run sees: a user without ``account`` is
served by the function's own IAM (as before), a user with one by that account's member role
(``common.assume_role.MemberSessions``, built by ``rotation.composition``). The state secrets, the
GitLab token and SNS stay in the hub. The STS check of a new key needs no role at all: it is
signed by the new key itself, so it works the same for a key of any account.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from ..common.assume_role import AccountAccessError
from .errors import AccountUnreachableError
from .ports import AccessKey, IamKeys, KeyStatus, NewAccessKey
from .settings import RotatedUser


class AccountRoutedIamKeys:
    """``rotation.ports.IamKeys`` that sends each call to the IAM of the user's account.

    ``iam_in(account)`` builds the IAM of an account (raising ``AccountAccessError`` when its member
    role cannot be assumed); each account's is built once, on first use.
    """

    def __init__(self, home: IamKeys, users: Sequence[RotatedUser], iam_in: Callable[[str], IamKeys]):
        self._home = home
        self._account_of = {user.iam_user: user.account for user in users if user.account}
        self._iam_in = iam_in
        self._by_account: dict[str, IamKeys] = {}
        self._lock = threading.Lock()

    def _iam(self, user: str) -> IamKeys:
        account = self._account_of.get(user)
        if account is None:
            return self._home
        with self._lock:
            if account not in self._by_account:
                try:
                    self._by_account[account] = self._iam_in(account)
                except AccountAccessError as exc:
                    raise AccountUnreachableError(f"IAM user {user}: {exc}") from None
            return self._by_account[account]

    def list_keys(self, user: str) -> list[AccessKey]:
        return self._iam(user).list_keys(user)

    def create_key(self, user: str) -> NewAccessKey:
        return self._iam(user).create_key(user)

    def set_status(self, user: str, key_id: str, status: KeyStatus) -> None:
        self._iam(user).set_status(user, key_id, status)

    def delete_key(self, user: str, key_id: str) -> None:
        self._iam(user).delete_key(user, key_id)
