"""Admin API for accounts: their parent (gateway/accounts.py).

    GET          /admin/accounts/{account}     GetAccount
    PUT|POST     /admin/accounts/{account}     UpdateAccount {parentAccount}  (Admin only)

and each DTO on the predefined routes. An Admin sees every account, a Partner its own and the
accounts it owns (others look unknown: 404); only an Admin changes a parent (403).
"""

from __future__ import annotations

from aiohttp import web

from gateway import wire
from gateway.accounts import set_parent
from gateway.auth import ADMIN_ROLES, Principal, iso
from gateway.context import GATEWAY
from gateway.dto import AccountInfo, AccountResponse, GetAccount, UpdateAccount
from gateway.errors import BadRequest, UnknownAccount
from gateway.respond import respond
from gateway.views.granting import manager
from gateway.views.params import add_predefined, body_dto, query
from gateway.views.webhooks import may_manage_account
from worker.store import AccountRow

ACCOUNT_PATH = "/admin/accounts/{account}"


async def show(request: web.Request) -> web.Response:
    """GetAccount."""
    principal, account, _ = await _account(request, GetAccount)
    row = await request.app[GATEWAY].store.account(account)
    if row is None or not may_manage_account(principal, account):
        raise UnknownAccount(account)
    return respond(request, AccountResponse(account=to_dto(row)))


async def update(request: web.Request) -> web.Response:
    """UpdateAccount: the parent is what the request says (none: no parent)."""
    principal, account, dto = await _account(request, UpdateAccount)
    principal.require_any(ADMIN_ROLES)
    parent = str(getattr(dto, "parentAccount", None) or "")
    row = await set_parent(request.app[GATEWAY].store, account, parent)
    return respond(request, AccountResponse(account=to_dto(row)))


def add_routes(router: web.UrlDispatcher) -> None:
    """The routes of the module docstring."""
    router.add_get(ACCOUNT_PATH, show)
    router.add_put(ACCOUNT_PATH, update)
    router.add_post(ACCOUNT_PATH, update)
    add_predefined(router, (GetAccount, show), (UpdateAccount, update))


def to_dto(row: AccountRow) -> AccountInfo:
    """An account as its DTO."""
    return AccountInfo(account=row.account, parentAccount=row.parent or None,
                       ownership=row.ownership or None, createdAt=iso(row.created_at_ms))


async def _account(request: web.Request, model: type[wire.Model]
                   ) -> tuple[Principal, str, wire.Model]:
    principal = await manager(request)
    dto = await body_dto(request, model)
    account = (request.match_info.get("account") or query(request, "account")
               or getattr(dto, "account", None) or "")
    if not account:
        raise BadRequest("'account' is required",
                         field_errors=[("NotEmpty", "account", "'account' is required")])
    return principal, str(account), dto

