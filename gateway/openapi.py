"""The OpenAPI 3 document (``/openapi.json``) and a plain HTML docs page (``/docs``).

Schemas come from the DTOs themselves, so the document cannot drift from the wire.
"""

from __future__ import annotations

import html
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from gateway import dto

SEND = "/communication/message/smpp/sms"
_REF = "#/components/schemas/"


def _body(model: type[BaseModel]) -> dict[str, Any]:
    ref = {"$ref": _REF + model.__name__}
    return {"content": {"application/json": {"schema": ref},
                        "application/xml": {"schema": ref}}}


def _responses(model: type[BaseModel], *extra: int) -> dict[str, Any]:
    errors = {400: "Malformed body or invalid request", 401: "No or unknown API key",
              403: "Missing role", 404: "Unknown id or route", 413: "Body too large",
              429: "Rate limited (see Retry-After)", 503: "Storage unavailable, nothing stored"}
    out: dict[str, Any] = {"200": {"description": "OK", **_body(model)}}
    for code in (400, 401, 403, *extra):
        out[str(code)] = {"description": errors[code], **_body(dto.SMPPMsgResponse)}
    return out


def _op(summary: str, op_id: str, response: type[BaseModel], *, request: type[BaseModel] |
        None = None, params: list[dict[str, Any]] | None = None, extra: tuple[int, ...] = ()
        ) -> dict[str, Any]:
    op: dict[str, Any] = {"summary": summary, "operationId": op_id,
                          "security": [{"bearer": []}, {"basic": []}],
                          "responses": _responses(response, *extra)}
    if request is not None:
        op["requestBody"] = {"required": True, **_body(request)}
    if params:
        op["parameters"] = params
    return op


def _param(name: str, where: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": where, "required": where == "path",
            "schema": {"type": "string"}, "description": description}


# The admin and MO operations, documented on their predefined /json/reply/ route (each is also
# served on /api/, /xml/reply/ and its custom route; see /docs).
_ADMIN_AND_MO: tuple[tuple[type[BaseModel], type[BaseModel]], ...] = (
    (dto.GetApiKeys, dto.ApiKeysResponse), (dto.CreateApiKey, dto.ApiKeyResponse),
    (dto.GetApiKey, dto.ApiKeyResponse), (dto.EnableApiKey, dto.ApiKeyResponse),
    (dto.DisableApiKey, dto.ApiKeyResponse), (dto.RotateApiKey, dto.ApiKeyResponse),
    (dto.DeleteApiKey, dto.ApiKeyResponse),
    (dto.GetAccountWebhooks, dto.AccountWebhooksResponse),
    (dto.SetAccountCallback, dto.AccountWebhooksResponse),
    (dto.DeleteAccountCallback, dto.AccountWebhooksResponse),
    (dto.SetInboundUrl, dto.AccountWebhooksResponse),
    (dto.DeleteInboundUrl, dto.AccountWebhooksResponse),
    (dto.GetDeadWebhooks, dto.DeadWebhooksResponse),
    (dto.ReplayDeadWebhooks, dto.ReplayDeadWebhooksResponse),
    (dto.GetSMPPMoMessages, dto.SMPPMoResponse),
    (dto.GetAccount, dto.AccountResponse), (dto.UpdateAccount, dto.AccountResponse),
    (dto.GetChannelNumbers, dto.ChannelNumbersResponse),
    (dto.GetChannelNumber, dto.ChannelNumberResponse),
    (dto.AssignChannelNumber, dto.ChannelNumberResponse),
    (dto.UnassignChannelNumber, dto.ChannelNumberResponse),
)


def document() -> dict[str, Any]:
    """The whole OpenAPI 3.0 document."""
    send = _op("Sends an SMS to phone numbers provided.", "SendSMPPSmsRequest",
               dto.SMPPMsgResponse, request=dto.SendSMPPSmsRequest, extra=(413, 429, 503))
    by_id = _op("Status of one message", "GetSMPPSmsStatus", dto.SMPPStatusResponse,
                params=[_param("apiMessageId", "path", "id returned by the send operation")],
                extra=(404,))
    by_cmid = _op("Status of every recipient of a clientMessageId", "FindSMPPSmsStatus",
                  dto.SMPPStatusResponse,
                  params=[_param("clientMessageId", "query", "your id of the message")],
                  extra=(404,))
    batch = _op("Status of up to 1000 messages", "GetSMPPSmsStatusBatch",
                dto.SMPPStatusResponse,
                params=[_param("apiMessageIds", "query", "comma-separated ids")])
    paths: dict[str, Any] = {
        SEND: {"post": send, "get": by_cmid},
        SEND + "/{apiMessageId}": {"get": by_id},
        SEND + "/status": {"get": batch},
    }
    for prefix in ("/api/", "/json/reply/", "/xml/reply/"):
        paths[prefix + "SendSMPPSmsRequest"] = {"post": {**send, "operationId": (
            f"SendSMPPSmsRequest_{prefix.strip('/').replace('/', '_')}")}}
    for request, response in _ADMIN_AND_MO:
        doc = (request.__doc__ or request.__name__).strip().splitlines()[0]
        paths["/json/reply/" + request.__name__] = {"post": _op(
            doc, request.__name__, response, request=request, extra=(404,))}
    models: list[type[BaseModel]] = [
        dto.SendSMPPSmsRequest, dto.SMPPMsgResponse, dto.SMPPStatusResponse,
        *(m for pair in _ADMIN_AND_MO for m in pair)]
    schemas: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template=_REF + "{model}")
        schemas.update(schema.pop("$defs", {}))
        schemas[model.__name__] = schema
    return {
        "openapi": "3.0.3",
        "info": {"title": "smsgw", "version": "0.1.0",
                 "description": "ServiceStack-compatible HTTP to SMPP gateway. Requires any "
                                "of the roles Client, Admin, Partner."},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "basic": {"type": "http", "scheme": "basic",
                      "description": "the API key as user name, empty password"}}},
    }


async def openapi_json(request: web.Request) -> web.Response:
    """GET /openapi.json"""
    return web.json_response(document())


async def docs_page(request: web.Request) -> web.Response:
    """GET /docs: every operation and its routes, no external assets."""
    rows = []
    for path, ops in document()["paths"].items():
        for method, op in ops.items():
            rows.append(f"<tr><td><code>{method.upper()}</code></td>"
                        f"<td><code>{html.escape(path)}</code></td>"
                        f"<td>{html.escape(op['summary'])}</td></tr>")
    page = (
        "<!doctype html><html><head><meta charset='utf-8'><title>smsgw API</title>"
        "<style>body{font-family:sans-serif;margin:2em}td{padding:.3em 1em;"
        "border-bottom:1px solid #ddd}</style></head><body><h1>smsgw API</h1>"
        "<p>Credentials: <code>Authorization: Bearer &lt;key&gt;</code> or HTTP Basic with the"
        " key as user name. Bodies and responses in JSON or XML (DataContract); the response"
        " format follows a <code>.json</code>/<code>.xml</code> suffix, <code>?format=</code>,"
        " then <code>Accept</code>. Machine-readable: <a href='/openapi.json'>openapi.json</a>."
        "</p><table>" + "".join(rows) + "</table></body></html>")
    return web.Response(text=page, content_type="text/html")
