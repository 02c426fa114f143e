"""Helpers for the config dataclasses: string fields with a fixed set of choices (validated in one place,
:func:`check_choices`) and the fields' docstrings (the string literal after each field) for ``--help``.

A bottom-level module: it imports nothing from ezrobot, so every config group can use it.
"""
from __future__ import annotations

import ast
import dataclasses
import inspect
import textwrap
from functools import lru_cache
from typing import Any, Dict, List, Sequence

CHOICES = "choices"
"""Field-metadata key holding a field's allowed values (``None`` is allowed too when it is the default)."""


def choice(default: Any, allowed: Sequence[Any]) -> Any:
    """A dataclass field whose value must be one of ``allowed`` (checked by :func:`check_choices`)."""
    allowed = tuple(allowed)
    if default is not None and default not in allowed:
        raise ValueError(f"default {default!r} is not among the choices {allowed}")
    return dataclasses.field(default=default, metadata={CHOICES: allowed})


def check_choices(obj: Any, prefix: str = "") -> None:
    """Check every choice field of the dataclass ``obj`` and of the dataclasses nested in it.

    Raises:
        ValueError: ``"<prefix><field>=<value> is not allowed; choose one of <a>, <b>"`` for the first bad one.
    """
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            check_choices(value, f"{prefix}{f.name}.")
        allowed = f.metadata.get(CHOICES)
        if allowed is not None and value not in allowed and not (value is None and f.default is None):
            raise ValueError(f"{prefix}{f.name}={value!r} is not allowed; choose one of "
                             f"{', '.join(str(a) for a in allowed)}")


@lru_cache(maxsize=None)
def field_docs(cls: type) -> Dict[str, str]:
    """``{field: docstring}`` from the string literal written after each field of the class ``cls``."""
    try:
        source = textwrap.dedent(inspect.getsource(cls))
    except (OSError, TypeError):
        return {}
    body = ast.parse(source).body[0].body
    docs = {}
    for node, nxt in zip(body, body[1:]):
        if (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and isinstance(nxt, ast.Expr)
                and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)):
            docs[node.target.id] = " ".join(nxt.value.value.split())
    return docs


def describe(obj: Any, prefix: str = "", width: int = 100) -> List[str]:
    """Help lines for every field of ``obj`` (nested groups flattened): ``key=default  [a|b]`` and its
    docstring wrapped below it."""
    lines: List[str] = []
    docs = field_docs(type(obj))
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if dataclasses.is_dataclass(value):
            lines += describe(value, f"{prefix}{f.name}.", width)
            continue
        allowed = f.metadata.get(CHOICES)
        head = f"  {prefix}{f.name}={value!r}"
        if allowed is not None:
            head += f"  [{'|'.join(str(a) for a in allowed)}]"
        lines.append(head)
        if f.name in docs:
            lines += textwrap.wrap(docs[f.name], width, initial_indent=" " * 6, subsequent_indent=" " * 6)
    return lines
