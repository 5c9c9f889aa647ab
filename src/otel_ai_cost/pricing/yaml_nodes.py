"""Typed reads from a composed YAML node tree, with errors that name the file, the line and the key.

We never let PyYAML construct Python values: numbers would become floats. Instead we walk the node tree
(`yaml.compose`), read each scalar's source text and parse it ourselves (`Decimal`, `date`, ...), so every
value keeps its exact decimal digits and every error can point at its line.

Numbers are plain decimal notation (no `.inf`, `.nan`, `0x10`), bounded by each caller's maximum
(`otel_ai_cost.decimal_text`); whole numbers are ASCII digits only, at most `MAX_WHOLE_NUMBER` unless told.
Underscores group digits only where YAML itself reads a number (a plain `1_000` is the YAML integer 1000); in a
quoted string (`"1_000"`) they are an error, as everywhere else an amount is read.
A parser can report every problem of a file in one run: it reads each entry inside `recording()`, which keeps
the entry's error and goes on, and calls `raise_problems()` at the end.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import NoReturn

import yaml

from otel_ai_cost.decimal_text import DecimalTextError, parse_decimal
from otel_ai_cost.when import parse_when

_NULL_TAG = "tag:yaml.org,2002:null"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_NUMBER_TAGS = ("tag:yaml.org,2002:int", "tag:yaml.org,2002:float")  # YAML 1.1 numbers may group digits: 1_000
DEFAULT_MAXIMUM = Decimal(1_000_000_000)  # of a number whose reader states no tighter bound
MAX_WHOLE_NUMBER = 1_000_000_000
MAX_PROBLEMS_SHOWN = 100  # of one file; the rest are counted
_WHOLE = re.compile(r"\+?[0-9]+")


class PriceFileError(ValueError):
    """A price file that cannot be used; the message reads `file:line: key.path: problem`, one line per problem
    (`problems`), then `file: N problems` when there is more than one."""

    def __init__(self, message: str, problems: Sequence[str] | None = None) -> None:
        super().__init__(message)
        self.problems = list(problems) if problems is not None else [message]


class NodeReader:
    """Reads one file's nodes; every failure raises `error` (a `PriceFileError`, or a subclass a file kind names
    in its own reader: `error = TokensFileError`) naming `filename`."""

    error: type[PriceFileError] = PriceFileError

    def __init__(self, filename: str) -> None:
        self.filename = filename
        self.problems: list[str] = []

    @contextmanager
    def recording(self) -> Iterator[None]:
        """Runs the block; a `PriceFileError` inside is kept in `problems` (the block's result is then missing)."""
        try:
            yield
        except PriceFileError as exc:
            self.problems += exc.problems

    def raise_problems(self) -> None:
        """Raises one `PriceFileError` listing every problem recorded, if any."""
        if not self.problems:
            return
        shown = self.problems[:MAX_PROBLEMS_SHOWN]
        if len(self.problems) > MAX_PROBLEMS_SHOWN:
            shown.append(f"{self.filename}: ... and {len(self.problems) - MAX_PROBLEMS_SHOWN} more")
        if len(self.problems) > 1:
            shown.append(f"{self.filename}: {len(self.problems)} problems")
        raise self.error("\n".join(shown), self.problems)

    def compose(self, text: str) -> yaml.Node | None:
        try:
            return yaml.compose(text, Loader=yaml.SafeLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark is not None else 1
            problem = exc.problem or exc.context or "invalid YAML"
            raise self.error(f"{self.filename}:{line}: (yaml): {problem}") from None
        except yaml.YAMLError as exc:
            raise self.error(f"{self.filename}:1: (yaml): {exc}") from None

    def fail(self, node: yaml.Node, path: str, message: str) -> NoReturn:
        raise self.error(f"{self.filename}:{node.start_mark.line + 1}: {path or '(root)'}: {message}")

    @staticmethod
    def is_null(node: yaml.Node | None) -> bool:
        return node is None or (isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG)

    def mapping(
        self,
        node: yaml.Node,
        path: str,
        *,
        allowed: Collection[str],
        required: Collection[str] = (),
    ) -> dict[str, yaml.Node]:
        """The mapping's values by key; unknown, duplicate and missing keys are errors."""
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, path, f"expected a mapping, got {_describe(node)}")
        values: dict[str, yaml.Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag == _NULL_TAG:
                self.fail(key_node, path, f"expected a key name, got {_describe(key_node)}")
            key = key_node.value
            key_path = f"{path}.{key}" if path else key
            if key not in allowed:
                close = difflib.get_close_matches(key, list(allowed), n=1)
                hint = f"did you mean {close[0]!r}?" if close else f"expected one of: {', '.join(sorted(allowed))}"
                self.fail(key_node, key_path, f"unknown key ({hint})")
            if key in values:
                self.fail(key_node, key_path, "duplicate key")
            values[key] = value_node
        for key in required:
            if key not in values or self.is_null(values[key]):
                self.fail(node, path, f"missing required key {key!r}")
        return values

    def sequence(self, node: yaml.Node, path: str) -> list[yaml.Node]:
        if self.is_null(node):
            return []
        if not isinstance(node, yaml.SequenceNode):
            self.fail(node, path, f"expected a list, got {_describe(node)}")
        return list(node.value)

    def scalar_text(self, node: yaml.Node, path: str, expected: str) -> str:
        if not isinstance(node, yaml.ScalarNode) or node.tag == _NULL_TAG:
            self.fail(node, path, f"expected {expected}, got {_describe(node)}")
        return node.value

    def string(self, node: yaml.Node, path: str) -> str:
        text = self.scalar_text(node, path, "a non-empty string").strip()
        if not text:
            self.fail(node, path, "expected a non-empty string, got ''")
        return text

    def choice(self, node: yaml.Node, path: str, choices: Collection[str]) -> str:
        text = self.scalar_text(node, path, f"one of {', '.join(choices)}").strip()
        if text not in choices:
            self.fail(node, path, f"expected one of {', '.join(choices)}, got {text!r}")
        return text

    def number(self, node: yaml.Node, path: str, *, maximum: Decimal = DEFAULT_MAXIMUM) -> Decimal:
        """A non-negative decimal of at most `maximum`, parsed from the scalar's own text (never through float)."""
        expected = "a non-negative number"
        text = self.scalar_text(node, path, expected)
        if node.tag == _BOOL_TAG:
            self.fail(node, path, f"expected {expected}, got {text!r}")
        try:
            return parse_decimal(_ungrouped(node, text), maximum=maximum, what=path, normalize=False)
        except DecimalTextError as exc:
            if exc.out_of_range or "_" in text:  # a number, but beyond a bound or spelt with underscores: say so
                self.fail(node, path, f"{exc.problem}, got {text!r}")
            self.fail(node, path, f"expected {expected}, got {text!r}")

    def percent(self, node: yaml.Node, path: str) -> Decimal:
        value = self.number(node, path)
        if value > 100:
            self.fail(node, path, f"expected a percentage between 0 and 100, got {node.value!r}")
        return value

    def positive_int(self, node: yaml.Node, path: str, *, maximum: int = MAX_WHOLE_NUMBER) -> int:
        text = self.scalar_text(node, path, "a positive whole number of tokens")
        plain = _ungrouped(node, text).strip()
        digits = plain.lstrip("+").lstrip("0")
        if not _WHOLE.fullmatch(plain) or not digits:  # ASCII digits only: no 1_000, no 1e3, not 0
            self.fail(node, path, f"expected a positive whole number of tokens, got {text!r}")
        if len(digits) > len(str(maximum)) or int(digits) > maximum:  # int() of 5,000 digits would raise
            self.fail(node, path, f"expected a positive whole number of at most {maximum:,}, got {text!r}")
        return int(digits)

    def boolean(self, node: yaml.Node, path: str) -> bool:
        text = self.scalar_text(node, path, "true or false")
        if node.tag != _BOOL_TAG:
            self.fail(node, path, f"expected true or false, got {text!r}")
        return text.strip().lower() in ("true", "yes", "on", "y")

    def timestamp(self, node: yaml.Node, path: str) -> datetime:
        """A date (UTC midnight) or an ISO 8601 datetime (naive means UTC), as an aware datetime."""
        expected = "a date (YYYY-MM-DD) or an ISO 8601 datetime"
        text = self.scalar_text(node, path, expected).strip()
        try:
            return parse_when(text)
        except ValueError:
            self.fail(node, path, f"expected {expected}, got {text!r}")


def _ungrouped(node: yaml.Node, text: str) -> str:
    """The scalar's text without the digit-grouping underscores of a YAML number (`1_000`); a quoted string keeps
    them (and is then refused)."""
    return text.replace("_", "") if node.tag in _NUMBER_TAGS else text


def _describe(node: yaml.Node) -> str:
    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    if isinstance(node, yaml.ScalarNode) and node.tag == _NULL_TAG:
        return "nothing"
    return repr(node.value)
