"""Native types ("Add ServiceStack Reference"): DTO source in several languages, generated on
each request from the DTOs the gateway validates with (``gateway.dto``), so they cannot drift.

    model       the language-neutral types, from the DTOs and ``gateway.operations``
    options     query options, IncludeTypes/ExcludeTypes, the options comment header
    typescript, javascript (mjs), python, csharp, metadata (JSON)   one module per format
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from gateway.nativetypes import csharp, javascript, metadata, python, typescript
from gateway.nativetypes.model import DtoType, all_types
from gateway.nativetypes.options import Options, parse


@dataclass(frozen=True, slots=True)
class Language:
    defaults: Mapping[str, str]
    render: Callable[[list[DtoType], Options], str]
    content_type: str


LANGUAGES: Mapping[str, Language] = {
    "typescript": Language(typescript.DEFAULTS, typescript.render, "text/plain"),
    "mjs": Language(javascript.DEFAULTS, javascript.render, "text/javascript"),
    "python": Language(python.DEFAULTS, python.render, "text/plain"),
    "csharp": Language(csharp.DEFAULTS, csharp.render, "text/plain"),
}

__all__ = ["LANGUAGES", "Language", "Options", "all_types", "metadata", "parse"]
