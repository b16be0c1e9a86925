"""``/types/csharp``: classes for ServiceStack's C# ``JsonServiceClient`` (``x csharp``)."""

from __future__ import annotations

from gateway.nativetypes.model import DtoType, Prop, TypeRef
from gateway.nativetypes.options import Options, header, select

DEFAULTS = {"GlobalNamespace": "", "MakePartial": "True", "MakeVirtual": "True",
            "AddReturnMarker": "True", "AddDescriptionAsComments": "True",
            "AddNullableAnnotations": "False", "InitializeCollections": "False",
            "IncludeTypes": "", "ExcludeTypes": ""}

_SCALARS = {"String": "string", "Boolean": "bool", "Int32": "int"}
NAMESPACE = "digitaluapi.ServiceModel"  # the DataContract namespace's last segment

USINGS = """using System;
using System.Collections;
using System.Collections.Generic;
using System.Runtime.Serialization;
using ServiceStack;
using ServiceStack.DataAnnotations;
"""


def cs_type(ref: TypeRef) -> str:
    """A model type in C#."""
    if ref.name == "List`1":
        return f"List<{cs_type(ref.args[0])}>"
    if ref.name == "Dictionary`2":
        return f"Dictionary<{cs_type(ref.args[0])}, {cs_type(ref.args[1])}>"
    return _SCALARS.get(ref.name, ref.name)


def render(types: list[DtoType], opts: Options) -> str:
    """The whole file."""
    namespace = opts.get("GlobalNamespace") or NAMESPACE
    body = "\n".join(_class(t, opts) for t in select(types, opts))
    return (header(opts, open_="/*", close="*/", prefix="//") + "\n" + USINGS
            + f"using {namespace};\n\n\nnamespace {namespace}\n{{\n{body}}}\n")


def _class(t: DtoType, opts: Options) -> str:
    op = t.operation
    lines = []
    if t.description and opts.flag("AddDescriptionAsComments"):
        lines.append(f"    ///<summary>\n    ///{t.description}\n    ///</summary>")
    if op is not None:
        lines += [f'    [Route("{r.path}", "{",".join(r.verbs)}")]' for r in op.routes]
        lines.append(f"    [RequiresAnyRole({', '.join(chr(34) + r + chr(34) for r in op.roles)})]")
    partial = "partial " if opts.flag("MakePartial") else ""
    lines.append(f"    public {partial}class {t.name}")
    if op is not None and opts.flag("AddReturnMarker"):
        lines.append(f"        : IReturn<{op.response.__name__}>")
    lines.append("    {")
    if opts.flag("InitializeCollections"):
        lists = [p for p in t.props if p.type.name in ("List`1", "Dictionary`2")]
        if lists:
            lines.append(f"        public {t.name}()\n        {{")
            lines += [f"            {p.name} = new {cs_type(p.type)}{{}};" for p in lists]
            lines.append("        }\n")
    lines += [f"        {_member(p, opts)}" for p in t.props]
    lines.append("    }\n")
    return "\n".join(lines) + "\n"


def _member(p: Prop, opts: Options) -> str:
    virtual = "virtual " if opts.flag("MakeVirtual") else ""
    tp = cs_type(p.type)
    if opts.flag("AddNullableAnnotations") and p.nullable:
        tp += "?"
    elif p.nullable and p.type.is_value_type:
        tp += "?"  # int? and bool? are nullable in C# with or without annotations
    return f"public {virtual}{tp} {p.name} {{ get; set; }}"
