"""``/types/typescript``: classes for ``@servicestack/client``'s ``JsonServiceClient``.

Request DTOs implement ``IReturn<Response>`` and carry ``getTypeName``, ``getMethod`` and
``createResponse``, which is all the generic client needs to call ``client.post(new X())``.
Members keep their declared names (this service's JSON does). A member the server always
writes (a non-nullable bool, number or list) starts at the server's default, so the file
compiles under ``tsc --strict`` without definite-assignment tricks.
"""

from __future__ import annotations

from gateway.nativetypes.model import DtoType, Prop, TypeRef
from gateway.nativetypes.options import Options, header, select

DEFAULTS = {"MakePropertiesOptional": "False", "AddDescriptionAsComments": "True",
            "IncludeTypes": "", "ExcludeTypes": ""}

_SCALARS = {"String": "string", "Boolean": "boolean", "Int32": "number"}

PRELUDE = """
export interface IReturn<T>
{
    createResponse(): T;
}

export interface IReturnVoid
{
    createResponse(): void;
}
"""


def roles_list(roles: tuple[str, ...]) -> str:
    """``"Client", "Admin"``: the argument list of a RequiresAnyRole attribute."""
    return ", ".join(f'"{r}"' for r in roles)


def ts_type(ref: TypeRef) -> str:
    """A model type in TypeScript."""
    if ref.name == "List`1":
        return f"{ts_type(ref.args[0])}[]"
    if ref.name == "Dictionary`2":
        return f"{{ [index: string]: {ts_type(ref.args[1])}; }}"
    return _SCALARS.get(ref.name, ref.name)


def render(types: list[DtoType], opts: Options) -> str:
    """The whole file."""
    out = [header(opts, open_="/*", close="*/", prefix="//"), PRELUDE]
    out += [_class(t, opts) for t in select(types, opts)]
    return "\n".join(out)


def _class(t: DtoType, opts: Options) -> str:
    lines = []
    op = t.operation
    if op is not None:
        lines += [f'// @Route("{r.path}", "{",".join(r.verbs)}")' for r in op.routes]
        lines.append(f"// @RequiresAnyRole({roles_list(op.roles)})")
    if t.description and opts.flag("AddDescriptionAsComments"):
        lines.append(f"/** @description {t.description} */")
    implements = f" implements IReturn<{op.response.__name__}>" if op is not None else ""
    lines += [f"export class {t.name}{implements}", "{"]
    lines += [f"    {_member(p, opts)}" for p in t.props]
    lines += ["", f"    public constructor(init?: Partial<{t.name}>) "
                  "{ (Object as any).assign(this, init); }"]
    if op is not None:
        lines += [f"    public getTypeName() {{ return '{t.name}'; }}",
                  f"    public getMethod() {{ return '{op.verb}'; }}",
                  f"    public createResponse() {{ return new {op.response.__name__}(); }}"]
    lines.append("}\n")
    return "\n".join(lines)


def _member(p: Prop, opts: Options) -> str:
    tp = ts_type(p.type)
    if p.nullable or opts.flag("MakePropertiesOptional"):
        return f"public {p.name}?: {tp};"
    return f"public {p.name}: {tp} = {_literal(p)};"


def _literal(p: Prop) -> str:
    if p.type.name == "List`1":
        return "[]"
    if p.type.name == "Boolean":
        return "true" if p.default else "false"
    if p.type.name == "Int32":
        return str(p.default)
    raise TypeError(f"{p.name}: no TypeScript default for {p.type.name}")
