"""The language-neutral model behind every native types file, built from the DTOs.

Type names are ServiceStack's (.NET) names, as in its ``/types/metadata``: ``String``,
``Boolean``, ``Int32``, ``List`1`` and ``Dictionary`2`` with generic arguments, and DTO names.
Each generator maps these to its language; nothing here knows a language.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from gateway.operations import OPERATIONS, Operation

_SCALARS: dict[Any, str] = {str: "String", bool: "Boolean", int: "Int32"}
VALUE_TYPES = frozenset({"Boolean", "Int32"})


@dataclass(frozen=True, slots=True)
class TypeRef:
    name: str  # String, Int32, Boolean, List`1, Dictionary`2 or a DTO's name
    args: tuple[TypeRef, ...] = ()

    @property
    def is_value_type(self) -> bool:
        return self.name in VALUE_TYPES


@dataclass(frozen=True, slots=True)
class Prop:
    name: str
    type: TypeRef
    nullable: bool  # the DTO declares ``| None``: absent on the wire unless set
    default: Any  # the server's default when not nullable: False, 0 or []


@dataclass(frozen=True, slots=True)
class DtoType:
    name: str
    description: str
    namespace: str
    props: tuple[Prop, ...]
    operation: Operation | None  # set on request DTOs
    is_servicestack_type: bool  # ResponseStatus and ResponseError

    def references(self) -> list[str]:
        """Names of the DTOs this type's members use."""
        out: list[str] = []

        def walk(ref: TypeRef) -> None:
            if not ref.args and ref.name not in _SCALARS.values():
                out.append(ref.name)
            for arg in ref.args:
                walk(arg)

        for prop in self.props:
            walk(prop.type)
        return out


def type_ref(annotation: Any) -> tuple[TypeRef, bool]:
    """(the .NET-style type of an annotation, whether it allows None)."""
    nullable = False
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        nullable, (annotation,) = True, args
    origin = typing.get_origin(annotation)
    if origin is list:
        (item,) = typing.get_args(annotation)
        return TypeRef("List`1", (type_ref(item)[0],)), nullable
    if origin is dict:
        key, value = typing.get_args(annotation)
        return TypeRef("Dictionary`2", (type_ref(key)[0], type_ref(value)[0])), nullable
    if annotation in _SCALARS:
        return TypeRef(_SCALARS[annotation]), nullable
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return TypeRef(annotation.__name__), nullable
    raise TypeError(f"no native type for {annotation!r}")


def dto_type(model: type[BaseModel], operation: Operation | None) -> DtoType:
    """One DTO class as the model's type."""
    props = []
    for name, field in model.model_fields.items():
        ref, nullable = type_ref(field.annotation)
        default = None if nullable else field.get_default(call_default_factory=True)
        props.append(Prop(name, ref, nullable, default))
    return DtoType(
        name=model.__name__,
        description=" ".join((model.__doc__ or "").split()),
        namespace=str(getattr(model, "xml_namespace", "")),
        props=tuple(props),
        operation=operation,
        is_servicestack_type=model.__name__ in ("ResponseStatus", "ResponseError"),
    )


def all_types() -> list[DtoType]:
    """Every DTO the operations use, each after the types it references (so languages that
    need a declaration before its use get one), responses before their requests."""
    models: dict[str, type[BaseModel]] = {}
    ordered: list[DtoType] = []
    requests = {op.name: op for op in OPERATIONS}

    def visit(model: type[BaseModel]) -> None:
        if model.__name__ in models:
            return
        models[model.__name__] = model
        for field in model.model_fields.values():
            for nested in _models_in(field.annotation):
                visit(nested)
        ordered.append(dto_type(model, requests.get(model.__name__)))

    for op in OPERATIONS:
        visit(op.response)
        visit(op.request)
    return ordered


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
