"""Gateway condition language: parse, evaluate in Python, and compile to guarded ASL JSONPath Choice rules."""

# Semantics (shared by evaluate() and the compiled Choice rules):
#
# * A comparison compares one field with one literal; the literal may be on
#   either side (`1000 < amount` is `amount > 1000`). Comparing two fields or
#   two literals is rejected with a ConditionError.
# * The literal picks the type: numbers use Numeric*, strings String*,
#   true/false BooleanEquals, null IsNull. There is no coercion: "5" is not 5,
#   and true is not 1 (booleans are never numbers).
# * A comparison against a field that is missing or holds another type is
#   false. `!=` is the negation of `==`, so `x != 1` is true when x is missing
#   or is a string; `not (x > 1)` is likewise true when x is missing.
# * `< <= > >=` need a number or string literal. Strings compare by code
#   point in Python and moto; AWS may order characters outside the Basic
#   Multilingual Plane differently (UTF-16), so avoid ordering on emoji.
# * A bare path `approved` means `approved == true`.
# * Paths are relative to the instance data; `items[0]` indexes arrays. An
#   index may only be followed by further indexes, never by `.field`, because
#   moto's interpreter (our runtime) resolves `$.x[0].y` to a one-element list
#   instead of the value, which would silently turn such comparisons false.

from __future__ import annotations

import json
import math
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, cast

__all__ = [
    "MAX_DEPTH",
    "MAX_LENGTH",
    "And",
    "Compare",
    "ConditionError",
    "Expr",
    "Not",
    "Or",
    "Path",
    "evaluate",
    "parse_condition",
    "referenced_paths",
    "to_choice_rule",
]

MAX_LENGTH = 1000
# Bounds parser recursion and the nesting of the generated Choice rule.
MAX_DEPTH = 32
# Integers beyond 2**53 are not exact as doubles, which is how JSON numbers are
# commonly compared; refusing them avoids silently inexact equality.
MAX_SAFE_INT = 2**53

_KEYWORDS = {"and", "or", "not", "true", "false", "null"}
_COMPARISON_OPS = ("==", "!=", "<", "<=", ">", ">=")
_ORDERING_OPS = ("<", "<=", ">", ">=")
# Rewriting `literal OP path` as `path FLIP[OP] literal`.
_FLIP = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


class ConditionError(ValueError):
    """A condition that cannot be parsed or compiled; position is a 0-based offset into the text."""

    def __init__(self, message: str, position: int | None = None, hint: str | None = None):
        self.message = message
        self.position = position
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        text = self.message
        if self.position is not None:
            text += f" at position {self.position}"
        if self.hint:
            text += f" (hint: {self.hint})"
        return text

    def as_dict(self) -> dict[str, Any]:
        return {"message": self.message, "position": self.position, "hint": self.hint}


# --------------------------------------------------------------------------- AST


@dataclass(frozen=True)
class Path:
    """A dotted path into the instance data; str segments are fields, int segments indexes."""

    segments: tuple[str | int, ...]

    def __post_init__(self) -> None:
        segs = self.segments
        if not segs or not isinstance(segs[0], str):
            raise ConditionError("a path must start with a field name")
        if segs[0] in _KEYWORDS:
            # str() of such a path would parse back as a keyword.
            raise ConditionError(f"'{segs[0]}' is a reserved word and cannot start a path", hint=_KEYWORD_HINT)
        seen_index = False
        for seg in segs:
            if isinstance(seg, bool) or not isinstance(seg, (str, int)):
                raise ConditionError(f"invalid path segment {seg!r}")
            if isinstance(seg, int):
                if seg < 0:
                    raise ConditionError(f"invalid array index {seg}")
                seen_index = True
            else:
                if not _IDENT_RE.fullmatch(seg):
                    raise ConditionError(f"invalid field name {seg!r}")
                if seen_index:
                    raise ConditionError(f"a field cannot follow an array index in {self}")

    def __str__(self) -> str:
        out = ""
        for seg in self.segments:
            out += f"[{seg}]" if isinstance(seg, int) else (f".{seg}" if out else seg)
        return out


def _literal_kind(value: Any) -> str:
    # bool is checked before int because bool is a subclass of int.
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    raise ConditionError(f"unsupported literal {value!r}")


@dataclass(frozen=True)
class Compare:
    """`path op value`, always with the path on the left."""

    path: Path
    op: str
    value: None | bool | int | float | str
    # Part of equality so that `x == 1` and `x == true` are different nodes
    # even though Python says 1 == True.
    kind: str = field(init=False, repr=False)

    def __post_init__(self) -> None:
        if self.op not in _COMPARISON_OPS:
            raise ConditionError(f"unknown comparison operator {self.op!r}")
        kind = _literal_kind(self.value)
        if kind == "number" and not _finite_and_safe(cast(float, self.value)):
            raise ConditionError(f"number {self.value!r} is out of range")
        if self.op in _ORDERING_OPS and kind not in ("number", "string"):
            raise ConditionError(f"'{self.op}' needs a number or string, not {_format_literal(self.value)}")
        object.__setattr__(self, "kind", kind)

    def __str__(self) -> str:
        return f"{self.path} {self.op} {_format_literal(self.value)}"


@dataclass(frozen=True)
class Not:
    operand: Expr

    def __str__(self) -> str:
        return f"not {_format_child(self.operand)}"


@dataclass(frozen=True)
class And:
    operands: tuple[Expr, ...]

    def __post_init__(self) -> None:
        if not self.operands:
            raise ConditionError("'and' needs at least one operand")

    def __str__(self) -> str:
        return " and ".join(_format_child(e) for e in self.operands)


@dataclass(frozen=True)
class Or:
    operands: tuple[Expr, ...]

    def __post_init__(self) -> None:
        if not self.operands:
            raise ConditionError("'or' needs at least one operand")

    def __str__(self) -> str:
        return " or ".join(_format_child(e) for e in self.operands)


Expr = Compare | Not | And | Or


def _format_child(expr: Expr) -> str:
    # Parenthesise every composite child so str() never depends on precedence.
    return f"({expr})" if isinstance(expr, (And, Or)) else str(expr)


def _format_literal(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        # JSON escapes are a subset of the escapes the tokenizer accepts, so
        # str(expr) always parses back to the same expression.
        return json.dumps(value, ensure_ascii=False)
    return repr(value)


def _finite_and_safe(value: float) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    return -MAX_SAFE_INT <= value <= MAX_SAFE_INT


# --------------------------------------------------------------------- tokenizer

_IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_INDEX_RE = re.compile(r"\[(\d+)\]")
_NUMBER_RE = re.compile(r"-?\d+(\.\d+)?([eE][+-]?\d+)?")
_SIMPLE_ESCAPES = {'"': '"', "'": "'", "\\": "\\", "/": "/", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t"}
_KEYWORD_HINT = "reserved words are and, or, not, true, false, null"


@dataclass(frozen=True)
class _Token:
    kind: str  # ( ) and or not op number string true false null path eof
    pos: int
    text: str
    value: Any = None


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch in " \t\r\n":
            i += 1
        elif ch in "()":
            tokens.append(_Token(ch, i, ch))
            i += 1
        elif text.startswith("&&", i):
            tokens.append(_Token("and", i, "&&"))
            i += 2
        elif text.startswith("||", i):
            tokens.append(_Token("or", i, "||"))
            i += 2
        elif ch in "&|":
            word = "and" if ch == "&" else "or"
            raise ConditionError(f"unexpected '{ch}'", i, f"use '{word}' or '{ch}{ch}'")
        elif text.startswith(("==", "!=", "<=", ">="), i):
            tokens.append(_Token("op", i, text[i : i + 2]))
            i += 2
        elif ch in "<>":
            tokens.append(_Token("op", i, ch))
            i += 1
        elif ch == "!":
            tokens.append(_Token("not", i, "!"))
            i += 1
        elif ch == "=":
            raise ConditionError("unexpected '='", i, "use '==' to compare")
        elif ch.isdigit() or (ch == "-" and i + 1 < n and text[i + 1].isdigit()):
            tok, i = _read_number(text, i)
            tokens.append(tok)
        elif ch == "-":
            raise ConditionError(
                "unexpected '-'", i, "negative numbers are written like -5; arithmetic is not supported"
            )
        elif ch in "'\"":
            tok, i = _read_string(text, i)
            tokens.append(tok)
        elif ch == "_" or ch.isascii() and ch.isalpha():
            tok, i = _read_word(text, i)
            tokens.append(tok)
        elif ch == "$":
            raise ConditionError(
                "unexpected '$'", i, "paths are relative to the instance data: write amount, not $.data.amount"
            )
        else:
            raise ConditionError(f"unexpected character {ch!r}", i)
    tokens.append(_Token("eof", n, ""))
    return tokens


def _read_number(text: str, start: int) -> tuple[_Token, int]:
    m = _NUMBER_RE.match(text, start)
    assert m is not None  # caller saw a digit
    end = m.end()
    # `1abc`, `1.`, `1.2.3` are typos, not a number followed by something.
    if end < len(text) and (text[end].isalnum() or text[end] in "._"):
        tail = re.match(r"[A-Za-z0-9_.]*", text[end:])
        bad = text[start : end + (tail.end() if tail else 0)]
        raise ConditionError(f"malformed number '{bad}'", start, "numbers look like 42, -7, 3.5 or 1e6")
    raw = m.group(0)
    value: int | float = float(raw) if (m.group(1) or m.group(2)) else int(raw)
    if not _finite_and_safe(value):
        raise ConditionError(
            f"number '{raw}' is out of range", start, f"integers must be within ±{MAX_SAFE_INT}; floats must be finite"
        )
    return _Token("number", start, raw, value), end


def _read_string(text: str, start: int) -> tuple[_Token, int]:
    quote = text[start]
    out: list[str] = []
    i = start + 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == quote:
            return _Token("string", start, text[start : i + 1], "".join(out)), i + 1
        if ch != "\\":
            out.append(ch)
            i += 1
            continue
        if i + 1 >= n:
            break
        esc = text[i + 1]
        if esc in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[esc])
            i += 2
        elif esc == "u":
            digits = text[i + 2 : i + 6]
            if not re.fullmatch(r"[0-9A-Fa-f]{4}", digits):
                raise ConditionError("expected 4 hex digits after '\\u'", i, "write e.g. \\u00e9")
            code = int(digits, 16)
            # Lone surrogates are not valid Unicode text and cannot be sent
            # to Step Functions; astral characters can be typed directly.
            if 0xD800 <= code <= 0xDFFF:
                raise ConditionError("surrogate code points are not allowed in '\\u' escapes", i)
            out.append(chr(code))
            i += 6
        else:
            raise ConditionError(
                f"unknown escape '\\{esc}'", i, "valid escapes are \\\\ \\' \\\" \\n \\t \\r \\b \\f \\/ \\uXXXX"
            )
    raise ConditionError("unterminated string", start, f"close it with {quote}")


def _read_word(text: str, start: int) -> tuple[_Token, int]:
    m = _IDENT_RE.match(text, start)
    assert m is not None
    first = m.group(0)
    i = m.end()
    segments: list[str | int] = [first]
    n = len(text)
    while i < n and text[i] in ".[":
        if text[i] == ".":
            if segments and isinstance(segments[-1], int):
                raise ConditionError(
                    "a field name cannot follow an array index",
                    i,
                    "array indexes may only end a path, e.g. items[0] or grid[1][2]",
                )
            m = _IDENT_RE.match(text, i + 1)
            if not m:
                raise ConditionError("expected a field name after '.'", i + 1)
            segments.append(m.group(0))
            i = m.end()
        else:
            m = _INDEX_RE.match(text, i)
            if not m:
                raise ConditionError("expected an array index like [0]", i, "indexes are non-negative integers")
            if len(m.group(1)) > 9:
                raise ConditionError("array index is too large", i + 1)
            segments.append(int(m.group(1)))
            i = m.end()
    if len(segments) == 1 and first in _KEYWORDS:
        value = {"true": True, "false": False, "null": None}.get(first)
        return _Token(first, start, first, value), i
    if first in _KEYWORDS:
        raise ConditionError(f"'{first}' is a reserved word and cannot start a path", start, _KEYWORD_HINT)
    return _Token("path", start, text[start:i], Path(tuple(segments))), i


# ------------------------------------------------------------------------ parser

_LITERAL_KINDS = ("number", "string", "true", "false", "null")


def _describe(tok: _Token) -> str:
    return "end of input" if tok.kind == "eof" else f"'{tok.text}'"


def _word_hint(tok: _Token) -> str | None:
    # `AND`, `True`, `NULL` are paths under case-sensitive keywords; say so.
    if tok.kind == "path" and tok.text.lower() in _KEYWORDS:
        return f"keywords are lowercase: write '{tok.text.lower()}'"
    return None


class _Parser:
    def __init__(self, text: str):
        self.tokens = _tokenize(text)
        self.i = 0
        self.depth = 0

    def peek(self) -> _Token:
        return self.tokens[self.i]

    def next(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def parse(self) -> Expr:
        if self.peek().kind == "eof":
            raise ConditionError("condition is empty", 0, "write e.g. amount > 1000")
        expr = self.parse_or(None)
        tok = self.peek()
        if tok.kind == ")":
            raise ConditionError("unexpected ')' with no matching '('", tok.pos)
        if tok.kind != "eof":
            self.fail_after_operand(tok)
        return expr

    def fail_after_operand(self, tok: _Token) -> None:
        prev = self.tokens[self.i - 1]
        raise ConditionError(
            f"expected 'and', 'or', ')' or end of condition after '{prev.text}', found {_describe(tok)}",
            tok.pos,
            _word_hint(tok),
        )

    def enter(self, tok: _Token) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ConditionError(
                f"condition is nested too deeply (more than {MAX_DEPTH} levels of parentheses or 'not')", tok.pos
            )

    def parse_or(self, after: _Token | None) -> Expr:
        operands = [self.parse_and(after)]
        while self.peek().kind == "or":
            op = self.next()
            operands.append(self.parse_and(op))
        return _flatten(Or, operands)

    def parse_and(self, after: _Token | None) -> Expr:
        operands = [self.parse_unary(after)]
        while self.peek().kind == "and":
            op = self.next()
            operands.append(self.parse_unary(op))
        return _flatten(And, operands)

    def parse_unary(self, after: _Token | None) -> Expr:
        tok = self.peek()
        if tok.kind == "not":
            self.next()
            self.enter(tok)
            operand = self.parse_unary(tok)
            self.depth -= 1
            return Not(operand)
        if tok.kind == "(":
            self.next()
            self.enter(tok)
            inner = self.parse_or(tok)
            close = self.peek()
            if close.kind != ")":
                if close.kind == "eof":
                    raise ConditionError(
                        f"expected ')' to close the '(' at position {tok.pos}, found end of input", close.pos
                    )
                self.fail_after_operand(close)
            self.next()
            self.depth -= 1
            return inner
        return self.parse_comparison(after)

    def parse_comparison(self, after: _Token | None) -> Expr:
        left = self.peek()
        if left.kind != "path" and left.kind not in _LITERAL_KINDS:
            where = f" after '{after.text}'" if after is not None else ""
            hint = None
            if left.kind == "op":
                hint = "a comparison needs a field name or value on each side, e.g. amount > 5"
            elif left.kind == ")":
                hint = "parentheses must contain a condition"
            raise ConditionError(f"expected a condition{where}, found {_describe(left)}", left.pos, hint)
        self.next()
        op = self.peek()
        if op.kind != "op":
            if left.kind == "path":
                # A bare path is a truthiness test.
                return Compare(left.value, "==", True)
            raise ConditionError(
                f"a literal ({left.text}) on its own is not a condition",
                left.pos,
                "compare a field with it, e.g. amount > 5",
            )
        self.next()
        right = self.peek()
        if right.kind != "path" and right.kind not in _LITERAL_KINDS:
            raise ConditionError(
                f"expected a value after '{op.text}', found {_describe(right)}", right.pos, _word_hint(right)
            )
        self.next()
        if self.peek().kind == "op":
            chained = self.next()
            third = self.peek().text if self.peek().kind != "eof" else "..."
            raise ConditionError(
                f"comparisons cannot be chained ('{chained.text}' after '{right.text}')",
                chained.pos,
                f"write {left.text} {op.text} {right.text} and {right.text} {chained.text} {third}",
            )
        if left.kind == "path" and right.kind == "path":
            raise ConditionError(
                f"comparing two fields ('{left.text}' and '{right.text}') is not supported",
                right.pos,
                _word_hint(right) or "compare each field with a literal value, e.g. a > 10 and b > 10",
            )
        if left.kind != "path" and right.kind != "path":
            raise ConditionError(
                f"comparing two literal values ({left.text} {op.text} {right.text}) is not supported",
                left.pos,
                "one side of a comparison must be a field name",
            )
        if left.kind == "path":
            path, op_text, lit = left.value, op.text, right
        else:
            path, op_text, lit = right.value, _FLIP[op.text], left
        if op_text in _ORDERING_OPS and lit.kind not in ("number", "string"):
            raise ConditionError(
                f"'{op.text}' needs a number or string, not {lit.text}",
                lit.pos,
                "use == or != to compare with true, false or null",
            )
        return Compare(path, op_text, lit.value)


def _flatten(cls: type[And | Or], operands: list[Expr] | tuple[Expr, ...]) -> Expr:
    # `a and (b and c)` is `a and b and c`; a single operand needs no wrapper.
    flat: list[Expr] = []
    for e in operands:
        if isinstance(e, cls):
            inner = _flatten(cls, e.operands)
            flat.extend(inner.operands if isinstance(inner, cls) else (inner,))
        else:
            flat.append(e)
    return flat[0] if len(flat) == 1 else cls(tuple(flat))


def parse_condition(text: str) -> Expr:
    """Parse a gateway condition; raises ConditionError with a position and hint."""
    if not isinstance(text, str):
        raise ConditionError(f"condition must be a string, not {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ConditionError(
            f"condition is too long ({len(text)} characters, at most {MAX_LENGTH})",
            MAX_LENGTH,
            "move complex logic into a task and branch on its result",
        )
    return _Parser(text).parse()


# -------------------------------------------------------------------- evaluation

_MISSING = object()


def _is_number(value: Any) -> bool:
    # ASL IsNumeric is false for booleans, though Python's bool is an int.
    # Decimal counts because DynamoDB hands numbers back as Decimal and they
    # serialise to JSON numbers before reaching Step Functions.
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def _lookup(data: Any, path: Path) -> Any:
    cur = data
    for seg in path.segments:
        if isinstance(seg, int):
            if not isinstance(cur, (list, tuple)) or seg >= len(cur):
                return _MISSING
        elif not isinstance(cur, Mapping) or seg not in cur:
            return _MISSING
        cur = cur[seg]
    return cur


_ORDER_FUNCS: dict[str, Callable[[Any, Any], bool]] = {
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def _equals(value: Any, expr: Compare) -> bool:
    if value is _MISSING:
        return False
    if expr.kind == "null":
        return value is None
    if expr.kind == "boolean":
        return isinstance(value, bool) and value is expr.value
    if expr.kind == "number":
        return _is_number(value) and value == expr.value
    return isinstance(value, str) and value == expr.value


def _compare(value: Any, expr: Compare) -> bool:
    if expr.op == "==":
        return _equals(value, expr)
    if expr.op == "!=":
        return not _equals(value, expr)
    if value is _MISSING:
        return False
    if expr.kind == "number":
        return _is_number(value) and _ORDER_FUNCS[expr.op](value, expr.value)
    return isinstance(value, str) and _ORDER_FUNCS[expr.op](value, expr.value)


def evaluate(expr: Expr, data: Mapping[str, Any]) -> bool:
    """Evaluate with exactly the semantics of the compiled Choice rule."""
    if isinstance(expr, Compare):
        return _compare(_lookup(data, expr.path), expr)
    if isinstance(expr, Not):
        return not evaluate(expr.operand, data)
    if isinstance(expr, And):
        return all(evaluate(e, data) for e in expr.operands)
    if isinstance(expr, Or):
        return any(evaluate(e, data) for e in expr.operands)
    raise TypeError(f"not a condition expression: {expr!r}")


def referenced_paths(expr: Expr) -> list[str]:
    """Dotted paths the condition reads, sorted and unique."""
    found: set[str] = set()
    stack: list[Expr] = [expr]
    while stack:
        e = stack.pop()
        if isinstance(e, Compare):
            found.add(str(e.path))
        elif isinstance(e, Not):
            stack.append(e.operand)
        elif isinstance(e, (And, Or)):
            stack.extend(e.operands)
        else:
            raise TypeError(f"not a condition expression: {e!r}")
    return sorted(found)


# ------------------------------------------------------------------ ASL compiler

_DATA_PATH_RE = re.compile(r"\$(\.[A-Za-z_][A-Za-z0-9_]*|\[\d+\])*")
_TYPE_TEST = {"number": "IsNumeric", "string": "IsString", "boolean": "IsBoolean"}
_ASL_OPS = {
    ("number", "=="): "NumericEquals",
    ("number", "<"): "NumericLessThan",
    ("number", "<="): "NumericLessThanEquals",
    ("number", ">"): "NumericGreaterThan",
    ("number", ">="): "NumericGreaterThanEquals",
    ("string", "=="): "StringEquals",
    ("string", "<"): "StringLessThan",
    ("string", "<="): "StringLessThanEquals",
    ("string", ">"): "StringGreaterThan",
    ("string", ">="): "StringGreaterThanEquals",
    ("boolean", "=="): "BooleanEquals",
}


def _compile_compare(expr: Compare, data_path: str) -> dict[str, Any]:
    if expr.op == "!=":
        return {"Not": _compile_compare(Compare(expr.path, "==", expr.value), data_path)}
    var = f"{data_path}.{expr.path}"
    # Step Functions fails the execution when a comparison meets a missing
    # or differently-typed value; And short-circuits, so these guards turn
    # that into "false" — the semantics evaluate() implements.
    rules: list[dict[str, Any]] = [{"Variable": var, "IsPresent": True}]
    if expr.kind == "null":
        rules.append({"Variable": var, "IsNull": True})
    else:
        rules.append({"Variable": var, _TYPE_TEST[expr.kind]: True})
        rules.append({"Variable": var, _ASL_OPS[(expr.kind, expr.op)]: expr.value})
    return {"And": rules}


def _compile(expr: Expr, data_path: str) -> dict[str, Any]:
    if isinstance(expr, Compare):
        return _compile_compare(expr, data_path)
    if isinstance(expr, Not):
        inner = _compile(expr.operand, data_path)
        # Not(Not(r)) is r for two-valued Choice rules.
        if set(inner) == {"Not"}:
            return cast(dict[str, Any], inner["Not"])
        return {"Not": inner}
    if isinstance(expr, (And, Or)):
        flat = _flatten(type(expr), expr.operands)
        if not isinstance(flat, (And, Or)):
            return _compile(flat, data_path)
        return {type(expr).__name__: [_compile(e, data_path) for e in flat.operands]}
    raise TypeError(f"not a condition expression: {expr!r}")


def to_choice_rule(expr: Expr, data_path: str = "$.data") -> dict[str, Any]:
    """Compile to an ASL JSONPath Choice rule (without "Next"); a fresh dict every call."""
    if not isinstance(data_path, str) or not _DATA_PATH_RE.fullmatch(data_path):
        raise ValueError(f"data_path must be a simple JSONPath like '$.data', got {data_path!r}")
    return _compile(expr, data_path)
