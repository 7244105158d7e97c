"""Safe YAML reading that remembers where every value came from.

The file is composed into nodes by PyYAML's ``SafeLoader`` and turned into plain
Python values here, so each key path (``model.layers[1].units``) keeps the line
and column it was written at. Aliases are followed, but the number of values
built is capped, so an alias bomb is refused instead of expanded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

from ..errors import ScenarioError
from ..safetext import quote, visible

MAX_BYTES = 16 * 1024 * 1024
MAX_VALUES = 2_000_000
MAX_DEPTH = 64
# What YAML forbids in a file's text (it allows tab, line feed, carriage return and NEL).
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]")


@dataclass
class Located:
    """Values read from one YAML file, with the position of every key path."""

    value: Any
    file: str
    marks: dict[str, tuple[int, int]] = field(default_factory=dict)

    def where(self, path: str) -> tuple[int | None, int | None]:
        """1-based (line, column) of ``path``, or of its nearest written parent."""
        probe = path
        while True:
            if probe in self.marks:
                return self.marks[probe]
            if not probe:
                return (None, None)
            cut = max(probe.rfind("."), probe.rfind("["))
            probe = probe[:cut] if cut > 0 else ""

    def error(self, path: str, message: str) -> ScenarioError:
        """A placed error; text from the file in it is shown with its controls made visible."""
        line, column = self.where(path)
        return ScenarioError(
            visible(message),
            file=self.file,
            line=line,
            column=column,
            path=visible(path) or None,
        )


def _child(path: str, key: object) -> str:
    if isinstance(key, int):
        return f"{path}[{key}]"
    return f"{path}.{key}" if path else str(key)


# What the safe loader builds: plain scalars, lists and mappings (and !!binary, !!timestamp).
class _Loader(yaml.SafeLoader):
    """The safe loader, reading ``1e-3`` as a number as YAML 1.2 does.

    YAML 1.1 (PyYAML) wants a dot in a float, so ``learning_rate: 1e-3`` would be
    the text "1e-3"; every scenario writer means the number.
    """


_Loader.yaml_implicit_resolvers = {
    key: list(value) for key, value in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)

_PLAIN_TAGS = {tag for tag in yaml.SafeLoader.yaml_constructors if tag is not None}


class _Builder:
    def __init__(self, loader: yaml.SafeLoader, file: str) -> None:
        self.loader = loader
        self.file = file
        self.count = 0
        self.marks: dict[str, tuple[int, int]] = {}

    def build(self, node: yaml.Node, path: str) -> Any:
        if node.tag not in _PLAIN_TAGS:
            raise ScenarioError(
                f"the tag {quote(node.tag.replace('tag:yaml.org,2002:', '!!'))} is not allowed; "
                "scenario files hold plain values",
                file=self.file,
                line=node.start_mark.line + 1,
                column=node.start_mark.column + 1,
                path=visible(path) or None,
            )
        self.count += 1
        if self.count > MAX_VALUES:
            raise ScenarioError(
                f"the document expands to more than {MAX_VALUES:,} values "
                "(an alias bomb?); write the data out or move it to a .npz file",
                file=self.file,
            )
        self.marks.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
        if isinstance(node, yaml.MappingNode):
            out: dict[Any, Any] = {}
            for key_node, value_node in node.value:
                key = self.loader.construct_object(key_node, deep=True)
                if not isinstance(key, (str, int, float, bool)) or key is None:
                    raise ScenarioError(
                        "mapping keys must be plain names",
                        file=self.file,
                        line=key_node.start_mark.line + 1,
                        column=key_node.start_mark.column + 1,
                        path=visible(path) or None,
                    )
                key = str(key)
                if key in out:
                    raise ScenarioError(
                        f"the key {quote(key)} is written twice; keep one",
                        file=self.file,
                        line=key_node.start_mark.line + 1,
                        column=key_node.start_mark.column + 1,
                        path=visible(_child(path, key)),
                    )
                child = _child(path, key)
                self.marks[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
                out[key] = self.build(value_node, child)
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.build(item, _child(path, i)) for i, item in enumerate(node.value)]
        return self.loader.construct_object(node, deep=True)


def _refuse_expansion(root: yaml.Node, file: str) -> None:
    """Refuse alias bombs, aliases inside their own anchor and deep nesting, before building.

    An alias is the very node its anchor names, so counting each node once takes
    time in proportion to the file, not to what the aliases would expand to.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def fail(node: yaml.Node, message: str) -> ScenarioError:
        mark = node.start_mark
        return ScenarioError(message, file=file, line=mark.line + 1, column=mark.column + 1)

    def size(node: yaml.Node, depth: int) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise fail(node, "an alias here refers to a value that contains it; remove the loop")
        if depth > MAX_DEPTH:
            raise fail(
                node, f"the values are nested more than {MAX_DEPTH} levels deep; flatten them"
            )
        children: list[yaml.Node] = []
        if isinstance(node, yaml.MappingNode):
            children = [part for pair in node.value for part in pair]
        elif isinstance(node, yaml.SequenceNode):
            children = list(node.value)
        open_nodes.add(key)
        total = 1
        for child in children:
            total += size(child, depth + 1)
            if total > MAX_VALUES:
                raise fail(
                    node,
                    f"this value expands to more than {MAX_VALUES:,} values (an alias bomb?); "
                    "write the data out or move it to a .npz file",
                )
        open_nodes.discard(key)
        sizes[key] = total
        return total

    size(root, 0)


def load_yaml(text: str, file: str) -> Located:
    """Parse ``text`` (the contents of ``file``) safely into plain values with positions."""
    if len(text) > MAX_BYTES:
        raise ScenarioError(
            f"the file is larger than {MAX_BYTES // (1024 * 1024)} MiB; "
            "put large data in a .npz or .csv file and name it under data.file",
            file=file,
        )
    bad = _CONTROL.search(text)
    if bad is not None:
        # PyYAML refuses these too, but with a traceback-shaped message and no line.
        at = bad.start()
        raise ScenarioError(
            f"the control character {quote(bad.group())} (code {ord(bad.group())}) is not "
            "allowed in a YAML file; remove it, or write it as an escape in double quotes",
            file=file,
            line=text.count("\n", 0, at) + 1,
            column=at - (text.rfind("\n", 0, at) + 1) + 1,
        )
    try:
        loader = _Loader(text)
    except yaml.YAMLError as err:  # the reader's own checks, should the regex above miss one
        raise ScenarioError(f"this is not valid YAML: {quote(str(err), 120)}", file=file) from None
    try:
        node = loader.get_single_node()
        if node is None:
            raise ScenarioError("the file is empty; a scenario needs at least model:", file=file)
        _refuse_expansion(node, file)
        builder = _Builder(loader, file)
        value = builder.build(node, "")
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        problem = (err.problem or err.context or "cannot be parsed").rstrip(".")
        if err.context and err.context_mark and "end of stream" in problem:
            # an unclosed quote or bracket: where it opened helps more than the end of the file
            mark = err.context_mark
            problem = f"{err.context}, {problem}"
        line = mark.line + 1 if mark else None
        column = mark.column + 1 if mark else None
        raise ScenarioError(
            f"this is not valid YAML: {visible(problem)}; check the indentation and quoting there",
            file=file,
            line=line,
            column=column,
        ) from None
    except yaml.YAMLError as err:
        raise ScenarioError(f"this is not valid YAML: {quote(str(err), 120)}", file=file) from None
    except (ValueError, OverflowError) as err:  # a date such as 2024-13-45, say
        raise ScenarioError(
            f"a value cannot be read ({quote(str(err), 80)}); quote it to keep it as text",
            file=file,
        ) from None
    except RecursionError:  # PyYAML composes nested values recursively
        mark = loader.get_mark()
        raise ScenarioError(
            f"the values are nested more than {MAX_DEPTH} levels deep; flatten them",
            file=file,
            line=mark.line + 1,
            column=mark.column + 1,
        ) from None
    finally:
        loader.dispose()
    return Located(value=value, file=file, marks=builder.marks)
