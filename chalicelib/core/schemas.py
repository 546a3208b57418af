"""JSON Schemas that users write (input_schema, form_schema): checked at registration, and run against client
data with bounded work: RE2 patterns, references inside the schema only, and an operation budget."""

from __future__ import annotations

import contextvars
import functools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import re2
from jsonschema import Draft202012Validator, FormatChecker, validators
from jsonschema.exceptions import SchemaError, ValidationError
from referencing import Registry, Resource
from referencing.exceptions import NoSuchResource, Unresolvable

# Keyword checks and pattern searches for one value: about 0.1 s of CPU. A form or an input of sane size
# needs a few hundred; an array of 5,000 small objects checked item by item about 30,000.
MAX_OPERATIONS = 50_000
MAX_ERRORS = 50  # reported per check: enough to fix a submission, small enough to send back
MAX_PATTERN_CHARS = 1_000
_RE2_MEMORY = 1 << 20  # bytes for one compiled pattern: refuses repetition blow-ups like (a{999}){999}
_SHOWN = 60  # characters of a value quoted in a message

_OPTIONS = re2.Options()
_OPTIONS.log_errors = False
_OPTIONS.max_mem = _RE2_MEMORY


class UnsupportedPattern(ValueError):
    """A pattern RE2 cannot run (backreferences, lookaround) or that is too large."""


@functools.lru_cache(maxsize=512)
def compile_pattern(pattern: str) -> Any:
    """The pattern compiled by RE2, which matches in time linear in the text (no backtracking)."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise UnsupportedPattern(f"the pattern is longer than {MAX_PATTERN_CHARS} characters")
    try:
        return re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise UnsupportedPattern(reason) from None


# -- the operation budget ------------------------------------------------------------------------
class _OverBudget(Exception):
    pass


@dataclass
class _Budget:
    left: int


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("schema_budget", default=None)


def _spend(operations: int = 1) -> None:
    budget = _BUDGET.get()
    if budget is not None:
        budget.left -= operations
        if budget.left < 0:
            raise _OverBudget


def _search(pattern: str, text: str) -> bool:
    _spend()
    try:
        return compile_pattern(pattern).search(text) is not None
    except UnsupportedPattern:
        # Registered before patterns were checked: never fall back to a backtracking engine.
        raise _OverBudget from None


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 3] + "..."


# -- keywords that run regular expressions, re-implemented on RE2 ----------------------------------
def _pattern(validator: Any, pattern: str, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if validator.is_type(instance, "string") and not _search(pattern, instance):
        yield ValidationError(f"{_shown(instance)} does not match {pattern!r}")


def _pattern_properties(validator: Any, patterns: dict[str, Any], instance: Any,
                        schema: Any) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    for pattern, subschema in patterns.items():
        for key, value in instance.items():
            if _search(pattern, key):
                yield from validator.descend(value, subschema, path=key, schema_path=pattern)


def _additional(instance: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    properties = schema.get("properties", {})
    patterns = list(schema.get("patternProperties", {}))
    return [key for key in instance
            if key not in properties and not any(_search(p, key) for p in patterns)]


def _additional_properties(validator: Any, additional: Any, instance: Any,
                           schema: Any) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    extras = _additional(instance, schema)
    if validator.is_type(additional, "object"):
        for extra in extras:
            yield from validator.descend(instance[extra], additional, path=extra)
    elif not additional and extras:
        names = ", ".join(_shown(e) for e in sorted(extras)[:10])
        if "patternProperties" in schema:
            patterns = ", ".join(repr(p) for p in sorted(schema["patternProperties"]))
            yield ValidationError(f"{names} {'does' if len(extras) == 1 else 'do'} not match any of the "
                                  f"regexes: {patterns}")
        else:
            yield ValidationError(f"Additional properties are not allowed ({names} "
                                  f"{'was' if len(extras) == 1 else 'were'} unexpected)")


def _valid(errors: Iterator[ValidationError]) -> bool:
    return next(errors, None) is None


def _evaluated_keys(validator: Any, instance: dict[str, Any], schema: Any) -> set[str]:
    """The keys some keyword of ``schema`` evaluates (jsonschema's own walk, with RE2 for patterns)."""
    if validator.is_type(schema, "boolean"):
        return set()
    keys: set[str] = set()
    for ref_keyword in ("$ref", "$dynamicRef"):
        ref = schema.get(ref_keyword)
        if ref is not None:
            resolved = validator._resolver.lookup(ref)
            keys |= _evaluated_keys(validator.evolve(schema=resolved.contents, _resolver=resolved.resolver),
                                    instance, resolved.contents)
    properties = schema.get("properties")
    if validator.is_type(properties, "object"):
        keys |= properties.keys() & instance.keys()
    for keyword in ("additionalProperties", "unevaluatedProperties"):
        if (subschema := schema.get(keyword)) is not None:
            keys |= {k for k, v in instance.items() if _valid(validator.descend(v, subschema))}
    for pattern in schema.get("patternProperties", {}):
        keys |= {k for k in instance if _search(pattern, k)}
    for name, subschema in schema.get("dependentSchemas", {}).items():
        if name in instance:
            keys |= _evaluated_keys(validator, instance, subschema)
    for keyword in ("allOf", "oneOf", "anyOf"):
        for subschema in schema.get(keyword, []):
            if _valid(validator.descend(instance, subschema)):
                keys |= _evaluated_keys(validator, instance, subschema)
    if "if" in schema:
        if validator.evolve(schema=schema["if"]).is_valid(instance):
            keys |= _evaluated_keys(validator, instance, schema["if"])
            if "then" in schema:
                keys |= _evaluated_keys(validator, instance, schema["then"])
        elif "else" in schema:
            keys |= _evaluated_keys(validator, instance, schema["else"])
    return keys


def _unevaluated_properties(validator: Any, unevaluated: Any, instance: Any,
                            schema: Any) -> Iterator[ValidationError]:
    if not validator.is_type(instance, "object"):
        return
    evaluated = _evaluated_keys(validator, instance, schema)
    failing = [key for key in instance if key not in evaluated
               and not _valid(validator.descend(instance[key], unevaluated, path=key, schema_path=key))]
    if failing:
        names = ", ".join(_shown(k) for k in sorted(failing)[:10])
        if unevaluated is False:
            yield ValidationError(f"Unevaluated properties are not allowed ({names} unexpected)")
        else:
            yield ValidationError(f"Unevaluated properties are not valid under the given schema ({names})")


def _canonical(value: Any) -> str:
    # JSON Schema equality: 1 == 1.0, true != 1, key order ignored. Linear, unlike jsonschema's pairwise
    # fallback for unsortable items (objects), which is quadratic in the array's length.
    def tag(v: Any) -> Any:
        if isinstance(v, bool) or v is None:
            return ["b", v]
        if isinstance(v, (int, float)):
            return ["n", int(v) if isinstance(v, float) and v.is_integer() else v]
        if isinstance(v, str):
            return ["s", v]
        if isinstance(v, list):
            return ["a", [tag(i) for i in v]]
        return ["o", {k: tag(i) for k, i in v.items()}]

    return json.dumps(tag(value), sort_keys=True)


def _unique_items(validator: Any, unique: Any, instance: Any, schema: Any) -> Iterator[ValidationError]:
    if not unique or not validator.is_type(instance, "array"):
        return
    _spend(len(instance) // 10)
    seen: set[str] = set()
    for item in instance:
        key = _canonical(item)
        if key in seen:
            yield ValidationError(f"{_shown(instance)} has non-unique elements")
            return
        seen.add(key)


def _metered(keyword: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(keyword)
    def run(validator: Any, value: Any, instance: Any, schema: Any) -> Any:
        _spend()
        return keyword(validator, value, instance, schema)

    return run


def _is_re2_pattern(instance: Any) -> bool:
    if isinstance(instance, str):
        compile_pattern(instance)
    return True


_FORMATS = FormatChecker(formats=())
_FORMATS.checks("regex", raises=UnsupportedPattern)(_is_re2_pattern)

_KEYWORDS = {**Draft202012Validator.VALIDATORS, "pattern": _pattern, "patternProperties": _pattern_properties,
             "additionalProperties": _additional_properties, "unevaluatedProperties": _unevaluated_properties,
             "uniqueItems": _unique_items}
BoundedValidator = validators.extend(Draft202012Validator, {k: _metered(f) for k, f in _KEYWORDS.items()},
                                     format_checker=_FORMATS)


def _refuse_retrieval(uri: str) -> Resource[Any]:
    # References leave the schema only by name; nothing is ever fetched.
    raise NoSuchResource(ref=uri)  # type: ignore[call-arg]


_REGISTRY: Registry[Any] = Registry(retrieve=_refuse_retrieval)  # type: ignore[call-arg]


def _validator(schema: Any) -> Any:
    return BoundedValidator(schema, registry=_REGISTRY, format_checker=_FORMATS)


# -- running a schema against client data -----------------------------------------------------------
def schema_errors(schema: Any, instance: Any) -> list[ValidationError]:
    """Every error of ``instance`` (at most MAX_ERRORS), in the validator's order.

    A schema that needs more than MAX_OPERATIONS operations, refers to itself without end or to something
    it does not contain gives one error at the top: the value could not be checked.
    """
    token = _BUDGET.set(_Budget(MAX_OPERATIONS))
    errors: list[ValidationError] = []
    try:
        for error in _validator(schema).iter_errors(instance):
            errors.append(error)
            if len(errors) >= MAX_ERRORS:
                break
    except _OverBudget:
        return [ValidationError(f"the value needs more than {MAX_OPERATIONS:,} checks against the schema; "
                                "send less data or simplify the schema", validator="budget")]
    except RecursionError:
        return [ValidationError("the schema refers to itself without end", validator="$ref")]
    except Unresolvable as exc:
        return [ValidationError(f"the schema refers to {_shown(str(exc.ref))}, which it does not contain",
                                validator="$ref")]
    finally:
        _BUDGET.reset(token)
    return errors


# -- checking a schema when a definition is registered ---------------------------------------------
@dataclass(frozen=True)
class SchemaProblem:
    code: str
    where: str  # a JSON pointer-like path inside the schema, "" for the root
    message: str
    hint: str


_DATA_KEYWORDS = frozenset({"const", "enum", "default", "examples"})  # values, not schemas


def schema_problems(schema: Any) -> list[SchemaProblem]:
    """Why ``schema`` cannot be a user schema: invalid, a pattern RE2 cannot run, a reference outside it,
    or one that never ends."""
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        return [SchemaProblem("invalid_schema", "/".join(str(p) for p in exc.path), exc.message,
                              "see json-schema.org (draft 2020-12)")]
    problems = _walk(schema)
    if problems:
        return problems
    probes: tuple[Any, ...] = (None, {}, [], "", 0)
    for probe in probes:
        for error in schema_errors(schema, probe):
            if error.validator == "$ref":
                return [SchemaProblem("invalid_schema", "", error.message, "point each $ref at a part of "
                                      "the schema ('#/$defs/name') that does not lead back to itself")]
    return []


def _walk(schema: Any) -> list[SchemaProblem]:
    problems = []
    stack: list[tuple[Any, list[str]]] = [(schema, [])]
    while stack:  # iterative: a schema is client text too
        node, path = stack.pop()
        if isinstance(node, list):
            stack.extend((item, [*path, str(i)]) for i, item in enumerate(node))
            continue
        if not isinstance(node, dict):
            continue
        where = "/".join(path)
        patterns = []
        if isinstance(node.get("pattern"), str):
            patterns.append((node["pattern"], f"{where}/pattern".lstrip("/")))
        if isinstance(node.get("patternProperties"), dict):
            patterns += [(p, f"{where}/patternProperties".lstrip("/")) for p in node["patternProperties"]]
        for pattern, at in patterns:
            try:
                compile_pattern(pattern)
            except UnsupportedPattern as exc:
                problems.append(SchemaProblem(
                    "unsupported_pattern", at, f"pattern {_shown(pattern)} cannot be used: {exc}",
                    "patterns use RE2 syntax: no backreferences (\\1) or lookaround ((?=, (?!, (?<=, (?<!)"))
        for keyword in ("$ref", "$dynamicRef"):
            ref = node.get(keyword)
            if isinstance(ref, str) and not ref.startswith("#"):
                problems.append(SchemaProblem(
                    "unsupported_ref", f"{where}/{keyword}".lstrip("/"),
                    f"{keyword} {_shown(ref)} points outside the schema; nothing is fetched",
                    "put the shared part under $defs and refer to it as '#/$defs/name'"))
        stack.extend((value, [*path, key]) for key, value in node.items() if key not in _DATA_KEYWORDS)
    return sorted(problems, key=lambda p: (p.where, p.message))
