"""Every public operation once: its request and response DTOs, custom routes and roles.

The developer surface reads this catalogue: the native types (``gateway.nativetypes``), the
metadata pages and the OpenAPI document. The routes themselves are registered by the views;
``tests/unit/test_native_types.py`` checks that each route listed here is one the app serves
and each operation the app serves is listed, so this list and the router cannot drift apart.
"""

from __future__ import annotations

from dataclasses import dataclass

from pydantic import BaseModel

from gateway import dto
from gateway.auth import MANAGE_ROLES, ROLES, SEND_ROLES

SMS = "/communication/message/smpp/sms"
KEYS = "/admin/keys"
SMPP_USERS = "/admin/smpp-users"
ACCOUNT = "/admin/accounts/{account}"
DEAD = "/admin/webhooks/dead"
MO = "/communication/message/smpp/mo"
NUMBERS = "/admin/channels/{channel}/numbers"
ROUTES = "/admin/routes"
# Every operation is also served on these, as ServiceStack serves each request DTO.
PREDEFINED = ("/api/", "/json/reply/", "/xml/reply/")


@dataclass(frozen=True, slots=True)
class Route:
    path: str
    verbs: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Operation:
    request: type[BaseModel]
    response: type[BaseModel]
    routes: tuple[Route, ...]
    roles: tuple[str, ...]  # any one of them passes (Admin passes every check)
    tag: str

    @property
    def name(self) -> str:
        return self.request.__name__

    @property
    def summary(self) -> str:
        """The request DTO's docstring, first line."""
        return (self.request.__doc__ or self.name).strip().splitlines()[0]

    @property
    def verb(self) -> str:
        """The verb a generic client uses (``getMethod()``): the first route's first."""
        return self.routes[0].verbs[0]


def _ordered(roles: frozenset[str]) -> tuple[str, ...]:
    return tuple(r for r in ROLES if r in roles)


_SEND, _MANAGE = _ordered(SEND_ROLES), _ordered(MANAGE_ROLES)
_ADMIN = ("Admin",)


def _op(request: type[BaseModel], response: type[BaseModel], roles: tuple[str, ...], tag: str,
        *routes: tuple[str, str]) -> Operation:
    return Operation(request, response, tuple(Route(p, tuple(v.split(","))) for p, v in routes),
                     roles, tag)


OPERATIONS: tuple[Operation, ...] = (
    _op(dto.SendSMPPSmsRequest, dto.SMPPMsgResponse, _SEND, "messages", (SMS, "POST")),
    _op(dto.GetSMPPSmsStatus, dto.SMPPStatusResponse, _SEND, "messages",
        (SMS + "/{apiMessageId}", "GET")),
    _op(dto.FindSMPPSmsStatus, dto.SMPPStatusResponse, _SEND, "messages", (SMS, "GET")),
    _op(dto.GetSMPPSmsStatusBatch, dto.SMPPStatusResponse, _SEND, "messages",
        (SMS + "/status", "GET,POST")),
    _op(dto.GetSMPPMoMessages, dto.SMPPMoResponse, _SEND, "messages", (MO, "GET")),
    _op(dto.GetApiKeys, dto.ApiKeysResponse, _MANAGE, "keys", (KEYS, "GET")),
    _op(dto.CreateApiKey, dto.ApiKeyResponse, _MANAGE, "keys", (KEYS, "POST")),
    _op(dto.GetApiKey, dto.ApiKeyResponse, _MANAGE, "keys", (KEYS + "/{id}", "GET")),
    _op(dto.EnableApiKey, dto.ApiKeyResponse, _MANAGE, "keys", (KEYS + "/{id}/enable", "POST")),
    _op(dto.DisableApiKey, dto.ApiKeyResponse, _MANAGE, "keys",
        (KEYS + "/{id}/disable", "POST")),
    _op(dto.RotateApiKey, dto.ApiKeyResponse, _MANAGE, "keys", (KEYS + "/{id}/rotate", "POST")),
    _op(dto.DeleteApiKey, dto.ApiKeyResponse, _MANAGE, "keys", (KEYS + "/{id}", "DELETE")),
    _op(dto.SetApiKeySenders, dto.ApiKeyResponse, _MANAGE, "keys",
        (KEYS + "/{id}/senders", "PUT")),
    _op(dto.GetSmppUsers, dto.SmppUsersResponse, _MANAGE, "smpp-users", (SMPP_USERS, "GET")),
    _op(dto.CreateSmppUser, dto.SmppUserResponse, _MANAGE, "smpp-users", (SMPP_USERS, "POST")),
    _op(dto.GetSmppUser, dto.SmppUserResponse, _MANAGE, "smpp-users",
        (SMPP_USERS + "/{systemId}", "GET")),
    _op(dto.EnableSmppUser, dto.SmppUserResponse, _MANAGE, "smpp-users",
        (SMPP_USERS + "/{systemId}/enable", "POST")),
    _op(dto.DisableSmppUser, dto.SmppUserResponse, _MANAGE, "smpp-users",
        (SMPP_USERS + "/{systemId}/disable", "POST")),
    _op(dto.RotateSmppUser, dto.SmppUserResponse, _MANAGE, "smpp-users",
        (SMPP_USERS + "/{systemId}/rotate", "POST")),
    _op(dto.SetSmppUserSenders, dto.SmppUserResponse, _MANAGE, "smpp-users",
        (SMPP_USERS + "/{systemId}/senders", "PUT")),
    _op(dto.GetAccountWebhooks, dto.AccountWebhooksResponse, _MANAGE, "webhooks",
        (ACCOUNT + "/webhooks", "GET")),
    _op(dto.SetAccountCallback, dto.AccountWebhooksResponse, _MANAGE, "webhooks",
        (ACCOUNT + "/callback", "PUT,POST")),
    _op(dto.DeleteAccountCallback, dto.AccountWebhooksResponse, _MANAGE, "webhooks",
        (ACCOUNT + "/callback", "DELETE")),
    _op(dto.SetInboundUrl, dto.AccountWebhooksResponse, _MANAGE, "webhooks",
        (ACCOUNT + "/inbound/{channel}", "PUT,POST")),
    _op(dto.DeleteInboundUrl, dto.AccountWebhooksResponse, _MANAGE, "webhooks",
        (ACCOUNT + "/inbound/{channel}", "DELETE")),
    _op(dto.GetDeadWebhooks, dto.DeadWebhooksResponse, _MANAGE, "webhooks", (DEAD, "GET")),
    _op(dto.ReplayDeadWebhooks, dto.ReplayDeadWebhooksResponse, _MANAGE, "webhooks",
        (DEAD + "/replay", "POST")),
    _op(dto.GetAccount, dto.AccountResponse, _MANAGE, "accounts", (ACCOUNT, "GET")),
    _op(dto.UpdateAccount, dto.AccountResponse, _ADMIN, "accounts", (ACCOUNT, "PUT,POST")),
    _op(dto.GetChannelNumbers, dto.ChannelNumbersResponse, _ADMIN, "numbers", (NUMBERS, "GET")),
    _op(dto.GetChannelNumber, dto.ChannelNumberResponse, _ADMIN, "numbers",
        (NUMBERS + "/{number}", "GET")),
    _op(dto.AssignChannelNumber, dto.ChannelNumberResponse, _ADMIN, "numbers",
        (NUMBERS + "/{number}", "PUT,POST")),
    _op(dto.UnassignChannelNumber, dto.ChannelNumberResponse, _ADMIN, "numbers",
        (NUMBERS + "/{number}", "DELETE")),
    _op(dto.GetRoutes, dto.RoutesResponse, _ADMIN, "routes", (ROUTES, "GET")),
)

BY_NAME = {op.name: op for op in OPERATIONS}
# The admin API's operations (all but sending, the status lookups and the MO listing), refused
# as webhook URLs on any host (gateway.webhook_config).
ADMIN_OPERATIONS = tuple(op.name for op in OPERATIONS if op.tag != "messages")
# Documented by the OpenAPI page with their own paths (gateway.openapi); the others on their
# predefined /json/reply/ route.
SEND_AND_STATUS = frozenset({"SendSMPPSmsRequest", "GetSMPPSmsStatus", "FindSMPPSmsStatus",
                             "GetSMPPSmsStatusBatch"})
