"""Placeholder instances of DTOs, for the metadata pages' samples and the OpenAPI examples."""

from __future__ import annotations

import types
import typing
from typing import Any

from pydantic import BaseModel


def sample(model: type[BaseModel]) -> BaseModel:
    """An instance with every member filled: "String", 0, false, one item per list; but the
    optional extension members (those XML leaves out when null), so the samples stay those
    of the service's own metadata page."""
    optional: frozenset[str] = getattr(model, "xml_omit_null", frozenset())
    return model.model_validate({name: _sample_value(f.annotation)
                                 for name, f in model.model_fields.items()
                                 if name not in optional})


def _sample_value(annotation: Any) -> Any:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        (annotation,) = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin is list:
        return [_sample_value(typing.get_args(annotation)[0])]
    if origin is dict:
        return {"String": "String"}
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return sample(annotation)
    return {str: "String", bool: False, int: 0}[annotation]
