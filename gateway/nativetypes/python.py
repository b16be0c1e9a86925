"""``/types/python``: dataclasses for the PyPI ``servicestack`` client.

As ServiceStack writes them: snake_case members with ``dataclasses_json`` camelCase on the wire
(this gateway binds input names case-insensitively, and the client matches response names
case-insensitively), and request DTOs subclassing ``IReturn[Response]`` (plus ``IGet``/``IPost``
…), which is how ``JsonServiceClient.send`` finds the response type and the verb.
"""

from __future__ import annotations

import keyword
import re

from gateway.nativetypes.model import DtoType, Prop, TypeRef
from gateway.nativetypes.options import Options, header, select
from gateway.nativetypes.typescript import roles_list

DEFAULTS = {"AddDescriptionAsComments": "True", "IncludeTypes": "", "ExcludeTypes": ""}

_SCALARS = {"String": "str", "Boolean": "bool", "Int32": "int"}
_VERB_MARKERS = {"GET": "IGet", "POST": "IPost", "PUT": "IPut", "DELETE": "IDelete"}

IMPORTS = """
import datetime
import decimal
from marshmallow.fields import *
from servicestack import *
from typing import *
from dataclasses import dataclass, field
from dataclasses_json import dataclass_json, LetterCase, Undefined, config
from enum import Enum, IntEnum
"""


def py_type(ref: TypeRef) -> str:
    """A model type in Python (DTOs come before their first use, so no forward refs)."""
    if ref.name == "List`1":
        return f"List[{py_type(ref.args[0])}]"
    if ref.name == "Dictionary`2":
        return f"Dict[{py_type(ref.args[0])}, {py_type(ref.args[1])}]"
    return _SCALARS.get(ref.name, ref.name)


def snake(name: str) -> str:
    """``apiMessageId`` → ``api_message_id``; ``SMPPMessage`` stays one word per capital run."""
    out = re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name)
    out = re.sub(r"(?<=[A-Z])([A-Z][a-z])", r"_\1", out).lower()
    return out + "_" if keyword.iskeyword(out) else out


def render(types: list[DtoType], opts: Options) -> str:
    """The whole module."""
    out = [header(opts, open_='"""', close='"""', prefix="#"), IMPORTS]
    out += [_class(t, opts) for t in select(types, opts)]
    return "\n".join(out)


def _class(t: DtoType, opts: Options) -> str:
    op = t.operation
    lines = []
    if op is not None:
        lines += [f'# @Route("{r.path}", "{",".join(r.verbs)}")' for r in op.routes]
        lines.append(f"# @RequiresAnyRole({roles_list(op.roles)})")
    lines += ["@dataclass_json(letter_case=LetterCase.CAMEL, undefined=Undefined.EXCLUDE)",
              "@dataclass"]
    bases = ""
    if op is not None:
        bases = f"(IReturn[{op.response.__name__}], {_VERB_MARKERS[op.verb]})"
    lines.append(f"class {t.name}{bases}:")
    if t.description and opts.flag("AddDescriptionAsComments"):
        lines.append(f'    """{t.description.replace(chr(92), "")}"""')
    lines += [f"    {_member(p)}" for p in t.props] or ["    pass"]
    return "\n\n" + "\n".join(lines) + "\n"


def _member(p: Prop) -> str:
    name = snake(p.name)
    # A member whose camelCase differs from its declared name keeps the declared one.
    rename = "" if _camel(name) == p.name else f", metadata=config(field_name='{p.name}')"
    tp = py_type(p.type)
    if p.nullable:
        return f"{name}: Optional[{tp}] = field(default=None{rename})" if rename else \
            f"{name}: Optional[{tp}] = None"
    if p.type.name == "List`1":
        return f"{name}: {tp} = field(default_factory=list{rename})"
    value = repr(p.default)
    return f"{name}: {tp} = field(default={value}{rename})" if rename else \
        f"{name}: {tp} = {value}"


def _camel(name: str) -> str:
    head, *rest = name.rstrip("_").split("_")
    return head + "".join(w.capitalize() for w in rest)
