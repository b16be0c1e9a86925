"""The admin API for SMPP users (``smsgw smpp-users`` over HTTP), ServiceStack style.

The same rules as for API keys (gateway/views/admin.py): an Admin manages every SMPP user; a
Partner manages the Client users of the accounts its own account owns (it creates a key for a
new account first, which makes the account its own) and never grants more than its own key has
(gateway/grants.py); a Client key manages nothing (403). A user the caller may not manage is
answered like an unknown one (404). The password is in the response of create and rotate, once.

    GET  /admin/smpp-users[?account=]           GetSmppUsers     list
    POST /admin/smpp-users                      CreateSmppUser   create (password, once)
    GET  /admin/smpp-users/{systemId}           GetSmppUser      show
    POST /admin/smpp-users/{systemId}/disable   DisableSmppUser
    POST /admin/smpp-users/{systemId}/enable    EnableSmppUser
    POST /admin/smpp-users/{systemId}/rotate    RotateSmppUser   new password, once
    PUT  /admin/smpp-users/{systemId}/senders   SetSmppUserSenders  source_addr it may use

and each DTO on the predefined routes /api/{Dto}, /json/reply/{Dto}, /xml/reply/{Dto}.
"""

from __future__ import annotations

from aiohttp import web

from gateway import wire
from gateway.auth import Principal, checked_senders, parse_expiry
from gateway.context import GATEWAY
from gateway.dto import (
    CreateSmppUser,
    DisableSmppUser,
    EnableSmppUser,
    GetSmppUser,
    GetSmppUsers,
    RotateSmppUser,
    SetSmppUserSenders,
    SmppUserInfo,
    SmppUserResponse,
    SmppUsersResponse,
)
from gateway.errors import BadRequest, Forbidden, NotFound
from gateway.respond import respond
from gateway.smpp_server.users import (
    DEFAULT_MAX_BINDS,
    SmppUser,
    SmppUserSpec,
    all_users,
    create_user,
    rotate_password,
    user_of,
)
from gateway.views.granting import (
    manager,
    may_grant,
    may_manage,
    may_set_senders,
    within_creator,
)
from gateway.views.params import Handler, add_predefined, body_dto, query
from worker.senders import stored
from worker.store import now_ms
from worker.store.smpp_server import SmppServerStore

PATH = "/admin/smpp-users"


async def list_users(request: web.Request) -> web.Response:
    """GetSmppUsers: every user the caller may manage (optionally of one account)."""
    principal = await manager(request)
    account = query(request, "account") or (await body_dto(request, GetSmppUsers)).account
    users = [u for u in await all_users(_store(request), account or "")
             if may_manage(principal, u)]
    return _respond_users(request, users)


async def create(request: web.Request) -> web.Response:
    """CreateSmppUser: the password is in the response, and nowhere else, ever."""
    principal = await manager(request)
    dto = await body_dto(request, CreateSmppUser)
    spec = _spec(dto)
    if "Admin" not in principal.roles:
        spec = _within_partner(principal, spec, channels_given=dto.channels is not None,
                               senders_given=dto.senders is not None)
    password, user = await create_user(_store(request), spec)
    return _respond(request, user, password)


async def show(request: web.Request) -> web.Response:
    """GetSmppUser."""
    _, user = await _managed(request, GetSmppUser)
    return _respond(request, user)


async def rotate(request: web.Request) -> web.Response:
    """RotateSmppUser: a new password, in the response once; the old one stops working."""
    principal, user = await _managed(request, RotateSmppUser)
    may_grant(principal, user, "an SMPP user")
    password = await rotate_password(_store(request), user.system_id)
    if password is None:  # gone meanwhile
        raise _not_found(user.system_id)
    return _respond(request, await _fresh(request, user), password)


async def set_senders(request: web.Request) -> web.Response:
    """SetSmppUserSenders: replace the source_addr values the user may submit with."""
    principal, user = await _managed(request, SetSmppUserSenders)
    senders = checked_senders((await body_dto(request, SetSmppUserSenders)).senders or [])
    may_set_senders(principal, senders, "an SMPP user")
    if not await _store(request).change_user(user.system_id, "senders", stored(senders)):
        raise _not_found(user.system_id)
    return _respond(request, await _fresh(request, user))


def _change(op: str, model: type[wire.Model]) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        principal, user = await _managed(request, model)
        if op == "enable":
            may_grant(principal, user, "an SMPP user")
        if not await _store(request).change_user(user.system_id, op):
            raise _not_found(user.system_id)
        return _respond(request, await _fresh(request, user))

    handler.__doc__ = f"{model.__name__}."
    return handler


enable = _change("enable", EnableSmppUser)
disable = _change("disable", DisableSmppUser)


def add_routes(router: web.UrlDispatcher) -> None:
    """The SMPP user routes (see the module docstring)."""
    for suffix in ("", ".json", ".xml"):
        router.add_get(PATH + suffix, list_users)
        router.add_post(PATH + suffix, create)
    router.add_get(PATH + "/{systemId}", show)
    for action, handler in (("enable", enable), ("disable", disable), ("rotate", rotate)):
        router.add_post(f"{PATH}/{{systemId}}/{action}", handler)
    router.add_put(PATH + "/{systemId}/senders", set_senders)
    add_predefined(
        router, (GetSmppUsers, list_users), (CreateSmppUser, create), (GetSmppUser, show),
        (EnableSmppUser, enable), (DisableSmppUser, disable), (RotateSmppUser, rotate),
        (SetSmppUserSenders, set_senders),
    )


def to_dto(user: SmppUser) -> SmppUserInfo:
    """A user as its DTO (the same values ``smsgw smpp-users list --json`` shows)."""
    return SmppUserInfo.model_validate(user.as_dict())


def _respond_users(request: web.Request, users: list[SmppUser]) -> web.Response:
    """GetSmppUsers' answer."""
    return respond(request, SmppUsersResponse(results=[to_dto(u) for u in users]))


def _respond(request: web.Request, user: SmppUser, password: str | None = None) -> web.Response:
    return respond(request, SmppUserResponse(password=password, smppUser=to_dto(user)))


def _store(request: web.Request) -> SmppServerStore:
    return SmppServerStore(request.app[GATEWAY].redis)


async def _fresh(request: web.Request, user: SmppUser) -> SmppUser:
    fields = await _store(request).user(user.system_id)
    return user_of(fields) if fields else user


async def _managed(request: web.Request, model: type[wire.Model]) -> tuple[Principal, SmppUser]:
    """The caller and the user the request names, if the caller may manage it; else 404."""
    principal = await manager(request)
    system_id = request.match_info.get("systemId") or query(request, "systemId") or str(
        getattr(await body_dto(request, model), "systemId", None) or "")
    system_id = system_id.removesuffix(".json").removesuffix(".xml")
    if not system_id:
        msg = "'systemId' is required"
        raise BadRequest(msg, field_errors=[("NotEmpty", "systemId", msg)])
    fields = await _store(request).user(system_id)
    user = user_of(fields) if fields else None
    if user is None or not may_manage(principal, user):
        raise _not_found(system_id)
    return principal, user


def _spec(dto: CreateSmppUser) -> SmppUserSpec:
    channels = dto.channels
    return SmppUserSpec(
        system_id=dto.systemId or "", account=dto.account or "",
        roles=frozenset(dto.roles or ["Client"]),
        channels=None if channels is None or channels == ["*"] else frozenset(channels),
        rate=dto.rate or 0, burst=dto.burst or 0, daily_quota=dto.dailyQuota or 0,
        expires_at_ms=parse_expiry(dto.expiresAt or "", now_ms()),
        max_binds=DEFAULT_MAX_BINDS if dto.maxBinds is None else dto.maxBinds,
        senders=checked_senders(dto.senders or []),
    )


def _within_partner(principal: Principal, spec: SmppUserSpec, *,
                    channels_given: bool, senders_given: bool) -> SmppUserSpec:
    """A Partner's new user: a Client of an account it owns, its unset limits the Partner's
    own, never more (else Forbidden)."""
    if spec.roles != {"Client"}:
        raise Forbidden("a Partner may create only Client SMPP users")
    if spec.account not in principal.children:
        raise Forbidden(f"a Partner's SMPP users belong to accounts of '{principal.account}' "
                        "(create an API key for a new account first)")
    return within_creator(principal, spec, channels_given=channels_given,
                          senders_given=senders_given, noun="an SMPP user")


def _not_found(system_id: str) -> NotFound:
    return NotFound(f"no SMPP user '{system_id}'")
