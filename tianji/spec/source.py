"""Load a YAML spec file and check it against msgspec types, reporting every problem.

``tianji check`` has to print *all* problems of ``routes.yaml``, ``providers.yaml``
and ``config.yaml`` at once, each as ``file:line: path: message``. Neither library
does that on its own:

* ``msgspec.convert`` stops at the first error, and its message carries only a
  JSON path (``Object contains unknown field `pathh` - at `$.routes[2]```), with
  dict keys elided as ``[...]`` and no notion of a source line.
* PyYAML's loaders throw the node marks away and silently keep the last of two
  duplicate mapping keys, so a repeated ``model:`` line would go unnoticed.

So this module composes the YAML node graph itself (``yaml.compose``), builds the
plain Python data and a tree of line numbers in one walk (:func:`load_yaml`), and
then walks the data against the ``msgspec.inspect.type_info`` of the target type
(:func:`validate`), collecting one :class:`Problem` per offending node. Leaves are
still checked by msgspec itself, so the accepted values are exactly what
``msgspec.convert`` accepts; :func:`convert` only runs ``msgspec.convert`` once the
walk found nothing wrong.

Scalars resolve as with ``yaml.SafeLoader`` (YAML 1.1: ints, floats, bools, null,
``yes``/``no``), except timestamps, which stay strings: a ``str`` field then gets
what the operator typed and a ``datetime`` field still parses it. Anchors,
aliases and merge keys (``<<``) work; the line of a node reached through an alias
is the line where the anchored node is written.
"""

from __future__ import annotations

import builtins
import datetime
import decimal
import difflib
import re
import types
import typing
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal, TypeVar

import msgspec
import msgspec.inspect as mi
import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

__all__ = [
    "ROOT",
    "Located",
    "PathKey",
    "Problem",
    "Severity",
    "convert",
    "format_path",
    "load_yaml",
    "validate",
]

Severity = Literal["error", "warning"]
PathKey = str | int
_Path = tuple[PathKey, ...]
T = TypeVar("T")

ROOT = "<root>"
"""How the path of a problem about the whole document is rendered."""


# --------------------------------------------------------------------------- problems


@dataclass(frozen=True)
class Problem:
    """One finding about a spec file, located at a line and a data path."""

    file: str
    line: int
    path: str
    message: str
    severity: Severity = "error"

    def render(self) -> str:
        """``file:line: path: message``; warnings say so at the start of the message."""
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{self.file}:{self.line}: {self.path}: {prefix}{self.message}"

    def as_dict(self) -> dict[str, str | int]:
        """The problem as a JSON-ready dict."""
        return {
            "file": self.file,
            "line": self.line,
            "path": self.path,
            "message": self.message,
            "severity": self.severity,
        }


def format_path(path: Sequence[PathKey]) -> str:
    """Render a data path: ``routes[2].path``, ``models["gpt-4o"]``; the root is ``<root>``."""
    out: list[str] = []
    for key in path:
        if isinstance(key, int):
            out.append(f"[{key}]")
        elif key.isidentifier():
            out.append(f".{key}" if out else key)
        else:
            out.append("[" + msgspec.json.encode(key).decode() + "]")
    return "".join(out) or ROOT


# --------------------------------------------------------------------------- YAML loading


@dataclass(frozen=True, slots=True)
class _Pos:
    """The line of a node and the positions of its children (by key or index)."""

    line: int
    children: Mapping[object, _Pos] | Sequence[_Pos] = ()

    def child(self, key: PathKey) -> _Pos | None:
        kids = self.children
        if isinstance(kids, Mapping):
            return kids.get(key)
        if isinstance(key, int) and not isinstance(key, bool) and 0 <= key < len(kids):
            return kids[key]
        return None


class Located:
    """A parsed YAML document: its plain data, its file name, and node lines."""

    __slots__ = ("_root", "data", "file")

    def __init__(self, data: Any, file: str, *, positions: _Pos | None = None) -> None:
        self.data = data
        self.file = file
        self._root = positions if positions is not None else _Pos(1)

    def __repr__(self) -> str:
        return f"Located(file={self.file!r}, data={self.data!r})"

    def line(self, path: tuple[PathKey, ...]) -> int:
        """The 1-based line of the node at ``path`` (of the key, for a mapping entry).

        A path that does not exist gives the line of its nearest existing ancestor;
        the root is line 1.
        """
        line, pos = 1, self._root
        for key in path:
            child = pos.child(key)
            if child is None:
                break
            line, pos = child.line, child
        return line

    def problem(
        self, path: tuple[PathKey, ...], message: str, severity: Severity = "error"
    ) -> Problem:
        """A :class:`Problem` at ``path`` of this document."""
        return Problem(self.file, self.line(path), format_path(path), message, severity)


_MAP_TAG = "tag:yaml.org,2002:map"
_SEQ_TAG = "tag:yaml.org,2002:seq"
_MERGE_TAG = "tag:yaml.org,2002:merge"
_TIMESTAMP_TAG = "tag:yaml.org,2002:timestamp"


def _line_of(node: Node) -> int:
    return int(node.start_mark.line) + 1


def _path_key(key: Any) -> PathKey:
    """A mapping key as a path element (keys that are not str/int are shown as text)."""
    return key if isinstance(key, str | int) else str(key)


class _Builder:
    """Turns a composed YAML node graph into plain data plus a :class:`_Pos` tree.

    Results are memoized per node, so an alias shares the data and positions of
    its anchor instead of expanding them again; a node that contains itself is
    reported instead of recursing forever.
    """

    def __init__(self, file: str) -> None:
        self.file = file
        self.problems: list[Problem] = []
        self._scalars = SafeConstructor()
        self._done: dict[int, tuple[Any, _Pos]] = {}
        self._active: set[int] = set()

    def report(self, node: Node, path: _Path, message: str) -> None:
        self.problems.append(Problem(self.file, _line_of(node), format_path(path), message))

    def build(self, node: Node, path: _Path) -> tuple[Any, _Pos]:
        """Data and positions of ``node``, first reached at ``path`` (used in problems)."""
        key = id(node)
        if key in self._done:
            return self._done[key]
        if key in self._active:
            self.report(node, path, "an alias refers to a node that contains it (recursive alias)")
            return None, _Pos(_line_of(node))
        self._active.add(key)
        try:
            if isinstance(node, MappingNode):
                result = self._mapping(node, path)
            elif isinstance(node, SequenceNode):
                result = self._sequence(node, path)
            else:
                result = self._scalar(node, path)
        finally:
            self._active.discard(key)
        self._done[key] = result
        return result

    def _scalar(self, node: Node, path: _Path) -> tuple[Any, _Pos]:
        pos = _Pos(_line_of(node))
        if node.tag == _TIMESTAMP_TAG:
            return node.value, pos
        try:
            return self._scalars.construct_object(node, deep=True), pos
        except ConstructorError as exc:
            self.report(node, path, f"unsupported YAML scalar: {exc.problem}")
            return None, pos

    def _sequence(self, node: SequenceNode, path: _Path) -> tuple[Any, _Pos]:
        if node.tag != _SEQ_TAG:
            self.report(node, path, f"unsupported YAML tag {node.tag!r}")
            return None, _Pos(_line_of(node))
        items: list[Any] = []
        positions: list[_Pos] = []
        for index, child in enumerate(node.value):
            value, pos = self.build(child, (*path, index))
            items.append(value)
            positions.append(pos)
        return items, _Pos(_line_of(node), tuple(positions))

    def _mapping(self, node: MappingNode, path: _Path) -> tuple[Any, _Pos]:
        if node.tag != _MAP_TAG:
            self.report(node, path, f"unsupported YAML tag {node.tag!r}")
            return None, _Pos(_line_of(node))
        merged: dict[Any, Any] = {}
        merged_pos: dict[object, _Pos] = {}
        data: dict[Any, Any] = {}
        positions: dict[object, _Pos] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                self._merge(value_node, path, merged, merged_pos)
                continue
            if not isinstance(key_node, ScalarNode):
                self.report(key_node, path, "a mapping key must be a scalar")
                continue
            key, _ = self.build(key_node, path)
            where = (*path, _path_key(key))
            if key in data:
                first = positions[key].line
                self.report(
                    key_node, where, f"duplicate key {key!r} (first defined on line {first})"
                )
                continue
            value, pos = self.build(value_node, where)
            data[key] = value
            positions[key] = _Pos(_line_of(key_node), pos.children)
        # Explicit keys win over merged ones; merged keys come first, as in PyYAML.
        return merged | data, _Pos(_line_of(node), merged_pos | positions)

    def _merge(
        self, node: Node, path: _Path, into: dict[Any, Any], into_pos: dict[object, _Pos]
    ) -> None:
        """Add the entries of a ``<<`` value; earlier sources win over later ones."""
        sources = node.value if isinstance(node, SequenceNode) else [node]
        for source in sources:
            if not isinstance(source, MappingNode):
                self.report(source, path, "a merge key (<<) needs a mapping or a list of mappings")
                continue
            value, pos = self.build(source, path)
            if not isinstance(value, dict) or not isinstance(pos.children, Mapping):
                continue
            for key, item in value.items():
                if key not in into:
                    into[key] = item
                    into_pos[key] = pos.children[key]


def _syntax_problem(file: str, exc: yaml.YAMLError) -> Problem:
    if not isinstance(exc, yaml.MarkedYAMLError):
        return Problem(file, 1, ROOT, f"invalid YAML: {exc}")
    mark = exc.problem_mark or exc.context_mark
    line = int(mark.line) + 1 if mark is not None else 1
    message = f"invalid YAML: {exc.problem or exc.context or 'syntax error'}"
    if exc.problem and exc.context:
        where = f" started on line {exc.context_mark.line + 1}" if exc.context_mark else ""
        message += f" ({exc.context}{where})"
    return Problem(file, line, ROOT, message)


def load_yaml(
    path: Path | str, *, display_name: str | None = None
) -> tuple[Located | None, list[Problem]]:
    """Read and parse one YAML file.

    Returns the document (``None`` when it could not be read or parsed at all)
    and the problems found while loading: unreadable file (line 0), syntax error,
    duplicate keys, unsupported tags. An empty file gives ``data=None``.
    ``display_name`` is the file name used in problems (default: ``path``).
    """
    name = display_name if display_name is not None else str(path)
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        return None, [Problem(name, 0, ROOT, "file not found")]
    except (OSError, UnicodeDecodeError) as exc:
        return None, [Problem(name, 0, ROOT, f"cannot read file: {exc}")]
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        return None, [_syntax_problem(name, exc)]
    if root is None:
        return Located(None, name), []
    builder = _Builder(name)
    data, pos = builder.build(root, ())
    return Located(data, name, positions=_Pos(1, pos.children)), builder.problems


# --------------------------------------------------------------------------- msgspec plumbing

_SCALAR_TYPES: dict[type[mi.Type], Any] = {
    mi.IntType: int,
    mi.FloatType: float,
    mi.StrType: str,
    mi.BoolType: bool,
    mi.NoneType: type(None),
    mi.BytesType: bytes,
    mi.ByteArrayType: bytearray,
    mi.MemoryViewType: memoryview,
    mi.DateTimeType: datetime.datetime,
    mi.DateType: datetime.date,
    mi.TimeType: datetime.time,
    mi.TimeDeltaType: datetime.timedelta,
    mi.UUIDType: uuid.UUID,
    mi.DecimalType: decimal.Decimal,
    mi.RawType: msgspec.Raw,
    mi.ExtType: msgspec.msgpack.Ext,
    mi.AnyType: Any,
}
_CONSTRAINTS = ("gt", "ge", "lt", "le", "multiple_of", "min_length", "max_length", "pattern", "tz")
_ANNOTATED: Any = typing.Annotated
_UNION: Any = typing.Union
_LITERAL: Any = typing.Literal


def _unwrap(t: mi.Type) -> mi.Type:
    while isinstance(t, mi.Metadata):
        t = t.type
    return t


def _python_type(t: mi.Type) -> Any:
    """Rebuild a type msgspec accepts from its ``type_info`` (for msgspec to check leaves)."""
    t = _unwrap(t)
    if isinstance(t, mi.UnionType):
        return _UNION[tuple(_python_type(m) for m in t.types)]
    if isinstance(t, mi.LiteralType):
        return _LITERAL[t.values]
    if isinstance(t, mi.TupleType):
        return types.GenericAlias(tuple, tuple(_python_type(m) for m in t.item_types))
    if isinstance(t, mi.DictType | mi.FrozenDictType):
        origin = dict if isinstance(t, mi.DictType) else getattr(builtins, "frozendict", dict)
        base: Any = types.GenericAlias(
            origin, (_python_type(t.key_type), _python_type(t.value_type))
        )
    elif isinstance(t, mi.CollectionType):
        item = _python_type(t.item_type)
        if isinstance(t, mi.VarTupleType):
            base = types.GenericAlias(tuple, (item, ...))
        else:
            origin = {mi.ListType: list, mi.SetType: set, mi.FrozenSetType: frozenset}[type(t)]
            base = types.GenericAlias(origin, (item,))
    elif hasattr(t, "cls"):  # Struct, dataclass, TypedDict, NamedTuple, Enum, custom
        return t.cls
    else:
        base = _SCALAR_TYPES[type(t)]
    meta = {name: getattr(t, name) for name in _CONSTRAINTS if getattr(t, name, None) is not None}
    return _ANNOTATED[base, msgspec.Meta(**meta)] if meta else base


_AT_SUFFIX = re.compile(r" - at `(?:key` in `)?(?P<path>\$[^`]*)`$")
_PATH_TOKEN = re.compile(r"\.(?P<field>[^.\[]+)|\[(?P<index>\d+)\]")
_YAML_NAMES = {"object": "mapping", "array": "list"}


def _split_error(message: str) -> tuple[str, tuple[PathKey, ...]]:
    """Split msgspec's ``... - at `$.a[0].b``` into the message and ``("a", 0, "b")``.

    msgspec writes dict values as ``[...]``; the path stops there (the nearest
    ancestor we can name).
    """
    match = _AT_SUFFIX.search(message)
    if match is None:
        return message, ()
    path: list[PathKey] = []
    text, at = match["path"], 1
    while (token := _PATH_TOKEN.match(text, at)) is not None:
        path.append(token["field"] if token["index"] is None else int(token["index"]))
        at = token.end()
    return message[: match.start()], tuple(path)


def _type_message(message: str) -> str:
    """``Expected `object | null`, got `array``` → ``expected mapping | null, got list``."""

    def names(found: re.Match[str]) -> str:
        return " | ".join(_YAML_NAMES.get(n, n) for n in found[1].split(" | "))

    message = re.sub(r"`([^`]*)`", names, message)
    return message[:1].lower() + message[1:]


def _kind(value: Any) -> str:
    """The YAML-ish name of a value's type, for ``got ...``."""
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "mapping"
    if isinstance(value, list):
        return "list"
    return type(value).__name__


def _show(value: Any) -> str:
    """A scalar as written in a message (``'a'``, ``3``, ``true``, ``null``)."""
    if value is None or isinstance(value, bool):
        return "null" if value is None else str(value).lower()
    if isinstance(value, str | int | float):
        return repr(value)
    return _kind(value)


def _is_object(t: mi.Type) -> bool:
    """Does msgspec decode this type from a mapping?"""
    if isinstance(t, mi.StructType):
        return not t.array_like
    return isinstance(t, mi.DictType | mi.FrozenDictType | mi.TypedDictType | mi.DataclassType)


def _is_array(t: mi.Type) -> bool:
    """Does msgspec decode this type from a list?"""
    if isinstance(t, mi.StructType):
        return t.array_like
    return isinstance(t, mi.CollectionType | mi.TupleType | mi.NamedTupleType)


def _same_kind(value: Any, t: mi.Type) -> bool:
    """Is ``value`` of the Python type ``t`` is about (so its message is the useful one)?"""
    if isinstance(t, mi.LiteralType):
        return any(type(v) is type(value) for v in t.values)
    if isinstance(t, mi.EnumType):
        return any(type(member.value) is type(value) for member in t.cls)
    if isinstance(t, mi.FloatType):
        return type(value) in (int, float)
    expected = {mi.StrType: str, mi.IntType: int, mi.BoolType: bool}.get(type(t))
    return expected is not None and type(value) is expected


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


# --------------------------------------------------------------------------- the walker


class _Walker:
    """Checks plain data against a ``msgspec.inspect`` type, one method per kind."""

    def __init__(self, located: Located) -> None:
        self.located = located

    def problem(self, path: _Path, message: str) -> Problem:
        return self.located.problem(path, message)

    def check(self, value: Any, t: mi.Type, path: _Path) -> list[Problem]:
        t = _unwrap(t)
        if isinstance(t, mi.AnyType):
            return []
        if isinstance(t, mi.StructType) and not t.array_like:
            return self.struct(value, t, path)
        if isinstance(t, mi.DataclassType | mi.TypedDictType):
            return self.record(value, t, path)
        if isinstance(t, mi.ListType | mi.SetType | mi.FrozenSetType | mi.VarTupleType):
            return self.collection(value, t, path)
        if isinstance(t, mi.TupleType):
            return self.fixed_tuple(value, t, path)
        if isinstance(t, mi.DictType | mi.FrozenDictType):
            return self.mapping(value, t, path)
        if isinstance(t, mi.UnionType):
            return self.union(value, t, path)
        if isinstance(t, mi.LiteralType):
            return self.literal(value, t, path)
        if isinstance(t, mi.EnumType):
            return self.enum(value, t, path)
        return self.leaf(value, t, path)

    # ---- leaves

    def leaf(self, value: Any, t: mi.Type, path: _Path) -> list[Problem]:
        """Anything not walked here is checked by msgspec itself."""
        try:
            msgspec.convert(value, _python_type(t), strict=True)
        except msgspec.ValidationError as exc:
            message, where = _split_error(str(exc))
            return [self.problem(path + where, _type_message(message))]
        return []

    def literal(self, value: Any, t: mi.LiteralType, path: _Path) -> list[Problem]:
        if any(type(v) is type(value) and v == value for v in t.values):
            return []
        return [self.one_of(path, t.values, value)]

    def enum(self, value: Any, t: mi.EnumType, path: _Path) -> list[Problem]:
        try:
            msgspec.convert(value, t.cls, strict=True)
        except msgspec.ValidationError:
            return [self.one_of(path, [member.value for member in t.cls], value)]
        return []

    def one_of(self, path: _Path, allowed: Sequence[Any], value: Any) -> Problem:
        choices = ", ".join(_show(v) for v in allowed)
        expected = choices if len(allowed) == 1 else f"one of {choices}"
        return self.problem(path, f"expected {expected}, got {_show(value)}")

    # ---- objects

    def struct(self, value: Any, t: mi.StructType, path: _Path) -> list[Problem]:
        if not isinstance(value, dict):
            return [self.problem(path, f"expected mapping, got {_kind(value)}")]
        problems: list[Problem] = []
        tag_field = t.tag_field
        if tag_field is not None and tag_field in value and value[tag_field] != t.tag:
            problems.append(self.one_of((*path, tag_field), [t.tag], value[tag_field]))
        fields = {key: item for key, item in value.items() if key != tag_field}
        problems += self.fields(fields, t.fields, path, forbid_unknown=t.forbid_unknown_fields)
        return problems or self.post_init(value, t.cls, path)

    def record(
        self, value: Any, t: mi.DataclassType | mi.TypedDictType, path: _Path
    ) -> list[Problem]:
        """Dataclasses and TypedDicts: like a Struct, but msgspec ignores unknown keys."""
        if not isinstance(value, dict):
            return [self.problem(path, f"expected mapping, got {_kind(value)}")]
        return self.fields(value, t.fields, path, forbid_unknown=False) or self.post_init(
            value, t.cls, path
        )

    def fields(
        self,
        value: dict[Any, Any],
        fields: tuple[mi.Field, ...],
        path: _Path,
        *,
        forbid_unknown: bool,
    ) -> list[Problem]:
        by_name = {f.encode_name: f for f in fields}
        problems: list[Problem] = []
        for key, item in value.items():
            field = by_name.get(key)
            if field is not None:
                problems += self.check(item, field.type, (*path, key))
            elif forbid_unknown:
                problems.append(self.unknown_field(key, list(by_name), path))
        for field in fields:
            if field.required and field.encode_name not in value:
                problems.append(self.problem(path, f"missing required field {field.encode_name!r}"))
        return problems

    def unknown_field(self, key: Any, names: list[str], path: _Path) -> Problem:
        message = f"unknown field {key!r}"
        close = difflib.get_close_matches(str(key), names, n=1)
        if close:
            message += f" (did you mean {close[0]!r}?)"
        return self.problem((*path, _path_key(key)), message)

    def post_init(self, value: Any, cls: type, path: _Path) -> list[Problem]:
        """Run a clean object's ``__post_init__`` so its ValueErrors get a line too."""
        if not hasattr(cls, "__post_init__"):
            return []
        try:
            msgspec.convert(value, cls, strict=True)
        except msgspec.ValidationError as exc:
            message, where = _split_error(str(exc))
            return [self.problem(path + where, message)]
        return []

    # ---- containers

    def length(self, n: int, t: Any, noun: str, path: _Path) -> list[Problem]:
        if t.min_length is not None and n < t.min_length:
            return [self.problem(path, f"expected at least {_count(t.min_length, noun)}, got {n}")]
        if t.max_length is not None and n > t.max_length:
            return [self.problem(path, f"expected at most {_count(t.max_length, noun)}, got {n}")]
        return []

    def collection(self, value: Any, t: mi.CollectionType, path: _Path) -> list[Problem]:
        if not isinstance(value, list):
            return [self.problem(path, f"expected list, got {_kind(value)}")]
        problems = self.length(len(value), t, "item", path)
        for index, item in enumerate(value):
            problems += self.check(item, t.item_type, (*path, index))
        return problems

    def fixed_tuple(self, value: Any, t: mi.TupleType, path: _Path) -> list[Problem]:
        if not isinstance(value, list):
            return [self.problem(path, f"expected list, got {_kind(value)}")]
        if len(value) != len(t.item_types):
            expected = _count(len(t.item_types), "item")
            return [self.problem(path, f"expected exactly {expected}, got {len(value)}")]
        problems: list[Problem] = []
        for index, (item, item_type) in enumerate(zip(value, t.item_types, strict=True)):
            problems += self.check(item, item_type, (*path, index))
        return problems

    def mapping(self, value: Any, t: mi.DictType | mi.FrozenDictType, path: _Path) -> list[Problem]:
        if not isinstance(value, dict):
            return [self.problem(path, f"expected mapping, got {_kind(value)}")]
        problems = self.length(len(value), t, "entry", path)
        for key, item in value.items():
            where = (*path, _path_key(key))
            for bad_key in self.check(key, t.key_type, where):
                problems.append(replace(bad_key, message=f"invalid key: {bad_key.message}"))
            problems += self.check(item, t.value_type, where)
        return problems

    # ---- unions

    def union(self, value: Any, t: mi.UnionType, path: _Path) -> list[Problem]:
        members = [_unwrap(m) for m in t.types]
        if isinstance(value, dict):
            objects = [m for m in members if _is_object(m)]
            if len(objects) == 1:
                return self.check(value, objects[0], path)
            tagged = [m for m in objects if isinstance(m, mi.StructType) and m.tag_field]
            if objects and len(tagged) == len(objects):
                return self.tagged(value, tagged, path)
        elif isinstance(value, list):
            arrays = [m for m in members if _is_array(m)]
            if len(arrays) == 1:
                return self.check(value, arrays[0], path)
        else:
            scalars = [m for m in members if not _is_object(m) and not _is_array(m)]
            results = [self.check(value, m, path) for m in scalars]
            if any(not found for found in results):
                return []
            useful = [
                found for m, found in zip(scalars, results, strict=True) if _same_kind(value, m)
            ]
            if len(useful) == 1:
                return useful[0]
        return self.leaf(value, t, path)

    def tagged(
        self, value: dict[Any, Any], members: list[mi.StructType], path: _Path
    ) -> list[Problem]:
        """A tagged union of Structs: the tag field picks the Struct to check against."""
        tag_field = str(members[0].tag_field)
        by_tag = {m.tag: m for m in members}
        if tag_field not in value:
            choices = ", ".join(_show(tag) for tag in by_tag)
            return [self.problem(path, f"missing required field {tag_field!r} (one of {choices})")]
        tag = value[tag_field]
        chosen = by_tag.get(tag) if isinstance(tag, str | int) else None
        if chosen is None or type(chosen.tag) is not type(tag):
            return [self.one_of((*path, tag_field), list(by_tag), tag)]
        return self.struct(value, chosen, path)


# --------------------------------------------------------------------------- public entry points


def validate(
    value: Any, typ: Any, located: Located, base: tuple[PathKey, ...] = ()
) -> list[Problem]:
    """Every problem of ``value`` (the sub-tree of ``located`` at ``base``) against ``typ``.

    ``typ`` is anything ``msgspec.convert`` accepts (a Struct, ``list[Route]``,
    ``Route | None``...). Problems come sorted by line.
    """
    problems = _Walker(located).check(value, mi.type_info(typ), base)
    return sorted(problems, key=lambda p: p.line)


def convert(
    value: Any, typ: type[T], located: Located, base: tuple[PathKey, ...] = ()
) -> tuple[T | None, list[Problem]]:
    """Validate, then build the typed value; ``(None, problems)`` if anything is wrong.

    Conversion is ``strict=True``: a YAML string never silently becomes a number
    or a bool (``port: "8080"`` is an error, not 8080). msgspec still accepts an
    int where a float is expected in strict mode, so ``temperature: 1`` is fine.
    """
    problems = validate(value, typ, located, base)
    if any(p.severity == "error" for p in problems):
        return None, problems
    try:
        return msgspec.convert(value, typ, strict=True), problems
    except msgspec.ValidationError as exc:
        message, where = _split_error(str(exc))
        return None, [*problems, located.problem(base + where, message)]
