"""Loading a rule file: the main file, its ``include:`` globs, and the whole-file checks.

``load_config`` either returns a complete, frozen ``Config`` or raises one ``ConfigError``
holding every problem found, each at its FILE:LINE.
"""

from __future__ import annotations

import errno
import gc
import glob
import os
import stat
from collections.abc import Mapping as AbcMapping
from pathlib import Path

from alertd.config import schema as s
from alertd.config.fields import Reader
from alertd.config.nodes import Mapping, Node, Scalar, parse_yaml, scrub
from alertd.config.rules import SETTINGS, Context, parse_rule, parse_settings, parse_silence
from alertd.config.sections import (ELEMENT_KEYS, NAVIXY_KEYS, parse_channel, parse_http,
                                     parse_source)
from alertd.errors import ConfigError, Loc, Problem

TOP_KEYS = ("state", "sources", "channels", "defaults", "rules", "silences", "include", "http",
            "shard")
INCLUDED_KEYS = ("sources", "channels", "rules", "silences")
DEFAULT_STATE = "alertd-state.db"
SOURCE_KEYS = frozenset(ELEMENT_KEYS + NAVIXY_KEYS)
MAX_FILE_BYTES = 1024 * 1024  # per file: a rule file of 10,000 rules is a tenth of it


def read_file(path: str, env: AbcMapping[str, str], problems: list[Problem],
              strict: bool = True, used: dict[str, str] | None = None) -> Node | None:
    """Parse one rule (or case) file. Only a regular file of at most ``MAX_FILE_BYTES`` is
    read: a FIFO would block for ever and /dev/zero never ends. The file is opened without
    blocking and checked on the open descriptor, so a swap after a check cannot slip by."""
    try:
        text = _read_regular(path)
    except FileNotFoundError:
        problems.append(Problem(Loc(path, 1), "no such file"))
        return None
    except _NotRegular as refused:
        problems.append(Problem(Loc(path, 1), str(refused)))
        return None
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) else "not UTF-8 text"
        problems.append(Problem(Loc(path, 1), f"cannot read the file: {reason}"))
        return None
    return parse_yaml(text, path, env, problems, strict, used)


class _NotRegular(Exception):
    """A path that is not a regular file of a sane size: the message says why."""


def _read_regular(path: str) -> str:
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        mode = os.fstat(descriptor).st_mode
        if stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR))
        if not stat.S_ISREG(mode):
            kind = "a FIFO" if stat.S_ISFIFO(mode) \
                else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) \
                else "a socket or other special file"
            raise _NotRegular(f"not a regular file ({kind}); alertd reads only regular files")
        with os.fdopen(os.dup(descriptor), "rb") as file:
            data = file.read(MAX_FILE_BYTES + 1)
    finally:
        os.close(descriptor)
    if len(data) > MAX_FILE_BYTES:
        raise _NotRegular(f"the file is larger than {MAX_FILE_BYTES // 1024} KiB, the most "
                          "alertd reads")
    return data.decode("utf-8")


class _Sections:
    """The named and listed entries of every file, before parsing, with where they stand."""

    def __init__(self) -> None:
        self.named: dict[str, dict[str, tuple[Loc, Node]]] = {"sources": {}, "channels": {}}
        self.listed: dict[str, list[Node]] = {"rules": [], "silences": []}

    def add(self, reader: Reader, root: Mapping) -> None:
        for section, entries in self.named.items():
            node = root.items.get(section)
            if node is None or isinstance(node, Scalar) and node.value is None:
                continue  # absent or written empty
            m = reader.mapping(node, f"'{section}'")
            if m is None:
                continue
            for name, node in m.items.items():
                if name in entries:
                    first = entries[name][0]
                    reader.error(m.keys[name], f"{section[:-1]} '{name}' is defined twice "
                                               f"(first at {first})")
                else:
                    entries[name] = (m.keys[name], node)
        for section, items in self.listed.items():
            if section in root.items:
                node = root.items[section]
                if isinstance(node, Scalar) and node.value is None:
                    continue
                items.extend(reader.sequence(node, f"'{section}'") or ())


def _includes(reader: Reader, root: Mapping, main: str) -> list[str]:
    patterns = reader.strings(root.items["include"], "include") or ()
    folder = os.path.dirname(main)
    found: list[str] = []
    for pattern in patterns:
        matches = sorted(glob.glob(os.path.join(folder, pattern)))
        if not matches:
            reader.error(root.items["include"].loc, f"include '{pattern}' matches no file")
        found.extend(m for m in matches if m not in found and os.path.abspath(m)
                     != os.path.abspath(main))
    return found


def load_config(path: str | os.PathLike[str], env: AbcMapping[str, str] | None = None,
                *, state: str | None = None, strict: bool = True,
                shard: s.Shard | None = None) -> s.Config:
    """Parse and check the rule file at ``path`` (and its includes) into a ``Config``.

    ``env`` is where ``${VAR}`` is looked up (the process environment by default); ``state``
    overrides the file's ``state:`` (the ``--state`` option), ``shard`` its ``shard:``
    (``--shard``). ``strict=False`` is for uses that connect and send nowhere (``alertd
    test``): unset variables become empty strings and channel URLs are not validated.

    The cyclic garbage collector is paused meanwhile: a file of 1,000 rules makes ~100,000
    objects that stay (nodes, then the rules), and the collections they set off found
    nothing to free and took ~15 % of ``alertd check``'s time.
    """
    paused = gc.isenabled()
    gc.disable()
    try:
        return _load(path, env, state, strict, shard)
    finally:
        if paused:
            gc.enable()


def _load(path: str | os.PathLike[str], env: AbcMapping[str, str] | None, state: str | None,
          strict: bool, shard: s.Shard | None) -> s.Config:
    main = os.fspath(path)
    env = os.environ if env is None else env
    problems: list[Problem] = []
    used: dict[str, str] = {}  # environment values substituted -> ${VAR}, scrubbed from errors
    reader = Reader(problems)
    root_node = read_file(main, env, problems, strict, used)
    if root_node is None and not problems:
        problems.append(Problem(Loc(main, 1), "the file is empty: it needs sources and rules"))
    root = reader.mapping(root_node, "the top level", TOP_KEYS) if root_node else None
    if root is None:
        raise ConfigError(scrub(problems, used))
    sections = _Sections()
    sections.add(reader, root)
    files = [Path(main)]
    if "include" in root.items:
        for included in _includes(reader, root, main):
            node = read_file(included, env, problems, strict, used)
            files.append(Path(included))
            if node is None:
                continue
            sub = reader.mapping(node, f"included file {included}", INCLUDED_KEYS)
            if sub is not None:
                sections.add(reader, sub)

    misindented = _misindented(reader, sections.named["sources"])
    sources = {name: parse_source(reader, name, node)
               for name, (_, node) in sections.named["sources"].items()
               if name not in misindented}
    if not sections.named["sources"]:
        reader.error(root.loc, "no sources are configured: add at least one under 'sources:'")
    context = Context({n: src for n, src in sources.items() if src is not None},
                      set(sources), set(sections.named["channels"]))
    channels = {name: parse_channel(reader, name, node, validate_urls=strict)
                for name, (_, node) in sections.named["channels"].items()}
    if "defaults" in root.items and not (isinstance(root.items["defaults"], Scalar)
                                         and root.items["defaults"].value is None):
        defaults = reader.mapping(root.items["defaults"], "defaults", SETTINGS)
        if defaults is not None:
            context.defaults = parse_settings(reader, defaults, "defaults", context)
            context.defaults_have_notify = "notify" in defaults.items

    rules: list[s.Rule] = []
    names: dict[str, Loc] = {}
    for index, node in enumerate(sections.listed["rules"], 1):
        rule = parse_rule(reader, node, index, context)
        name_node = node.items.get("name") if isinstance(node, Mapping) else None
        if isinstance(name_node, Scalar) and name_node.value is not None:
            if name_node.text in names:
                reader.error(name_node.loc, f"duplicate rule name '{name_node.shown}' "
                                            f"(first at {names[name_node.text]})")
                continue
            names[name_node.text] = name_node.loc
        if rule is not None:
            rules.append(rule)
    if not sections.listed["rules"]:
        reader.error(root.loc, "no rules are configured: add at least one under 'rules:'")
    silences = [parse_silence(reader, node, index, set(names), context)
                for index, node in enumerate(sections.listed["silences"], 1)]

    state_path = state if state is not None else _state(reader, root)
    http, http_access = parse_http(reader, root.items["http"]) if "http" in root.items \
        else (None, s.HttpAccess())
    if "shard" in root.items:
        written = _shard(reader, root.items["shard"])
        shard = shard or written
    if problems:
        raise ConfigError(scrub(problems, used))
    base = Path(main).parent
    return s.Config(
        path=Path(main), state=base / (state_path or DEFAULT_STATE) if state is None
        else Path(state), sources={n: v for n, v in sources.items() if v is not None},
        channels={n: v for n, v in channels.items() if v is not None}, rules=tuple(rules),
        silences=tuple(x for x in silences if x is not None), http=http, files=tuple(files),
        http_access=http_access, shard=shard)


def _misindented(reader: Reader, entries: dict[str, tuple[Loc, Node]]) -> set[str]:
    """Keys of a source written at the level of source names (``type:`` under ``sources:``
    instead of under ``fleet:``): one error that says to indent them, instead of one
    "must be a mapping" per line. Returns the names it reported."""
    keys = [name for name, (_, node) in entries.items()
            if name in SOURCE_KEYS and not isinstance(node, Mapping)]
    if not keys:
        return set()
    first = entries[keys[0]][0]
    before = [(loc, name) for name, (loc, node) in entries.items() if loc < first
              and isinstance(node, Scalar) and node.value is None]
    listed = ", ".join(f"'{key}'" for key in keys)
    verb, them = ("are", "them") if len(keys) > 1 else ("is", "it")
    if before:
        loc, owner = max(before)
        reader.error(loc, f"source '{owner}' is empty, and {listed} below it {verb} at the "
                          f"level of source names: indent {them} under '{owner}:'")
        return {owner, *keys}
    reader.error(first, f"{listed} {verb} at the level of source names, but "
                        f"{'are keys' if len(keys) > 1 else 'is a key'} of a source: indent "
                        f"{them} under the source's name")
    return set(keys)


def _state(reader: Reader, root: Mapping) -> str | None:
    if "state" not in root.items:
        return None
    return reader.string(root.items["state"], "state")


def _shard(reader: Reader, node: Node) -> s.Shard | None:
    """``shard: {index: I, of: N}``: this process owns the entities whose hash modulo N is I."""
    m = reader.mapping(node, "shard", ("index", "of"), required=("index", "of"))
    if m is None or "index" not in m.items or "of" not in m.items:
        return None
    of = reader.integer(m.items["of"], "shard: of", minimum=1)
    index = reader.integer(m.items["index"], "shard: index", minimum=0)
    if of is None or index is None:
        return None
    if index >= of:
        reader.error(m.items["index"].loc, f"shard: index must be below of ({of}): shards are "
                                           f"numbered 0 to {of - 1}, not {index}")
        return None
    return s.Shard(index, of)
