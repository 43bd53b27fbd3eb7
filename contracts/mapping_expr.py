"""JMESPath expressions of a provider mapping file: checked once when the file is loaded,
then searched per delivery.

``jmespath.compile`` only parses; a misspelt function or a wrong number of arguments would
otherwise fail on every message at run time. ``compile_expression`` walks the parsed tree
and refuses both at load time. Error texts name the problem and its column, never the
searched data: an expression comes from the operator's file, the data from a customer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import jmespath
from jmespath import functions as _functions
from jmespath.exceptions import JMESPathError, ParseError

from contracts.errors import SafeError

_FUNCTIONS: dict[str, dict[str, Any]] = _functions.Functions().FUNCTION_TABLE  # type: ignore[attr-defined]
_OPTIONS = jmespath.Options(dict_cls=dict)


class ExpressionError(SafeError):
    """An expression that cannot be used: unparseable, an unknown function, a wrong arity."""


class SearchError(SafeError):
    """An expression failed on the data it searched (a function given a value of the wrong
    type). Names the JMESPath error type only; the data stays out of the text."""


@dataclass(frozen=True)
class Expression:
    """A parsed, checked JMESPath expression; ``text`` is as written in the mapping file."""

    text: str
    parsed: Any = field(repr=False, compare=False)

    def search(self, data: Any) -> Any:
        try:
            return self.parsed.search(data, options=_OPTIONS)
        except JMESPathError as exc:
            raise SearchError(type(exc).__name__) from None


def compile_expression(text: object) -> Expression:
    """``text`` as an ``Expression``; raises ``ExpressionError`` saying why it cannot be one."""
    if isinstance(text, Expression):
        return text
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError(f"a JMESPath expression must be a non-empty string, not {type(text).__name__}")
    try:
        parsed = jmespath.compile(text)
    except ParseError as exc:
        raise ExpressionError(f"not a JMESPath expression: {type(exc).__name__} at column {exc.lex_position}") from None
    except JMESPathError as exc:
        raise ExpressionError(f"not a JMESPath expression: {type(exc).__name__}") from None
    _check_functions(parsed.parsed)
    return Expression(text, parsed)


def _check_functions(node: Any) -> None:
    """Every function the tree calls exists and is given a number of arguments it takes."""
    if not isinstance(node, dict):
        return
    if node.get("type") == "function_expression":
        name, given = node.get("value"), len(node.get("children") or ())
        spec = _FUNCTIONS.get(name)
        if spec is None:
            raise ExpressionError(f"unknown JMESPath function {name}()")
        signature = spec["signature"]
        variadic = bool(signature) and signature[-1].get("variadic", False)
        if given < len(signature) or (given > len(signature) and not variadic):
            takes = f"at least {len(signature)}" if variadic else str(len(signature))
            raise ExpressionError(f"{name}() takes {takes} argument(s), given {given}")
    for child in node.get("children") or ():
        _check_functions(child)
