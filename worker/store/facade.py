"""The Store: one object for callers, composed of the store's parts, one per concern."""

from __future__ import annotations

from worker.store.accounts import Accounts
from worker.store.apikeys import ApiKeys
from worker.store.channels import Channels
from worker.store.leases import Leases
from worker.store.messages import Messages
from worker.store.mo import MobileOriginated
from worker.store.parts import ConcatParts
from worker.store.routing import Routing
from worker.store.status import StatusPage


class Store(Messages, Channels, Leases, MobileOriginated, StatusPage, ApiKeys, Accounts,
            Routing, ConcatParts):
    """Typed operations on the key schema (see :mod:`worker.store.keys`). Owns no connection:
    the caller passes one.

    With ``acks.replicas`` set, the writes that carry a message's fate (accept, outcomes,
    receipts, MO) are followed by ``WAIT`` and raise :class:`NotReplicated` when it falls short.
    """
