"""ServiceStack's metadata pages, generated from the DTOs and the operations catalogue:

    GET /metadata                    every operation, with links to its pages and the types
    GET /json/metadata?op=NAME       one operation: roles, routes and verbs, its DTOs (ES module
    GET /xml/metadata?op=NAME        JavaScript, as the seed page) and a sample HTTP request and
                                     response in that format

Static HTML with no script, public like the native types.
"""

from __future__ import annotations

import html
import json
from collections.abc import Awaitable, Callable
from typing import Literal
from xml.dom import minidom

from aiohttp import web

from gateway import wire
from gateway.errors import NotFound
from gateway.nativetypes import LANGUAGES, all_types, parse
from gateway.operations import BY_NAME, OPERATIONS, Operation
from gateway.samples import sample
from gateway.views.params import query

HEADERS = {"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
           "X-Content-Type-Options": "nosniff"}
STYLE = ("<style>body{font-family:sans-serif;margin:2em;max-width:70em}td,th{padding:.3em 1em;"
         "border-bottom:1px solid #ddd;text-align:left}pre{background:#f6f8fa;padding:1em;"
         "overflow:auto}</style>")


def _pretty(body: bytes, fmt: wire.Fmt) -> str:
    if fmt == "json":
        return json.dumps(json.loads(body), indent=2, ensure_ascii=False)
    # Our own output, not input: parsing it back for indentation is safe.
    root = minidom.parseString(body).documentElement
    assert root is not None
    text = root.toprettyxml(indent="  ")
    return "\n".join(line for line in text.splitlines() if line.strip())


def exchange(op: Operation, fmt: wire.Fmt, host: str) -> tuple[str, str]:
    """The sample (request, response) texts of an operation."""
    media = wire.JSON_CONTENT_TYPE.split(";")[0] if fmt == "json" else wire.XML_CONTENT_TYPE
    route, verb = op.routes[0], op.verb
    request = [f"{verb} {route.path} HTTP/1.1", f"Host: {host}", f"Accept: {media}"]
    if verb in ("POST", "PUT"):
        body, _ = wire.render(sample(op.request), fmt)
        request += [f"Content-Type: {media}", "Content-Length: length", "", _pretty(body, fmt)]
    body, content_type = wire.render(sample(op.response), fmt)
    response = ["HTTP/1.1 200 OK", f"Content-Type: {content_type}", "Content-Length: length",
                "", _pretty(body, fmt)]
    return "\n".join(request), "\n".join(response)


def _page(title: str, body: str) -> web.Response:
    return web.Response(text=f"<!doctype html><html><head><meta charset='utf-8'><title>"
                             f"{html.escape(title)}</title>{STYLE}</head><body>{body}"
                             "</body></html>", content_type="text/html", headers=HEADERS)


async def index(request: web.Request) -> web.Response:
    """GET /metadata"""
    rows = "".join(
        f"<tr><td>{html.escape(op.name)}</td><td>{html.escape(op.summary)}</td>"
        f"<td><a href='/json/metadata?op={op.name}'>JSON</a> "
        f"<a href='/xml/metadata?op={op.name}'>XML</a></td></tr>" for op in OPERATIONS)
    types = " ".join(f"<a href='/types/{n}'>{n}</a>" for n in ("metadata", *LANGUAGES))
    return _page("smsgw metadata", (
        "<h1>smsgw operations</h1><p>Interactive docs: <a href='/docs'>/docs</a> · "
        "status: <a href='/admin/status'>/admin/status</a> · native types (Add ServiceStack "
        f"Reference): {types}</p><table><tr><th>Operation</th><th>Summary</th><th>Formats"
        f"</th></tr>{rows}</table>"))


def operation_page(fmt: Literal["json", "xml"]) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The view of one operation's page in ``fmt``."""
    async def view(request: web.Request) -> web.Response:
        """GET /{fmt}/metadata?op=NAME"""
        name = query(request, "op")
        op = BY_NAME.get(name)
        if op is None:
            raise NotFound(f"no operation '{name}'; see /metadata")
        mjs = LANGUAGES["mjs"]
        dtos = mjs.render(all_types(), parse({"IncludeTypes": f"{op.name}.*"}, "", mjs.defaults))
        dtos = dtos[dtos.index("*/") + 3:]  # the options header is for tools, not this page
        req, resp = exchange(op, fmt, request.host)
        routes = "".join(f"<tr><td>{','.join(r.verbs)}</td><td>{html.escape(r.path)}</td>"
                         f"<td>{html.escape(op.summary)}</td></tr>" for r in op.routes)
        other = "xml" if fmt == "json" else "json"
        return _page(f"{op.name} {fmt.upper()}", (
            f"<p><a href='/metadata'>&lt;back to all web services</a> · "
            f"<a href='/{other}/metadata?op={op.name}'>{other.upper()}</a></p>"
            f"<h1>{html.escape(op.name)}</h1><table><tr><th>Requires any of the roles:</th>"
            f"<td>{', '.join(op.roles)}</td></tr>{routes}</table>"
            f"<h2>JavaScript {html.escape(op.name)} DTOs</h2><pre>{html.escape(dtos)}</pre>"
            "<p>To override the Content-type in your clients, use the HTTP Accept Header, "
            "append the .xml suffix or ?format=xml</p><h2>HTTP + "
            f"{fmt.upper()}</h2><p>The following are sample HTTP requests and responses. The "
            "placeholders shown need to be replaced with actual values.</p>"
            f"<pre id='request'>{html.escape(req)}</pre>"
            f"<pre id='response'>{html.escape(resp)}</pre>"))

    return view


def add_routes(router: web.UrlDispatcher) -> None:
    """The metadata pages."""
    router.add_get("/metadata", index)
    router.add_get("/json/metadata", operation_page("json"))
    router.add_get("/xml/metadata", operation_page("xml"))
