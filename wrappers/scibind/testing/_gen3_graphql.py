"""Peregrine's GraphQL, as far as the fake Gen3 commons needs it: a parser and an executor.

Supported: queries (anonymous or named, with ``$variables`` and defaults), aliases, fragments (named and
inline), ``@include``/``@skip``, and peregrine's schema shape: one root field per node type
(``sample(first: 10, offset: 0, project_id: "P-X", submitter_id: [...], <property>: value)``), a
``_<node>_count`` root field, node fields for every property, link fields in both directions (with the
same arguments) and ``_<link>_count`` fields. Documents are validated before they run; errors come back
as a list of messages worded like graphql-core's.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from scibind.testing._gen3_graph import Graph, GraphNode

__all__ = ["GraphQLError", "execute"]

# -- lexing ------------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<ignored>[\s,\ufeff]+|\#[^\n\r]*)
  | (?P<block>\"\"\"(?:[^"\\]|\\.|"(?!""))*\"\"\")
  | (?P<string>"(?:[^"\\\n\r]|\\.)*")
  | (?P<number>-?(?:0|[1-9][0-9]*)(?P<frac>\.[0-9]+)?(?P<exp>[eE][+-]?[0-9]+)?)
  | (?P<name>[_A-Za-z][_0-9A-Za-z]*)
  | (?P<spread>\.\.\.)
  | (?P<punct>[!$&()\:=@\[\]{|}])
    """,
    re.VERBOSE,
)
_ESCAPES = {'"': '"', "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}


class GraphQLError(Exception):
    """A GraphQL error message (syntax, validation or execution)."""


@dataclass(frozen=True)
class _Tok:
    kind: str
    value: str
    pos: int


def _location(source: str, pos: int) -> str:
    line = source.count("\n", 0, pos) + 1
    column = pos - (source.rfind("\n", 0, pos) + 1) + 1
    return f"({line}:{column})"


def _syntax(source: str, pos: int, message: str) -> GraphQLError:
    return GraphQLError(f"Syntax Error GraphQL {_location(source, pos)} {message}")


def _unescape(raw: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(raw):
        ch = raw[i]
        if ch == "\\" and i + 1 < len(raw):
            nxt = raw[i + 1]
            if nxt == "u":
                out.append(chr(int(raw[i + 2 : i + 6], 16)))
                i += 6
                continue
            out.append(_ESCAPES.get(nxt, nxt))
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)


def _lex(source: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    pos = 0
    while pos < len(source):
        match = _TOKEN.match(source, pos)
        if match is None:
            raise _syntax(source, pos, f"Unexpected character {source[pos]!r}.")
        kind = match.lastgroup or ""
        if kind in ("frac", "exp"):
            kind = "number"
        text = match.group(0)
        if kind == "block":
            tokens.append(_Tok("string", text[3:-3].replace('\\"""', '"""'), pos))
        elif kind == "string":
            tokens.append(_Tok("string", _unescape(text[1:-1]), pos))
        elif kind == "number":
            tokens.append(
                _Tok("float" if ("." in text or "e" in text.lower()) else "int", text, pos)
            )
        elif kind != "ignored":
            tokens.append(_Tok(kind, text, pos))
        pos = match.end()
    tokens.append(_Tok("EOF", "<EOF>", len(source)))
    return tokens


# -- parsing -----------------------------------------------------------------------------------------


@dataclass
class _Field:
    alias: str | None
    name: str
    args: dict[str, Any]
    directives: list[tuple[str, dict[str, Any]]]
    selections: list[Any] | None
    pos: int

    @property
    def key(self) -> str:
        return self.alias or self.name


@dataclass
class _Spread:
    name: str
    directives: list[tuple[str, dict[str, Any]]]


@dataclass
class _Inline:
    type_condition: str | None
    directives: list[tuple[str, dict[str, Any]]]
    selections: list[Any]


@dataclass
class _Operation:
    kind: str
    name: str | None
    variables: dict[str, tuple[str, Any]] = field(default_factory=dict)
    selections: list[Any] = field(default_factory=list)


@dataclass(frozen=True)
class _Var:
    name: str


@dataclass(frozen=True)
class _Enum:
    name: str


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = _lex(source)
        self.i = 0

    @property
    def tok(self) -> _Tok:
        return self.tokens[self.i]

    def _describe(self, tok: _Tok) -> str:
        if tok.kind == "EOF":
            return "EOF"
        if tok.kind == "string":
            return f'String "{tok.value}"'
        if tok.kind == "name":
            return f'Name "{tok.value}"'
        if tok.kind in ("int", "float"):
            return f'{tok.kind.capitalize()} "{tok.value}"'
        return tok.value

    def fail(self, expected: str) -> GraphQLError:
        return _syntax(
            self.source, self.tok.pos, f"Expected {expected}, found {self._describe(self.tok)}"
        )

    def peek(self, value: str) -> bool:
        return self.tok.kind in ("punct", "spread") and self.tok.value == value

    def expect(self, value: str) -> _Tok:
        if not self.peek(value):
            raise self.fail(value)
        tok = self.tok
        self.i += 1
        return tok

    def name(self) -> str:
        if self.tok.kind != "name":
            raise self.fail("Name")
        value = self.tok.value
        self.i += 1
        return value

    def document(self) -> tuple[list[_Operation], dict[str, _Inline]]:
        operations: list[_Operation] = []
        fragments: dict[str, _Inline] = {}
        if self.tok.kind == "EOF":
            raise self.fail("{")
        while self.tok.kind != "EOF":
            if self.peek("{"):
                operations.append(_Operation("query", None, {}, self.selection_set()))
            elif self.tok.kind == "name" and self.tok.value in (
                "query",
                "mutation",
                "subscription",
            ):
                kind = self.name()
                name = self.name() if self.tok.kind == "name" else None
                variables = self.variable_definitions() if self.peek("(") else {}
                self.directives()
                operations.append(_Operation(kind, name, variables, self.selection_set()))
            elif self.tok.kind == "name" and self.tok.value == "fragment":
                self.i += 1
                fname = self.name()
                if fname == "on":
                    raise self.fail("fragment name")
                if self.tok.kind != "name" or self.tok.value != "on":
                    raise self.fail('"on"')
                self.i += 1
                type_condition = self.name()
                directives = self.directives()
                fragments[fname] = _Inline(type_condition, directives, self.selection_set())
            else:
                raise _syntax(self.source, self.tok.pos, f"Unexpected {self._describe(self.tok)}")
        return operations, fragments

    def variable_definitions(self) -> dict[str, tuple[str, Any]]:
        self.expect("(")
        out: dict[str, tuple[str, Any]] = {}
        while not self.peek(")"):
            self.expect("$")
            var = self.name()
            self.expect(":")
            type_ = self.type_ref()
            default = None
            if self.peek("="):
                self.i += 1
                default = self.value(const=True)
            out[var] = (type_, default)
        self.expect(")")
        return out

    def type_ref(self) -> str:
        if self.peek("["):
            self.i += 1
            inner = self.type_ref()
            self.expect("]")
            text = f"[{inner}]"
        else:
            text = self.name()
        if self.peek("!"):
            self.i += 1
            text += "!"
        return text

    def directives(self) -> list[tuple[str, dict[str, Any]]]:
        out: list[tuple[str, dict[str, Any]]] = []
        while self.peek("@"):
            self.i += 1
            name = self.name()
            out.append((name, self.arguments() if self.peek("(") else {}))
        return out

    def selection_set(self) -> list[Any]:
        self.expect("{")
        selections: list[Any] = []
        while not self.peek("}"):
            if self.tok.kind == "EOF":
                raise self.fail("Name")
            selections.append(self.selection())
        self.expect("}")
        if not selections:
            raise self.fail("Name")
        return selections

    def selection(self) -> Any:
        if self.peek("..."):
            self.i += 1
            if self.tok.kind == "name" and self.tok.value != "on":
                return _Spread(self.name(), self.directives())
            type_condition = None
            if self.tok.kind == "name" and self.tok.value == "on":
                self.i += 1
                type_condition = self.name()
            return _Inline(type_condition, self.directives(), self.selection_set())
        pos = self.tok.pos
        first = self.name()
        alias, name = None, first
        if self.peek(":"):
            self.i += 1
            alias, name = first, self.name()
        args = self.arguments() if self.peek("(") else {}
        directives = self.directives()
        selections = self.selection_set() if self.peek("{") else None
        return _Field(alias, name, args, directives, selections, pos)

    def arguments(self) -> dict[str, Any]:
        self.expect("(")
        out: dict[str, Any] = {}
        while not self.peek(")"):
            name = self.name()
            self.expect(":")
            out[name] = self.value(const=False)
        self.expect(")")
        return out

    def value(self, const: bool) -> Any:
        tok = self.tok
        if self.peek("$"):
            if const:
                raise self.fail("constant value")
            self.i += 1
            return _Var(self.name())
        if self.peek("["):
            self.i += 1
            items = []
            while not self.peek("]"):
                if self.tok.kind == "EOF":
                    raise self.fail("]")
                items.append(self.value(const))
            self.i += 1
            return items
        if self.peek("{"):
            self.i += 1
            obj: dict[str, Any] = {}
            while not self.peek("}"):
                key = self.name()
                self.expect(":")
                obj[key] = self.value(const)
            self.i += 1
            return obj
        self.i += 1
        if tok.kind == "int":
            return int(tok.value)
        if tok.kind == "float":
            return float(tok.value)
        if tok.kind == "string":
            return tok.value
        if tok.kind == "name":
            if tok.value in ("true", "false"):
                return tok.value == "true"
            if tok.value == "null":
                return None
            return _Enum(tok.value)
        self.i -= 1
        raise _syntax(self.source, tok.pos, f"Unexpected {self._describe(tok)}")


# -- schema --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _FieldSpec:
    kind: str  # "scalar", "list", "count"
    type_name: str  # scalar type, or the node type of a list / count
    link: str | None = None  # outgoing link name, or backref name
    backref: bool = False


_LIST_ARGS = {
    "first": "Int", "offset": "Int", "id": "String", "ids": "[String]", "project_id": "[String]",
    "submitter_id": "[String]", "order_by_asc": "String", "order_by_desc": "String",
    "with_links": "[String]", "with_links_any": "[String]", "without_links": "[String]",
    "quick_search": "String",
}  # fmt: skip
_COMMON_SCALARS = {
    "id": "String", "type": "String", "project_id": "String", "submitter_id": "String",
    "created_datetime": "String", "updated_datetime": "String", "state": "String",
}  # fmt: skip


def _scalar_type(schema: Any) -> str:
    if not isinstance(schema, Mapping):
        return "String"
    types = schema.get("type")
    names = set(types if isinstance(types, list) else [types] if types else [])
    if "array" in names:
        return "[String]"
    if "integer" in names:
        return "Int"
    if "number" in names:
        return "Float"
    if "boolean" in names:
        return "Boolean"
    return "String"


class _Schema:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.types: dict[str, dict[str, _FieldSpec]] = {}
        self.list_args: dict[str, dict[str, str]] = {}
        for label, info in graph.infos.items():
            fields: dict[str, _FieldSpec] = {
                name: _FieldSpec("scalar", t) for name, t in _COMMON_SCALARS.items()
            }
            if label in ("program", "project"):
                fields.pop("submitter_id")
                fields.pop("created_datetime")
                fields.pop("updated_datetime")
            if label == "program":
                fields.pop("project_id")
            for name, prop in info.properties.items():
                if name not in info.link_names:
                    fields[name] = _FieldSpec("scalar", _scalar_type(prop))
            for link in info.links:
                fields[link.name] = _FieldSpec("list", link.target_type, link.name)
                fields[f"_{link.name}_count"] = _FieldSpec("count", link.target_type, link.name)
            for backref, sources in graph.backrefs_of(label).items():
                fields[backref] = _FieldSpec("list", sources[0][0], backref, backref=True)
                fields[f"_{backref}_count"] = _FieldSpec(
                    "count", sources[0][0], backref, backref=True
                )
            self.types[label] = fields
            args = dict(_LIST_ARGS)
            for name, spec in fields.items():
                if spec.kind == "scalar" and name not in args and name != "type":
                    args[name] = (
                        spec.type_name if spec.type_name.startswith("[") else f"[{spec.type_name}]"
                    )
            self.list_args[label] = args
        self.root: dict[str, _FieldSpec] = {}
        for label in graph.infos:
            self.root[label] = _FieldSpec("list", label)
            self.root[f"_{label}_count"] = _FieldSpec("count", label)


# -- validation and execution ----------------------------------------------------------------------------


def _coerce(value: Any, type_name: str, describe: Callable[[], str]) -> Any:
    base = type_name.rstrip("!")
    if value is None:
        if type_name.endswith("!"):
            raise GraphQLError(f'{describe()}\nExpected "{type_name}", found null.')
        return None
    if base.startswith("["):
        inner = base[1:-1]
        items = value if isinstance(value, list) else [value]
        return [_coerce(item, inner, describe) for item in items]
    ok = {
        "Int": isinstance(value, int) and not isinstance(value, bool),
        "Float": isinstance(value, int | float) and not isinstance(value, bool),
        "String": isinstance(value, str),
        "ID": isinstance(value, str | int) and not isinstance(value, bool),
        "Boolean": isinstance(value, bool),
    }.get(base, True)
    if not ok:
        shown = value.name if isinstance(value, _Enum) else value
        raise GraphQLError(f'{describe()}\nExpected type "{base}", found {_show(shown)}.')
    return value


def _say(message: str) -> Callable[[], str]:
    return lambda: message


def _show(value: Any) -> str:
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class _Run:
    def __init__(
        self,
        graph: Graph,
        schema: _Schema,
        fragments: dict[str, _Inline],
        variables: dict[str, Any],
        readable: Callable[[str | None], bool],
    ) -> None:
        self.graph = graph
        self.schema = schema
        self.fragments = fragments
        self.variables = variables
        self.readable = readable
        self.errors: list[str] = []
        self.used_vars: set[str] = set()

    # value resolution
    def resolve_value(self, value: Any) -> Any:
        if isinstance(value, _Var):
            self.used_vars.add(value.name)
            return self.variables.get(value.name)
        if isinstance(value, list):
            return [self.resolve_value(v) for v in value]
        if isinstance(value, dict):
            return {k: self.resolve_value(v) for k, v in value.items()}
        return value

    def included(self, directives: list[tuple[str, dict[str, Any]]]) -> bool:
        for name, args in directives:
            condition = bool(self.resolve_value(args.get("if")))
            if name == "include" and not condition:
                return False
            if name == "skip" and condition:
                return False
        return True

    def collect(self, selections: list[Any], type_name: str) -> list[_Field]:
        fields: list[_Field] = []
        for selection in selections:
            if not self.included(selection.directives):
                continue
            if isinstance(selection, _Field):
                fields.append(selection)
            elif isinstance(selection, _Spread):
                fragment = self.fragments.get(selection.name)
                if fragment is None:
                    self.errors.append(f'Unknown fragment "{selection.name}".')
                elif fragment.type_condition in (None, type_name):
                    fields.extend(self.collect(fragment.selections, type_name))
            elif selection.type_condition in (None, type_name):
                fields.extend(self.collect(selection.selections, type_name))
        return fields

    # validation (a dry walk over the document)
    def validate(
        self, selections: list[Any], type_name: str, specs: Mapping[str, _FieldSpec]
    ) -> None:
        for spread in (s for s in selections if isinstance(s, _Spread)):
            if spread.name not in self.fragments:
                self.errors.append(f'Unknown fragment "{spread.name}".')
        for fld in self.collect(selections, type_name):
            if fld.name == "__typename":
                continue
            spec = specs.get(fld.name)
            if spec is None:
                self.errors.append(f'Cannot query field "{fld.name}" on type "{type_name}".')
                continue
            if spec.kind == "scalar":
                if fld.args:
                    for arg in fld.args:
                        self.errors.append(
                            f'Unknown argument "{arg}" on field "{fld.name}" of type "{type_name}".'
                        )
                if fld.selections is not None:
                    self.errors.append(
                        f'Field "{fld.name}" of type "{spec.type_name}" must not have a sub selection.'
                    )
                continue
            allowed = self.schema.list_args[spec.type_name]
            for arg, raw in fld.args.items():
                if arg not in allowed:
                    self.errors.append(
                        f'Unknown argument "{arg}" on field "{fld.name}" of type "{type_name}".'
                    )
                    continue
                shown = _show(raw.name if isinstance(raw, _Enum) else raw)
                message = f'Argument "{arg}" has invalid value {shown}.'
                try:
                    _coerce(
                        self.resolve_value(raw) if not isinstance(raw, _Var) else None,
                        allowed[arg],
                        _say(message),
                    )
                except GraphQLError as exc:
                    self.errors.append(str(exc))
                if isinstance(raw, _Var):
                    self.used_vars.add(raw.name)
            if spec.kind == "count":
                if fld.selections is not None:
                    self.errors.append(
                        f'Field "{fld.name}" of type "Int" must not have a sub selection.'
                    )
                continue
            if fld.selections is None:
                self.errors.append(
                    f'Field "{fld.name}" of type "[{spec.type_name}]" must have a sub selection.'
                )
                continue
            self.validate(fld.selections, spec.type_name, self.schema.types[spec.type_name])

    # execution
    def filter_nodes(
        self, nodes: list[GraphNode], label: str, args: Mapping[str, Any], *, paginate: bool
    ) -> list[GraphNode]:
        allowed = self.schema.list_args[label]
        values = {
            k: _coerce(self.resolve_value(v), allowed[k], lambda: "") for k, v in args.items()
        }
        graph = self.graph
        out = [
            n
            for n in nodes
            if self.readable(graph.project_id_of(n) if n.label != "program" else None)
        ]

        def prop(node: GraphNode, key: str) -> Any:
            if key == "id":
                return node.id
            if key == "type":
                return node.label
            if key == "project_id":
                return graph.project_id_of(node)
            return node.props.get(key)

        for key, value in values.items():
            if value is None or key in ("first", "offset", "order_by_asc", "order_by_desc"):
                continue
            if key == "ids":
                out = [n for n in out if n.id in value]
            elif key == "quick_search":
                out = [
                    n for n in out if value in n.id or value in str(n.props.get("submitter_id", ""))
                ]
            elif key in ("with_links", "with_links_any", "without_links"):

                def has(n: GraphNode, link: str) -> bool:
                    return bool(n.links.get(link)) or bool(graph.links_in(n, link))

                if key == "with_links":
                    out = [n for n in out if all(has(n, ln) for ln in value)]
                elif key == "with_links_any":
                    out = [n for n in out if any(has(n, ln) for ln in value)]
                else:
                    out = [n for n in out if not any(has(n, ln) for ln in value)]
            elif isinstance(value, list):
                out = [
                    n
                    for n in out
                    if (prop(n, key) in value)
                    or (isinstance(prop(n, key), list) and any(v in prop(n, key) for v in value))
                ]
            else:
                out = [n for n in out if prop(n, key) == value]
        if values.get("order_by_asc"):
            key = values["order_by_asc"]
            out.sort(
                key=lambda n: (
                    prop(n, key) is None,
                    prop(n, key) if prop(n, key) is not None else "",
                )
            )
        if values.get("order_by_desc"):
            key = values["order_by_desc"]
            out.sort(
                key=lambda n: (
                    prop(n, key) is not None,
                    prop(n, key) if prop(n, key) is not None else "",
                ),
                reverse=True,
            )
        if paginate:
            offset = values.get("offset") or 0
            first = values.get("first")
            first = 10 if first is None else first
            out = out[offset:]
            if first > 0:
                out = out[:first]
        return out

    def related(self, node: GraphNode, spec: _FieldSpec) -> list[GraphNode]:
        assert spec.link is not None
        if spec.backref:
            return self.graph.links_in(node, spec.link)
        return self.graph.links_out(node, spec.link)

    def node_object(self, node: GraphNode, selections: list[Any]) -> dict[str, Any]:
        label = node.label
        specs = self.schema.types[label]
        result: dict[str, Any] = {}
        for fld in self.collect(selections, label):
            if fld.name == "__typename":
                result[fld.key] = label
                continue
            spec = specs[fld.name]
            if spec.kind == "scalar":
                if fld.name == "id":
                    value: Any = node.id
                elif fld.name == "type":
                    value = label
                elif fld.name == "project_id":
                    value = self.graph.project_id_of(node)
                else:
                    value = node.props.get(fld.name)
                result[fld.key] = value
            elif spec.kind == "count":
                result[fld.key] = len(
                    self.filter_nodes(
                        self.related(node, spec), spec.type_name, fld.args, paginate=False
                    )
                )
            else:
                assert fld.selections is not None
                targets = self.filter_nodes(
                    self.related(node, spec), spec.type_name, fld.args, paginate=True
                )
                result[fld.key] = [self.node_object(t, fld.selections) for t in targets]
        return result

    def root(self, selections: list[Any]) -> dict[str, Any]:
        data: dict[str, Any] = {}
        for fld in self.collect(selections, "Root"):
            if fld.name == "__typename":
                data[fld.key] = "Root"
                continue
            spec = self.schema.root[fld.name]
            nodes = self.graph.nodes_of(spec.type_name)
            if spec.kind == "count":
                data[fld.key] = len(
                    self.filter_nodes(nodes, spec.type_name, fld.args, paginate=False)
                )
            else:
                assert fld.selections is not None
                found = self.filter_nodes(nodes, spec.type_name, fld.args, paginate=True)
                data[fld.key] = [self.node_object(n, fld.selections) for n in found]
        return data


def execute(
    graph: Graph,
    query: Any,
    variables: Any = None,
    operation_name: str | None = None,
    *,
    readable: Callable[[str | None], bool] = lambda _project_id: True,
) -> tuple[dict[str, Any] | None, list[str]]:
    """Run ``query``; returns ``(data, errors)`` as peregrine does (``data`` is None on failure)."""
    if not isinstance(query, str) or not query.strip():
        return None, ["Must provide query string."]
    if variables is not None and not isinstance(variables, Mapping):
        return None, ["Variables are invalid JSON."]
    try:
        operations, fragments = _Parser(query).document()
    except GraphQLError as exc:
        return None, [str(exc)]
    if operation_name:
        chosen = [op for op in operations if op.name == operation_name]
        if not chosen:
            return None, [f'Unknown operation named "{operation_name}".']
        operation = chosen[0]
    elif len(operations) != 1:
        return None, ["Must provide operation name if query contains multiple operations."]
    else:
        operation = operations[0]
    if operation.kind != "query":
        return None, [f"Schema is not configured for {operation.kind}s."]
    schema = _Schema(graph)
    given = dict(variables or {})
    values: dict[str, Any] = {}
    errors: list[str] = []
    for name, (type_name, default) in operation.variables.items():
        if name in given:
            try:
                message = f'Variable "${name}" got invalid value {_show(given[name])}.'
                values[name] = _coerce(given[name], type_name, _say(message))
            except GraphQLError as exc:
                errors.append(str(exc))
        elif default is not None:
            values[name] = default
        elif type_name.endswith("!"):
            errors.append(f'Variable "${name}" of required type "{type_name}" was not provided.')
        else:
            values[name] = None
    if errors:
        return None, errors
    run = _Run(graph, schema, fragments, values, readable)
    run.validate(operation.selections, "Root", schema.root)

    def undefined(value: Any) -> list[str]:
        if isinstance(value, _Var):
            return [value.name] if value.name not in operation.variables else []
        if isinstance(value, list):
            return [n for v in value for n in undefined(v)]
        if isinstance(value, dict):
            return [n for v in value.values() for n in undefined(v)]
        return []

    def walk(selections: list[Any]) -> None:
        for s in selections:
            if isinstance(s, _Field):
                for raw in [*s.args.values(), *(a for _, d in s.directives for a in d.values())]:
                    for name in undefined(raw):
                        run.errors.append(f'Variable "${name}" is not defined.')
                if s.selections:
                    walk(s.selections)
            elif isinstance(s, _Inline):
                walk(s.selections)

    walk(operation.selections)
    for fragment in fragments.values():
        walk(fragment.selections)
    for name in operation.variables:
        if name not in run.used_vars:
            run.errors.append(f'Variable "${name}" is never used.')
    if run.errors:
        return None, list(dict.fromkeys(run.errors))
    try:
        return run.root(operation.selections), []
    except GraphQLError as exc:
        return None, [str(exc)]
