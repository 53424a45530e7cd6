"""YAML text -> a tree of located nodes, with ``${VAR}`` substituted.

Why not ``yaml.safe_load``: it forgets where values were written, lets a duplicate key win
silently and applies YAML 1.1's surprises (``on:`` is True, ``no`` is False, ``10:00`` is 600).
Here every node keeps its FILE:LINE and its source text, so the schema decides what a scalar
means: a field that wants a string gets the text as written, one that wants a number gets the
number YAML resolves. Keys are always the text as written.

Environment variables are substituted in every scalar. A scalar that used a variable remembers
its text as written (``shown``), so no error message ever prints a secret taken from the
environment.
"""

from __future__ import annotations

import re
from collections.abc import Mapping as AbcMapping
from dataclasses import dataclass, field, replace
from typing import Any

import yaml

from alertd.errors import Loc, Problem

try:  # the C loader is several times faster; behaviour is the same
    from yaml import CSafeLoader as _BaseLoader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _BaseLoader  # type: ignore[assignment]

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}\n]*))?\}")
_TOKEN = re.compile(r"_alertdvar(\d+)_")
_BAD_VAR = re.compile(r"\$\{(?![A-Za-z_][A-Za-z0-9_]*(?::-[^}]*)?\})[^}]*\}?")
_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG, _INT_TAG, _FLOAT_TAG = (f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float"))
MAX_EXPANSION = 100_000  # values that aliases may add in one file (a billion laughs adds 10^9)
MAX_DEPTH = 64  # nested lists and mappings (a rule file needs fewer than 12)


# The nodes are not frozen, though nothing changes one once the builder made it: a frozen
# dataclass's __init__ sets each field through object.__setattr__ (2.1 us for a Scalar on
# the benchmark machine, against 0.27), and a file of 1,000 rules makes ~6,800 nodes.


@dataclass(slots=True)
class Scalar:
    """A YAML scalar. ``value`` is what YAML 1.1 resolves (after substitution), ``text`` the
    string as written (after substitution), ``shown`` what an error message may quote."""

    loc: Loc
    value: Any
    text: str
    shown: str
    quoted: bool
    from_env: bool
    broken: bool = False  # a variable in it was unset or malformed (already reported)


@dataclass(slots=True)
class Sequence:
    loc: Loc
    items: tuple[Node, ...]


@dataclass(slots=True)
class Mapping:
    """A YAML mapping; ``keys`` gives the place each key was written."""

    loc: Loc
    items: dict[str, Node]
    keys: dict[str, Loc] = field(default_factory=dict)


Node = Scalar | Sequence | Mapping


def kind_of(node: Node) -> str:
    """How an error message names what the user wrote."""
    if isinstance(node, Mapping):
        return "a mapping"
    if isinstance(node, Sequence):
        return "a list"
    if node.value is None:
        return "nothing"
    if isinstance(node.value, bool):
        return "true/false"
    if isinstance(node.value, (int, float)):
        return f"the number {node.shown}"
    return f"'{node.shown}'"


def substitute(text: str, loc: Loc, env: AbcMapping[str, str], problems: list[Problem],
               strict: bool = True, used: dict[str, str] | None = None) -> str:
    """Replace ``${VAR}`` and ``${VAR:-default}``; an unset variable without default is an
    error, or (``strict=False``, for rule tests that connect nowhere) an empty string.
    ``used`` collects each value taken from the environment -> ``${VAR}`` as written, so
    that error messages can be scrubbed of it (``scrub``)."""
    for bad in _BAD_VAR.finditer(text):
        problems.append(Problem(loc, f"malformed variable reference '{bad.group(0)}': "
                                     "write ${NAME} or ${NAME:-default}"))

    def replace(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = env.get(name)
        if value:
            if used is not None:
                used.setdefault(value, f"${{{name}}}")
            return value
        if default is not None:
            return default
        if not strict:
            return ""
        if value == "":
            problems.append(Problem(loc, f"environment variable {name} is set but empty"))
            return ""
        problems.append(Problem(loc, f"environment variable {name} is not set "
                                     f"(set it, or write ${{{name}:-default}})"))
        return ""

    return _VAR.sub(replace, text)


def scrub(problems: list[Problem], used: AbcMapping[str, str]) -> list[Problem]:
    """Problems with every value taken from the environment replaced by the ``${VAR}`` it was
    written as: whatever error path quotes a value, it quotes the file, never a secret.
    Values shorter than 4 characters are left alone (they would garble line numbers and
    cannot be secrets worth the name)."""
    values = sorted((v for v in used if len(v) >= 4), key=len, reverse=True)
    if not values:
        return problems
    cleaned = []
    for problem in problems:
        message = problem.message
        for value in values:
            message = message.replace(value, used[value])
        cleaned.append(Problem(problem.loc, message))
    return cleaned


def _protect(text: str) -> tuple[str, list[str]]:
    """Replace each ``${...}`` by a plain token before YAML parses the text, so that
    ``urls: [mailtos://user:${PASSWORD}@host]`` works although braces are flow syntax."""
    found: list[str] = []

    def token(match: re.Match[str]) -> str:
        found.append(match.group(0))
        return f"_alertdvar{len(found) - 1}_"

    return _VAR.sub(token, text), found


class _Builder:
    def __init__(self, file: str, env: AbcMapping[str, str], problems: list[Problem],
                 strict: bool = True, protected: list[str] | None = None,
                 used: dict[str, str] | None = None, aliases: bool = True) -> None:
        self.file = file
        self.used = used
        self.strict = strict
        self.protected = protected or []
        self.env = env
        self.problems = problems
        self.resolver = _BaseLoader("")  # resolves plain scalars to YAML 1.1 types
        self.done: dict[int, Node] = {}
        self.locs: dict[int, Loc] = {}  # by line
        # Aliases share the anchored node, so building stays linear; what they would add if
        # expanded (every later reader walks the tree) is counted and bounded instead.
        self.sizes: dict[int, int] = {}
        self.aliases = aliases  # False: the text has no ``*``, so no node is met twice
        self.building: set[int] = set()
        self.expanded = 0
        self.refused = False

    def loc(self, node: yaml.Node) -> Loc:
        line = node.start_mark.line + 1
        found = self.locs.get(line)
        if found is None:  # one per line: a key and its value share it (`alertd check`
            found = self.locs[line] = Loc(self.file, line)  # on 1,000 rules: 12,000 -> 5,000)
        return found

    def refuse(self, node: yaml.Node, message: str) -> Scalar:
        if not self.refused:  # one line for a bomb, not one per alias
            self.refused = True
            self.problems.append(Problem(self.loc(node), message))
        return Scalar(self.loc(node), None, "", "", False, False, broken=True)

    def build(self, node: yaml.Node, depth: int = 0) -> Node:
        if not self.aliases:  # every node once: nothing to count or look up
            return self._made(node, depth)
        if id(node) in self.building:
            return self.refuse(node, "an alias refers to the list or mapping that contains it "
                                     "(a recursive alias); write the values out")
        if id(node) in self.done:  # an alias: the anchored node again
            self.expanded += self.sizes[id(node)]
            if self.expanded > MAX_EXPANSION:
                return self.refuse(node, f"too many aliases: they expand to more than "
                                         f"{MAX_EXPANSION} values")
            return self.done[id(node)]
        self.building.add(id(node))
        built = self._made(node, depth)
        self.building.discard(id(node))
        self.done[id(node)] = built
        self.sizes[id(node)] = self.size(node)
        return built

    def _made(self, node: yaml.Node, depth: int) -> Node:
        """``node`` built, however deep it is nested (``build`` looks after aliases)."""
        if depth > MAX_DEPTH:
            return self.refuse(node, f"lists and mappings nested more than {MAX_DEPTH} deep")
        if isinstance(node, yaml.MappingNode):
            return self.mapping(node, depth)
        if isinstance(node, yaml.SequenceNode):
            return Sequence(self.loc(node), tuple(self.build(item, depth + 1)
                                                  for item in node.value))
        assert isinstance(node, yaml.ScalarNode)
        return self.scalar(node)

    def size(self, node: yaml.Node) -> int:
        """Values in ``node`` counted as if every alias in it were expanded."""
        if isinstance(node, yaml.SequenceNode):
            return 1 + sum(self.sizes.get(id(item), 1) for item in node.value)
        if isinstance(node, yaml.MappingNode):
            return 1 + sum(1 + self.sizes.get(id(value), 1) for _key, value in node.value)
        return 1

    def scalar(self, node: yaml.ScalarNode) -> Scalar:
        loc = self.loc(node)
        raw = self.restore(node.value)
        before = len(self.problems)
        text = substitute(raw, loc, self.env, self.problems, self.strict, self.used) \
            if "${" in raw else raw
        broken = len(self.problems) > before
        quoted = node.style in ("'", '"', "|", ">")
        if quoted or not self.strict and self.unset(raw):
            value: Any = text  # lenient: an unset secret is an empty string, not nothing
        else:
            # a plain scalar that used a variable is typed by what the variable gave
            tag = self.resolver.resolve(  # type: ignore[no-untyped-call]
                yaml.ScalarNode, text, (True, False)) if text != raw else node.tag
            if tag == _STR_TAG:  # what the constructor gives, the usual cases without it
                value = text
            elif tag == _INT_TAG and text.isdigit() and (text[0] != "0" or text == "0"):
                value = int(text)  # (a leading 0 is octal in YAML 1.1)
            elif tag == _FLOAT_TAG and text[-1:].isdigit() and "_" not in text \
                    and ":" not in text:
                value = float(text)
            else:
                try:
                    value = self.resolver.construct_object(yaml.ScalarNode(tag, text))
                except (yaml.YAMLError, ValueError):
                    value = text
                self.resolver.constructed_objects.clear()
            if ":" in text and isinstance(value, (int, float)) and not isinstance(value, bool):
                value = text  # YAML 1.1 reads 1:30 as 90 (base 60); an operator never means it
        return Scalar(loc, value, text, raw, quoted, text != raw, broken)

    def unset(self, raw: str) -> bool:
        """Whether ``raw`` uses a variable that is unset (or empty) and has no default."""
        return any(m.group(2) is None and not self.env.get(m.group(1))
                   for m in _VAR.finditer(raw))

    def restore(self, text: str) -> str:
        """The text as the user wrote it, with ``${...}`` back in place of the tokens."""
        if "_alertdvar" not in text:
            return text
        return _TOKEN.sub(lambda m: self.protected[int(m.group(1))]
                          if int(m.group(1)) < len(self.protected) else m.group(0), text)

    def mapping(self, node: yaml.MappingNode, depth: int) -> Mapping:
        items: dict[str, Node] = {}
        keys: dict[str, Loc] = {}
        merged: dict[str, Node] = {}
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                sources = value_node.value if isinstance(value_node, yaml.SequenceNode) \
                    else [value_node]
                for source in sources:
                    built = self.build(source, depth + 1)
                    if isinstance(built, Mapping):
                        for name, value in built.items.items():
                            merged.setdefault(name, value)
                    else:
                        self.problems.append(Problem(self.loc(source),
                                                     "'<<' merges only mappings"))
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                self.problems.append(Problem(self.loc(key_node),
                                             "a key must be a plain name, not a list or mapping"))
                continue
            name = self.restore(key_node.value)
            if name in items:
                self.problems.append(Problem(
                    self.loc(key_node),
                    f"duplicate key '{name}' (first written on line {keys[name].line})"))
                continue
            keys[name] = self.loc(key_node)
            value = self.build(value_node, depth + 1)
            if not isinstance(value, Scalar) and value.loc != keys[name]:
                # a block mapping or list is named by its key: "needs X" points there
                value = replace(value, loc=keys[name])
            items[name] = value
        for name, value in merged.items():
            if name not in items:
                items[name] = value
                keys[name] = value.loc
        return Mapping(self.loc(node), items, keys)


def parse_yaml(text: str, file: str, env: AbcMapping[str, str],
               problems: list[Problem], strict: bool = True,
               used: dict[str, str] | None = None) -> Node | None:
    """Parse one YAML document into located nodes; syntax errors become problems. ``used``
    collects the environment values substituted (see ``substitute``)."""
    text, protected = _protect(text)
    try:
        root = yaml.compose(text, Loader=_BaseLoader)
    except RecursionError:
        problems.append(Problem(Loc(file, 1), f"lists and mappings nested more than "
                                              f"{MAX_DEPTH} deep"))
        return None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else 1
        what = error.problem or error.context or "invalid YAML"
        context = ""
        if error.context and error.problem:
            started = error.context_mark
            since = f" that starts on line {started.line + 1}" if started is not None \
                and mark is not None and started.line != mark.line else ""
            context = f" ({error.context}{since})"
        problems.append(Problem(Loc(file, line), f"YAML syntax error: {what}{context}"))
        return None
    except yaml.YAMLError as error:
        problems.append(Problem(Loc(file, 1), f"YAML error: {error}"))
        return None
    if root is None:
        return None
    builder = _Builder(file, env, problems, strict, protected, used, aliases="*" in text)
    built = builder.build(root)
    return None if builder.refused else built  # the one line said it: nothing more to check
