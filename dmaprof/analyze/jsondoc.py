"""JSON contracts written as ``TypedDict`` classes: their keys, and the markdown generated from
them.

A document (``dmaprof.report/1``, ``dmaprof.diff/2``) is a tree of ``TypedDict`` classes, one
per JSON object; the comment after a key (and the comment lines right below it) is its
meaning. :func:`markdown` writes one table per class, reached from the root, so the docs
(docs/json.md) are generated from the same types mypy checks the builders against, and a test
checks the file is up to date.
"""

from __future__ import annotations

import ast
import inspect
import io
import tokenize
import types
import typing
from typing import Any, NotRequired, Required, Union, get_args, get_origin, get_type_hints

__all__ = ["fields", "keys", "markdown", "problems", "reachable", "required_keys"]


def keys(cls: type) -> frozenset[str]:
    """Every key a ``TypedDict`` declares."""
    return frozenset(get_type_hints(cls))


def required_keys(cls: type) -> frozenset[str]:
    """The keys every instance carries (``NotRequired`` ones left out)."""
    return frozenset(getattr(cls, "__required_keys__", keys(cls)))


def _comments(cls: type) -> dict[str, str]:
    """key -> the comment after its annotation, joined with the comment-only lines below it."""
    source = inspect.getsource(cls)
    tree = ast.parse(source)
    node = tree.body[0]
    assert isinstance(node, ast.ClassDef)
    by_line: dict[int, str] = {}
    own_line: set[int] = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            by_line[tok.start[0]] = tok.string.lstrip("#").strip()
            if not tok.line[: tok.start[1]].strip():
                own_line.add(tok.start[0])
    out: dict[str, str] = {}
    for stmt in node.body:
        if not isinstance(stmt, ast.AnnAssign) or not isinstance(stmt.target, ast.Name):
            continue
        end = stmt.end_lineno or stmt.lineno
        parts = [by_line[end]] if end in by_line else []
        line = end + 1
        while line in own_line:
            parts.append(by_line[line])
            line += 1
        out[stmt.target.id] = " ".join(parts)
    return out


def _strip(tp: Any) -> Any:
    while get_origin(tp) in (Required, NotRequired):
        tp = get_args(tp)[0]
    return tp


def _is_typeddict(tp: Any) -> bool:
    return isinstance(tp, type) and typing.is_typeddict(tp)


def _type_name(tp: Any) -> str:
    tp = _strip(tp)
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        return " \\| ".join(_type_name(a) for a in get_args(tp))
    if origin is list:
        return f"list[{_type_name(get_args(tp)[0])}]"
    if origin is dict:
        k, v = get_args(tp)
        return f"dict[{_type_name(k)}, {_type_name(v)}]"
    if origin is typing.Literal:
        return " \\| ".join(f'"{a}"' if isinstance(a, str) else str(a) for a in get_args(tp))
    if tp is type(None):
        return "null"
    if tp is Any:
        return "any"
    if _is_typeddict(tp):
        return f"[{tp.__name__}](#{tp.__name__.lower()})"
    return {int: "int", str: "str", bool: "bool", float: "float"}.get(tp, str(tp))


def _nested(tp: Any) -> list[type]:
    """The TypedDict classes a key's type refers to."""
    tp = _strip(tp)
    if _is_typeddict(tp):
        return [tp]
    return [c for a in get_args(tp) for c in _nested(a)]


def fields(cls: type) -> list[tuple[str, str, bool, str]]:
    """(key, type, required, meaning) of a TypedDict, in declaration order."""
    hints = get_type_hints(cls)
    required = required_keys(cls)
    notes = _comments(cls)
    return [(k, _type_name(tp), k in required, notes.get(k, "")) for k, tp in hints.items()]


def reachable(root: type) -> list[type]:
    """``root`` and every TypedDict below it, each once, depth first."""
    seen: list[type] = []
    todo = [root]
    while todo:
        cls = todo.pop(0)
        if cls in seen:
            continue
        seen.append(cls)
        for tp in get_type_hints(cls).values():
            todo.extend(c for c in _nested(tp) if c not in seen)
    return seen


def markdown(root: type, title: str, preamble: str) -> str:
    """One ``##`` section per object of the document ``root``."""
    lines = [f"## {title}", "", preamble.strip(), ""]
    for cls in reachable(root):
        doc = inspect.cleandoc(cls.__doc__ or "")
        lines += [f"### {cls.__name__}", "", doc, ""] if doc else [f"### {cls.__name__}", ""]
        lines += ["| key | type | always | meaning |", "| --- | --- | --- | --- |"]
        for key, tp, req, note in fields(cls):
            lines.append(f"| `{key}` | {tp} | {'yes' if req else 'no'} | {note} |")
        lines.append("")
    return "\n".join(lines)


def problems(value: Any, tp: Any, where: str = "$") -> list[str]:
    """Where a JSON value does not have the shape of ``tp`` (a TypedDict, a list of them...):
    an undeclared key, a missing required key, a value of another type."""
    tp = _strip(tp)
    origin = get_origin(tp)
    if origin in (Union, types.UnionType):
        options = [problems(value, a, where) for a in get_args(tp)]
        return [] if any(not p for p in options) else min(options, key=len)
    if tp is Any:
        return []
    if tp is type(None):
        return [] if value is None else [f"{where}: {type(value).__name__}, expected null"]
    if _is_typeddict(tp):
        if not isinstance(value, dict):
            return [f"{where}: {type(value).__name__}, expected {tp.__name__}"]
        hints = get_type_hints(tp)
        out = [f"{where}.{k}: not declared in {tp.__name__}" for k in value if k not in hints]
        out += [f"{where}.{k}: missing" for k in sorted(required_keys(tp) - value.keys())]
        for k, sub in hints.items():
            if k in value:
                out += problems(value[k], sub, f"{where}.{k}")
        return out
    if origin is list:
        if not isinstance(value, list):
            return [f"{where}: {type(value).__name__}, expected list"]
        return [
            p for i, v in enumerate(value) for p in problems(v, get_args(tp)[0], f"{where}[{i}]")
        ]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{where}: {type(value).__name__}, expected dict"]
        return [p for k, v in value.items() for p in problems(v, get_args(tp)[1], f"{where}.{k}")]
    if origin is typing.Literal:
        return [] if value in get_args(tp) else [f"{where}: {value!r} not in {get_args(tp)}"]
    if tp is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
    elif tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
    else:
        ok = isinstance(value, tp)
    return [] if ok else [f"{where}: {type(value).__name__} {value!r:.40}, expected {tp.__name__}"]
