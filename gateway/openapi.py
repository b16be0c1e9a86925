"""The OpenAPI 3 document (``/openapi.json``) and Swagger UI over it (``/docs``).

Schemas and examples come from the DTOs themselves, so the document cannot drift from the
wire. Swagger UI's files come from the installed ``swagger-ui-py`` package, never a CDN: the
page makes no request beyond this gateway (its CSP says so too).
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from gateway import dto, wire
from gateway.operations import OPERATIONS, SEND_AND_STATUS
from gateway.samples import sample

SEND = "/communication/message/smpp/sms"
_REF = "#/components/schemas/"


# The send operation's example: CONTRACT.md's sample exchange.
SEND_EXAMPLE = {"Messages": [{"channel": "default", "to": "+27820000000", "content": "Hello",
                              "clientMessageId": "abc-1"}]}


def _body(model: type[BaseModel], example: Any = None) -> dict[str, Any]:
    ref = {"$ref": _REF + model.__name__}
    if example is None:
        example = sample(model).model_dump(exclude_none=True)
    xml = wire.render(model.model_validate(example), "xml")[0].decode()
    return {"content": {"application/json": {"schema": ref, "example": example},
                        "application/xml": {"schema": ref, "example": xml}}}


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
        example = SEND_EXAMPLE if request is dto.SendSMPPSmsRequest else None
        op["requestBody"] = {"required": True, **_body(request, example)}
    if params:
        op["parameters"] = params
    return op


def _param(name: str, where: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": where, "required": where == "path",
            "schema": {"type": "string"}, "description": description}


# The admin and MO operations, documented on their predefined /json/reply/ route (each is also
# served on /api/, /xml/reply/ and its custom route; see /docs).
_ADMIN_AND_MO = tuple(op for op in OPERATIONS if op.name not in SEND_AND_STATUS)


@functools.cache
def document() -> dict[str, Any]:
    """The whole OpenAPI 3.0 document (built once: ~60 ms of examples for every model)."""
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
    for op in _ADMIN_AND_MO:
        paths["/json/reply/" + op.name] = {"post": _op(
            op.summary, op.name, op.response, request=op.request, extra=(404,))}
    models: list[type[BaseModel]] = [
        dto.SendSMPPSmsRequest, dto.SMPPMsgResponse, dto.SMPPStatusResponse,
        *(m for op in _ADMIN_AND_MO for m in (op.request, op.response))]
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
        "security": [{"bearer": []}, {"basic": []}],
        "components": {"schemas": schemas, "securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer",
                       "description": "Authorization: Bearer <API key>"},
            "basic": {"type": "http", "scheme": "basic",
                      "description": "the API key as user name, empty password"}}},
    }


async def openapi_json(request: web.Request) -> web.Response:
    """GET /openapi.json"""
    return web.json_response(document())


SWAGGER_UI = Path(str(resources.files("swagger_ui") / "static"))
ASSETS = {"swagger-ui.css": "text/css", "swagger-ui-bundle.js": "text/javascript",
          "favicon-32x32.png": "image/png"}
CSP = ("default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; "
       "form-action 'none'; frame-ancestors 'none'")
# Our own script, not inline, so the CSP needs no 'unsafe-inline' for scripts.
INIT_JS = """window.ui = SwaggerUIBundle({
  url: "/openapi.json", dom_id: "#swagger-ui", deepLinking: true, tryItOutEnabled: false,
  defaultModelsExpandDepth: 1, defaultModelExpandDepth: 3, validatorUrl: null,
  persistAuthorization: false, layout: "BaseLayout"
});
"""
PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8"><title>smsgw API</title>
<link rel="icon" href="/docs/favicon-32x32.png"><link rel="stylesheet" href="/docs/swagger-ui.css">
<style>body{margin:0;font-family:sans-serif}nav{padding:.6em 1.5em;background:#1b1b1b}
nav a{color:#fff;margin-right:1.5em}</style></head><body>
<nav><a href="/docs">API docs</a><a href="/openapi.json">openapi.json</a>
<a href="/metadata">metadata pages</a><a href="/types">native types</a>
<a href="/admin/status">status page</a></nav>
<div id="swagger-ui"></div>
<script src="/docs/swagger-ui-bundle.js"></script><script src="/docs/init.js"></script>
</body></html>
"""
_HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer"}


async def docs_page(request: web.Request) -> web.Response:
    """GET /docs: Swagger UI over /openapi.json; try-it-out sends to this gateway only."""
    return web.Response(text=PAGE, content_type="text/html", headers=_HEADERS)


async def docs_asset(request: web.Request) -> web.StreamResponse:
    """GET /docs/{asset}: Swagger UI's files from the installed package, and init.js."""
    name = request.match_info["asset"]
    if name == "init.js":
        return web.Response(text=INIT_JS, content_type="text/javascript", headers=_HEADERS)
    if name not in ASSETS:
        raise web.HTTPNotFound()
    return web.FileResponse(SWAGGER_UI / name, headers={
        "Content-Type": ASSETS[name], "Cache-Control": "public, max-age=86400", **_HEADERS})
