"""``/types/metadata``: the JSON model behind the native types, in ServiceStack's shape
(``MetadataTypes``: config, namespaces, operations with their request and response types, and
the other types), so tools that read ServiceStack's model can read this one."""

from __future__ import annotations

from typing import Any

from gateway.nativetypes.model import DtoType, TypeRef
from gateway.nativetypes.options import Options, select

DEFAULTS = {"IncludeTypes": "", "ExcludeTypes": ""}


def document(types: list[DtoType], opts: Options, version: str) -> dict[str, Any]:
    """The model, filtered by IncludeTypes/ExcludeTypes."""
    chosen = select(types, opts)
    by_name = {t.name: t for t in chosen}
    responses = {t.operation.response.__name__ for t in chosen if t.operation is not None}
    operations = []
    for t in chosen:
        op = t.operation
        if op is None:
            continue
        response = by_name.get(op.response.__name__)
        operations.append({
            "request": _type(t), **({"response": _type(response)} if response else {}),
            "actions": list(dict.fromkeys(v for r in op.routes for v in r.verbs)),
            "returnType": {"name": op.response.__name__},
            "routes": [{"path": r.path, "verbs": ",".join(r.verbs)} for r in op.routes],
            "requiresAuth": True, "requiresAnyRole": list(op.roles), "tags": [op.tag],
        })
    return {
        "config": {"baseUrl": opts.base_url, "version": version,
                   "includeTypes": opts.names("IncludeTypes") or None,
                   "excludeTypes": opts.names("ExcludeTypes") or None},
        "namespaces": sorted({t.namespace for t in chosen}),
        "operations": operations,
        "types": [_type(t) for t in chosen if t.operation is None and t.name not in responses],
    }


def _type(t: DtoType) -> dict[str, Any]:
    out: dict[str, Any] = {"name": t.name, "namespace": t.namespace}
    if t.description:
        out["description"] = t.description
    out["properties"] = [_prop(p.name, p.type, p.nullable) for p in t.props]
    return out


def _prop(name: str, ref: TypeRef, nullable: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": name}
    if nullable and ref.is_value_type:
        out.update(type="Nullable`1", genericArgs=[ref.name], isValueType=True)
    else:
        out["type"] = ref.name
        if ref.args:
            out["genericArgs"] = [_generic(a) for a in ref.args]
        if ref.is_value_type:
            out["isValueType"] = True
    if not nullable:
        out["isRequired"] = False  # always present on the wire, never required on input
    return out


def _generic(ref: TypeRef) -> str:
    if not ref.args:
        return ref.name
    return f"{ref.name.split('`')[0]}<{','.join(_generic(a) for a in ref.args)}>"
