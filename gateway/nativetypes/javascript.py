"""``/types/mjs``: ES module JavaScript with JSDoc types, in the seed page's form.

Importable unchanged in a browser or node next to ``@servicestack/client``; request DTOs carry
``getTypeName``, ``getMethod`` and ``createResponse`` as the TypeScript ones do.
"""

from __future__ import annotations

from gateway.nativetypes.model import DtoType, Prop
from gateway.nativetypes.options import Options, header, select
from gateway.nativetypes.typescript import roles_list, ts_type

DEFAULTS = {"AddDescriptionAsComments": "True", "IncludeTypes": "", "ExcludeTypes": ""}


def render(types: list[DtoType], opts: Options) -> str:
    """The whole file."""
    out = [header(opts, open_="/*", close="*/", prefix="//"), '"use strict";']
    out += [_class(t, opts) for t in select(types, opts)]
    return "\n".join(out)


def _class(t: DtoType, opts: Options) -> str:
    op = t.operation
    lines = []
    if op is not None:
        lines += [f'// @Route("{r.path}", "{",".join(r.verbs)}")' for r in op.routes]
        lines.append(f"// @RequiresAnyRole({roles_list(op.roles)})")
    if t.description and opts.flag("AddDescriptionAsComments"):
        lines.append(f"/** @description {t.description} */")
    init = ",".join(f"{p.name}?:{ts_type(p.type)}" for p in t.props)
    lines += [f"export class {t.name} {{", f"    /** @param {{{{{init}}}}} [init] */",
              "    constructor(init) { Object.assign(this, init) }"]
    for p in t.props:
        lines += [f"    /** @type {{{ts_type(p.type)}}} */", f"    {_field(p)}"]
    if op is not None:
        lines += [f"    getTypeName() {{ return '{t.name}' }}",
                  f"    getMethod() {{ return '{op.verb}' }}",
                  f"    createResponse() {{ return new {op.response.__name__}() }}"]
    lines.append("}")
    return "\n".join(lines)


def _field(p: Prop) -> str:
    # Class fields are set before the constructor's Object.assign, so init still wins.
    if p.nullable:
        return f"{p.name};"
    if p.type.name == "List`1":
        return f"{p.name} = [];"
    return f"{p.name} = {str(p.default).lower()};"
