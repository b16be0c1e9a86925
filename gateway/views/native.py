"""Native types, as ServiceStack serves them: ``GET /types`` lists the formats, and
``/types/{typescript,mjs,python,csharp,metadata}`` answer with DTO source (or the JSON model)
for ``typescript-ref``, ``npx get-dtos``, the ``x`` tool, a browser's ``import`` or a human.
Public, like ServiceStack's: the DTOs are the contract, not a secret."""

from __future__ import annotations

from aiohttp import web

from gateway.errors import NotFound
from gateway.nativetypes import LANGUAGES, all_types, metadata, parse
from gateway.nativetypes.options import version


def base_url(request: web.Request) -> str:
    """Where the caller reached this gateway, for the header's BaseUrl."""
    return f"{request.scheme}://{request.host}"


async def links(request: web.Request) -> web.Response:
    """GET /types: the URL of each format."""
    base = base_url(request)
    names = ["metadata", *LANGUAGES]
    return web.json_response({name: f"{base}/types/{name}" for name in names})


async def types_metadata(request: web.Request) -> web.Response:
    """GET /types/metadata"""
    opts = parse(request.query, base_url(request), metadata.DEFAULTS)
    return web.json_response(metadata.document(all_types(), opts, version()))


async def source(request: web.Request) -> web.Response:
    """GET /types/{language}"""
    lang = LANGUAGES.get(request.match_info["language"])
    if lang is None:
        raise NotFound(f"no native types for '{request.match_info['language']}'; see /types")
    opts = parse(request.query, base_url(request), lang.defaults)
    return web.Response(text=lang.render(all_types(), opts), content_type=lang.content_type,
                        charset="utf-8")


def add_routes(router: web.UrlDispatcher) -> None:
    """The native types routes."""
    router.add_get("/types", links)
    router.add_get("/types/metadata", types_metadata)
    router.add_get("/types/{language}", source)
