"""Accounts' parents, set explicitly: the operation the admin API and ``smsgw accounts`` share.

An account's parent is the Partner account that owns it. A Partner that creates a key for a new
account becomes its parent (ownership 'Partner'), and can never claim an account that exists
already. Only an Admin sets or clears a parent on an existing account (ownership 'Admin'); an
Admin creating a key for an existing account sees its parent in the answer.
"""

from __future__ import annotations

from gateway.errors import InvalidField, UnknownAccount
from worker.config import ACCOUNT_NAME
from worker.store import AccountRow, Store


class InvalidParent(InvalidField):
    """A parent that cannot be set; ``field`` names the culprit."""


async def set_parent(store: Store, account: str, parent: str) -> AccountRow:
    """Set (``parent`` '' clears) an account's parent; the account as it now is."""
    if parent and not ACCOUNT_NAME.fullmatch(parent):
        raise InvalidParent("parentAccount", "'parentAccount' must be an account name")
    if parent == account:
        raise InvalidParent("parentAccount", "an account cannot be its own parent")
    outcome = await store.set_parent(account, parent)
    if outcome == "unknown-parent":
        raise InvalidParent("parentAccount", f"no account '{parent}' to be the parent")
    row = await store.account(account) if outcome == "ok" else None
    if row is None:
        raise UnknownAccount(account)
    return row
