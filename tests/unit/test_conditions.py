"""Unit tests for the gateway condition language (parser, evaluate, ASL compiler)."""

import json
from decimal import Decimal
from typing import Any

import pytest

from chalicelib.core.conditions import (
    MAX_DEPTH,
    MAX_LENGTH,
    And,
    Compare,
    ConditionError,
    Not,
    Or,
    Path,
    evaluate,
    parse_condition,
    referenced_paths,
    to_choice_rule,
)


def P(*segments):
    return Path(tuple(segments))


def C(path, op, value):
    return Compare(P(*path.split(".")), op, value)


def guarded(var, type_test, op, value):
    return {
        "And": [
            {"Variable": var, "IsPresent": True},
            {"Variable": var, type_test: True},
            {"Variable": var, op: value},
        ]
    }


def rule(text, data_path="$.data"):
    return to_choice_rule(parse_condition(text), data_path)


# ---------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    "text, expected",
    [
        ("amount > 1000", C("amount", ">", 1000)),
        ("amount>1000", C("amount", ">", 1000)),
        ("amount >= -2.5", C("amount", ">=", -2.5)),
        ("amount == 1e3", C("amount", "==", 1000.0)),
        ("amount < -1E-2", C("amount", "<", -0.01)),
        ("amount <= 0", C("amount", "<=", 0)),
        ("amount != 7", C("amount", "!=", 7)),
        ("approved", C("approved", "==", True)),
        ("approved == false", C("approved", "==", False)),
        ("note == null", C("note", "==", None)),
        ("note != null", C("note", "!=", None)),
        ("name == 'bob'", C("name", "==", "bob")),
        ('name == "bob"', C("name", "==", "bob")),
        ("customer.tier == 'gold'", Compare(P("customer", "tier"), "==", "gold")),
        ("items[0] == 'a'", Compare(P("items", 0), "==", "a")),
        ("grid[1][2] > 3", Compare(P("grid", 1, 2), ">", 3)),
        ("a.b_c.D9 == 1", Compare(P("a", "b_c", "D9"), "==", 1)),
        ("_x", C("_x", "==", True)),
        # Keywords are only reserved as the first segment of a path.
        ("order.not == 1", Compare(P("order", "not"), "==", 1)),
        ("\tamount\n>\r\n1 ", C("amount", ">", 1)),
    ],
)
def test_parse_comparisons(text, expected):
    assert parse_condition(text) == expected


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1000 < amount", C("amount", ">", 1000)),
        ("1000 <= amount", C("amount", ">=", 1000)),
        ("1000 > amount", C("amount", "<", 1000)),
        ("1000 >= amount", C("amount", "<=", 1000)),
        ("1000 == amount", C("amount", "==", 1000)),
        ("1000 != amount", C("amount", "!=", 1000)),
        ("'m' < name", C("name", ">", "m")),
        ("null == note", C("note", "==", None)),
        ("true != ok", C("ok", "!=", True)),
    ],
)
def test_literal_on_the_left_is_flipped(text, expected):
    assert parse_condition(text) == expected


@pytest.mark.parametrize(
    "text, value",
    [
        (r"s == 'it\'s'", "it's"),
        (r's == "say \"hi\""', 'say "hi"'),
        (r"s == 'a\\b'", "a\\b"),
        (r"s == 'line\nnext\ttab\rcr\/'", "line\nnext\ttab\rcr/"),
        (r"s == '\b\f'", "\b\f"),
        (r"s == '\u00e9\u20AC'", "é€"),
        ("s == 'é 😀'", "é 😀"),
        ('s == "it\'s"', "it's"),
        ("s == ''", ""),
        ("s == 'and or not'", "and or not"),
    ],
)
def test_string_literals_and_escapes(text, value):
    expr = parse_condition(text)
    assert expr == C("s", "==", value)


def _value(text):
    expr = parse_condition(text)
    assert isinstance(expr, Compare)
    return expr.value


def test_numbers_keep_int_or_float_type():
    assert type(_value("x == 5")) is int
    assert type(_value("x == -5")) is int
    assert type(_value("x == 5.0")) is float
    assert type(_value("x == 5e0")) is float
    assert _value("x == 9007199254740992") == 2**53
    assert _value("x == -9007199254740992") == -(2**53)


def test_keyword_aliases():
    assert parse_condition("a && b || !c") == parse_condition("a and b or not c")
    assert parse_condition("!(a)") == Not(C("a", "==", True))


def test_precedence_not_binds_tighter_than_and_tighter_than_or():
    a, b, c = (C(n, "==", True) for n in "abc")
    assert parse_condition("a or b and c") == Or((a, And((b, c))))
    assert parse_condition("a and b or c") == Or((And((a, b)), c))
    assert parse_condition("not a and b") == And((Not(a), b))
    assert parse_condition("not a or b") == Or((Not(a), b))
    assert parse_condition("not (a or b)") == Not(Or((a, b)))
    assert parse_condition("(a or b) and c") == And((Or((a, b)), c))
    # Comparisons bind tighter than `not`, as in Python.
    assert parse_condition("not x == 1") == Not(C("x", "==", 1))


def test_same_operator_chains_are_flattened():
    a, b, c, d = (C(n, "==", True) for n in "abcd")
    assert parse_condition("a and b and c") == And((a, b, c))
    assert parse_condition("a and (b and c)") == And((a, b, c))
    assert parse_condition("(a or b) or (c or d)") == Or((a, b, c, d))
    assert parse_condition("((a))") == a
    assert parse_condition("not not a") == Not(Not(a))


def test_bool_and_number_literals_are_distinct_nodes():
    # Python says True == 1; the AST must not.
    assert parse_condition("x == 1") != parse_condition("x == true")
    assert parse_condition("x == 0") != parse_condition("x == false")


@pytest.mark.parametrize(
    "text",
    [
        "amount > 1000 and approved == true",
        "not (a or b) and c",
        "a or b and not c",
        "s == 'quote \\' and \\\" and \\\\ and \\n'",
        "x == 1.5e+300 or y < -0.25",
        "items[0] == null or grid[1][2] != 3",
        "not not x",
        "(a or b) and (c or d) and not (e and f)",
    ],
)
def test_str_round_trips(text):
    expr = parse_condition(text)
    assert parse_condition(str(expr)) == expr


# ---------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "text, message, position, hint",
    [
        ("amount >", "expected a value after '>', found end of input", 8, None),
        ("amount > 1000 and", "expected a condition after 'and', found end of input", 17, None),
        ("amount > and x", "expected a value after '>', found 'and'", 9, None),
        ("", "condition is empty", 0, "amount > 1000"),
        ("   ", "condition is empty", 0, None),
        ("a AND b", "expected 'and', 'or', ')' or end of condition after 'a', found 'AND'", 2, "write 'and'"),
        ("a == True", "comparing two fields ('a' and 'True')", 5, "write 'true'"),
        ("a == b", "comparing two fields ('a' and 'b') is not supported", 5, "compare each field with a literal"),
        ("1 == 2", "comparing two literal values (1 == 2) is not supported", 0, "must be a field name"),
        ("x = 1", "unexpected '='", 2, "use '=='"),
        ("a & b", "unexpected '&'", 2, "'and' or '&&'"),
        ("a | b", "unexpected '|'", 2, "'or' or '||'"),
        ("5", "a literal (5) on its own is not a condition", 0, "compare a field"),
        ("'yes'", "a literal ('yes') on its own is not a condition", 0, None),
        ("(a", "expected ')' to close the '(' at position 0, found end of input", 2, None),
        ("(a b", "expected 'and', 'or', ')' or end of condition after 'a', found 'b'", 3, None),
        ("a)", "unexpected ')' with no matching '('", 1, None),
        ("()", "expected a condition after '(', found ')'", 1, "parentheses must contain"),
        ("> 5", "expected a condition, found '>'", 0, "field name or value on each side"),
        ("not", "expected a condition after 'not', found end of input", 3, None),
        ("a.b[0].c == 1", "a field name cannot follow an array index", 6, "indexes may only end a path"),
        ("a..b", "expected a field name after '.'", 2, None),
        ("a.", "expected a field name after '.'", 2, None),
        ("a[x] == 1", "expected an array index like [0]", 1, None),
        ("a[-1] == 1", "expected an array index like [0]", 1, None),
        ("a[1234567890] == 1", "array index is too large", 2, None),
        ("true.x == 1", "'true' is a reserved word and cannot start a path", 0, "reserved words"),
        ("x > true", "'>' needs a number or string, not true", 4, "use == or !="),
        ("null <= x", "'<=' needs a number or string, not null", 0, "use == or !="),
        ("1 < x < 5", "comparisons cannot be chained ('<' after 'x')", 6, "write 1 < x and x < 5"),
        ("$.data.x == 1", "unexpected '$'", 0, "not $.data.amount"),
        ("s == 'abc", "unterminated string", 5, "close it with '"),
        ('s == "abc\\"', "unterminated string", 5, None),
        ("s == 'a\\q'", "unknown escape '\\q'", 7, "valid escapes"),
        ("s == '\\u12'", "expected 4 hex digits after '\\u'", 6, None),
        ("s == '\\ud83d'", "surrogate code points are not allowed", 6, None),
        ("x == 1abc", "malformed number '1abc'", 5, "numbers look like"),
        ("x == 1.", "malformed number '1.'", 5, None),
        ("x == 1.2.3", "malformed number '1.2.3'", 5, None),
        ("x == 9007199254740993", "number '9007199254740993' is out of range", 5, "integers must be within"),
        ("x == 1e400", "number '1e400' is out of range", 5, "floats must be finite"),
        ("- 5 < x", "unexpected '-'", 0, "arithmetic is not supported"),
        ("x == 1 y", "expected 'and', 'or', ')' or end of condition after '1', found 'y'", 7, None),
        ("x # 1", "unexpected character '#'", 2, None),
        ("caf\u00e9 == 1", "unexpected character 'é'", 3, None),
    ],
)
def test_errors_say_what_and_where(text, message, position, hint):
    with pytest.raises(ConditionError) as info:
        parse_condition(text)
    err = info.value
    assert err.message == message or err.message.startswith(message)
    assert err.position == position
    if hint is not None:
        assert err.hint is not None and hint in err.hint
    assert str(err).startswith(err.message)


def test_error_str_and_dict():
    with pytest.raises(ConditionError) as info:
        parse_condition("amount > ")
    err = info.value
    assert isinstance(err, ValueError)
    assert str(err) == "expected a value after '>', found end of input at position 9"
    assert err.as_dict() == {
        "message": "expected a value after '>', found end of input",
        "position": 9,
        "hint": None,
    }
    assert str(ConditionError("boom", 3, "try this")) == "boom at position 3 (hint: try this)"
    assert str(ConditionError("boom")) == "boom"


def test_length_limit():
    ok = "x == '" + "a" * (MAX_LENGTH - 7) + "'"
    assert len(ok) == MAX_LENGTH
    parse_condition(ok)
    with pytest.raises(ConditionError, match="too long") as info:
        parse_condition(ok + " ")
    assert info.value.position == MAX_LENGTH


def test_depth_limit_parentheses_and_not():
    parse_condition("(" * MAX_DEPTH + "x" + ")" * MAX_DEPTH)
    parse_condition("not " * MAX_DEPTH + "x")
    with pytest.raises(ConditionError, match="nested too deeply") as info:
        parse_condition("(" * (MAX_DEPTH + 1) + "x" + ")" * (MAX_DEPTH + 1))
    assert info.value.position == MAX_DEPTH
    with pytest.raises(ConditionError, match="nested too deeply"):
        parse_condition("!" * (MAX_DEPTH + 1) + "x")
    # Siblings do not add up: depth is nesting, not count.
    parse_condition(" and ".join(["(" * MAX_DEPTH + "x" + ")" * MAX_DEPTH] * 5))


def test_non_string_input():
    with pytest.raises(ConditionError, match="must be a string"):
        parse_condition(None)  # type: ignore[arg-type]


def test_direct_construction_is_validated():
    with pytest.raises(ConditionError):
        Compare(P("x"), "<", True)
    with pytest.raises(ConditionError):
        Compare(P("x"), "=~", 1)
    with pytest.raises(ConditionError):
        Compare(P("x"), "==", [1])  # type: ignore[arg-type]
    with pytest.raises(ConditionError):
        Compare(P("x"), "==", float("nan"))
    with pytest.raises(ConditionError):
        Path(())
    with pytest.raises(ConditionError):
        Path((0,))
    with pytest.raises(ConditionError):
        Path(("a", 0, "b"))
    with pytest.raises(ConditionError):
        Path(("a-b",))
    with pytest.raises(ConditionError, match="reserved word"):
        Path(("null",))
    with pytest.raises(ConditionError):
        And(())


# ------------------------------------------------------------- ASL Choice rules


@pytest.mark.parametrize(
    "text, asl_op, value",
    [
        ("amount == 1000", "NumericEquals", 1000),
        ("amount < 1000", "NumericLessThan", 1000),
        ("amount <= 1000", "NumericLessThanEquals", 1000),
        ("amount > 1000", "NumericGreaterThan", 1000),
        ("amount >= 1000", "NumericGreaterThanEquals", 1000),
        ("amount > -2.5", "NumericGreaterThan", -2.5),
    ],
)
def test_golden_numeric(text, asl_op, value):
    assert rule(text) == guarded("$.data.amount", "IsNumeric", asl_op, value)


@pytest.mark.parametrize(
    "text, asl_op",
    [
        ("name == 'bob'", "StringEquals"),
        ("name < 'bob'", "StringLessThan"),
        ("name <= 'bob'", "StringLessThanEquals"),
        ("name > 'bob'", "StringGreaterThan"),
        ("name >= 'bob'", "StringGreaterThanEquals"),
    ],
)
def test_golden_string(text, asl_op):
    assert rule(text) == guarded("$.data.name", "IsString", asl_op, "bob")


def test_golden_brief_example():
    assert rule("amount > 1000") == {
        "And": [
            {"Variable": "$.data.amount", "IsPresent": True},
            {"Variable": "$.data.amount", "IsNumeric": True},
            {"Variable": "$.data.amount", "NumericGreaterThan": 1000},
        ]
    }
    assert rule("amount > 1000 and approved == true") == {
        "And": [
            guarded("$.data.amount", "IsNumeric", "NumericGreaterThan", 1000),
            guarded("$.data.approved", "IsBoolean", "BooleanEquals", True),
        ]
    }


def test_golden_boolean_and_bare_path():
    assert rule("approved == true") == guarded("$.data.approved", "IsBoolean", "BooleanEquals", True)
    assert rule("approved == false") == guarded("$.data.approved", "IsBoolean", "BooleanEquals", False)
    assert rule("approved") == rule("approved == true")
    assert rule("not approved") == {"Not": guarded("$.data.approved", "IsBoolean", "BooleanEquals", True)}


def test_golden_null():
    null_rule = {
        "And": [
            {"Variable": "$.data.note", "IsPresent": True},
            {"Variable": "$.data.note", "IsNull": True},
        ]
    }
    assert rule("note == null") == null_rule
    assert rule("note != null") == {"Not": null_rule}


def test_golden_not_equals_is_not_of_equals():
    assert rule("amount != 5") == {"Not": guarded("$.data.amount", "IsNumeric", "NumericEquals", 5)}
    assert rule("name != 'x'") == {"Not": guarded("$.data.name", "IsString", "StringEquals", "x")}
    assert rule("ok != false") == {"Not": guarded("$.data.ok", "IsBoolean", "BooleanEquals", False)}


def test_golden_or_not_and_nesting():
    a = guarded("$.data.a", "IsNumeric", "NumericEquals", 1)
    b = guarded("$.data.b", "IsString", "StringEquals", "x")
    c = guarded("$.data.c", "IsBoolean", "BooleanEquals", True)
    assert rule("a == 1 or b == 'x' and c") == {"Or": [a, {"And": [b, c]}]}
    assert rule("not (a == 1 or b == 'x')") == {"Not": {"Or": [a, b]}}
    assert rule("a == 1 and b == 'x' and c") == {"And": [a, b, c]}


def test_golden_double_negation_collapses():
    a = guarded("$.data.a", "IsNumeric", "NumericEquals", 1)
    assert rule("not not a == 1") == a
    assert rule("not (a != 1)") == a
    assert rule("not not not a == 1") == {"Not": a}


def test_golden_paths_and_data_path():
    assert rule("items[0] == 'a'") == guarded("$.data.items[0]", "IsString", "StringEquals", "a")
    assert rule("grid[1][2] > 3") == guarded("$.data.grid[1][2]", "IsNumeric", "NumericGreaterThan", 3)
    assert rule("customer.tier == 'gold'", "$") == guarded("$.customer.tier", "IsString", "StringEquals", "gold")
    assert rule("x == 1", "$.instance.data") == guarded("$.instance.data.x", "IsNumeric", "NumericEquals", 1)
    assert rule("x == 1", "$.rows[2]") == guarded("$.rows[2].x", "IsNumeric", "NumericEquals", 1)


def test_golden_flipped_literal():
    assert rule("1000 < amount") == rule("amount > 1000")
    assert rule("'m' >= name") == guarded("$.data.name", "IsString", "StringLessThanEquals", "m")


@pytest.mark.parametrize("bad", ["", "data", "$.", "$..x", "$.a-b", "$[*]", "$.data ", None])
def test_bad_data_path(bad):
    with pytest.raises(ValueError, match="data_path"):
        to_choice_rule(parse_condition("x == 1"), bad)


def test_manual_ast_trivial_collapse():
    a = C("a", "==", 1)
    b = C("b", "==", 2)
    assert to_choice_rule(And((a,))) == to_choice_rule(a)
    assert to_choice_rule(Or((a,))) == to_choice_rule(a)
    nested = to_choice_rule(And((And((a, And((b,)))), a)))
    assert nested == {"And": [to_choice_rule(a), to_choice_rule(b), to_choice_rule(a)]}
    with pytest.raises(TypeError):
        to_choice_rule("x == 1")  # type: ignore[arg-type]


def test_output_is_deterministic_and_fresh():
    text = "(amount > 1000 or name == 'x') and not (note == null) and items[0] != 3"
    first = rule(text)
    dumped = json.dumps(first, sort_keys=False)
    first["Next"] = "Mutated"
    first["And"][0]["Or"].clear()
    for _ in range(3):
        again = rule(text)
        assert json.dumps(again, sort_keys=False) == dumped
    # Equal inputs parsed separately compile identically too.
    assert json.dumps(to_choice_rule(parse_condition(text))) == dumped


CORPUS = [
    "amount > 1000 and approved == true",
    "not (a or b) and c != 'x'",
    "x != null or y == false or z <= -3",
    "items[0] >= 'm' and grid[0][1] < 2.5",
    "not not not q",
]


def _walk_rules(node, parents=()):
    yield node, parents
    for key in ("And", "Or"):
        for child in node.get(key, ()):
            yield from _walk_rules(child, parents + (node,))
    if "Not" in node:
        yield from _walk_rules(node["Not"], parents + (node,))


@pytest.mark.parametrize("text", CORPUS)
def test_every_comparison_is_guarded_and_nothing_has_next(text):
    compiled = rule(text)
    json.dumps(compiled)  # plain JSON types only
    for node, parents in _walk_rules(compiled):
        assert "Next" not in node
        ops = [k for k in node if k != "Variable"]
        if "Variable" not in node:
            assert len(ops) == 1 and ops[0] in ("And", "Or", "Not")
            if ops[0] in ("And", "Or"):
                assert len(node[ops[0]]) >= 2
            continue
        assert len(ops) == 1
        if ops[0] == "IsPresent":
            continue
        # Any other test sits in an And that first checks presence (and
        # type, for value comparisons) of the same variable.
        siblings = parents[-1]["And"]
        assert siblings[0] == {"Variable": node["Variable"], "IsPresent": True}
        if ops[0] not in ("IsNull", "IsNumeric", "IsString", "IsBoolean"):
            assert list(siblings[1].values())[1] is True and list(siblings[1])[1].startswith("Is")
            assert siblings.index(node) == 2


# ------------------------------------------------------------------- evaluate

class _Missing:
    """Marks 'no field at all'; a stable repr keeps test ids the same in every process."""

    def __repr__(self) -> str:
        return "MISSING"


MISSING = _Missing()


def _data(value):
    return {} if value is MISSING else {"v": value}


# (condition, [(value, expected), ...]) - value MISSING means the key is absent.
TRUTH_TABLES: list[tuple[str, list[tuple[Any, bool]]]] = [
    (
        "v > 1000",
        [
            (1001, True),
            (1000, False),
            (1000.5, True),
            (999, False),
            ("1001", False),
            (True, False),
            (None, False),
            ([1001], False),
            ({"a": 1}, False),
            (MISSING, False),
            (Decimal("1000.01"), True),
        ],
    ),
    ("v >= 1000", [(1000, True), (1000.0, True), (999.99, False), (MISSING, False)]),
    ("v < 0", [(-1, True), (0, False), (-0.5, True), (False, False), ("-1", False), (MISSING, False)]),
    ("v <= 0", [(0, True), (-0.0, True), (1, False), (None, False)]),
    ("v == 1", [(1, True), (1.0, True), (True, False), ("1", False), (2, False), (MISSING, False)]),
    ("v == 0", [(0, True), (False, False), (None, False), ("", False)]),
    ("v != 1", [(1, False), (1.0, False), (2, True), (True, True), ("1", True), (None, True), (MISSING, True)]),
    ("v == true", [(True, True), (False, False), (1, False), ("true", False), (None, False), (MISSING, False)]),
    ("v", [(True, True), (False, False), (1, False), ("yes", False), ([True], False), (MISSING, False)]),
    ("v == false", [(False, True), (True, False), (0, False), (None, False), (MISSING, False)]),
    ("v != true", [(True, False), (False, True), (1, True), (MISSING, True)]),
    ("not v", [(True, False), (False, True), (1, True), (MISSING, True)]),
    ("v == null", [(None, True), (MISSING, False), (0, False), (False, False), ("", False), ([], False)]),
    ("v != null", [(None, False), (MISSING, True), (0, True), ("x", True)]),
    ("v == 'abc'", [("abc", True), ("ABC", False), ("abc ", False), (None, False), (MISSING, False)]),
    ("v != 'abc'", [("abc", False), ("x", True), (5, True), (MISSING, True)]),
    ("v > 'b'", [("c", True), ("b", False), ("ba", True), ("B", False), ("é", True), (5, False), (MISSING, False)]),
    ("v >= 'b'", [("b", True), ("a", False)]),
    ("v < 'b'", [("a", True), ("", True), ("b", False), (None, False), (MISSING, False)]),
    ("v <= ''", [("", True), ("a", False), (0, False)]),
    ("not (v > 1000)", [(1001, False), (1000, True), ("x", True), (MISSING, True)]),
    ("v > 1 and v < 5", [(3, True), (1, False), (5, False), ("3", False), (MISSING, False)]),
    ("v < 1 or v > 5", [(0, True), (6, True), (3, False), ("0", False), (MISSING, False)]),
    ("v == 1 or v == 'one' or v == true", [(1, True), ("one", True), (True, True), (False, False), (MISSING, False)]),
]


@pytest.mark.parametrize(
    "text, value, expected",
    [(text, value, expected) for text, rows in TRUTH_TABLES for value, expected in rows],
    ids=lambda x: repr(x) if not isinstance(x, str) else x,
)
def test_evaluate_truth_tables(text, value, expected):
    assert evaluate(parse_condition(text), _data(value)) is expected


@pytest.mark.parametrize(
    "text, data, expected",
    [
        ("a.b == 1", {"a": {"b": 1}}, True),
        ("a.b == 1", {"a": {"c": 1}}, False),
        ("a.b == 1", {"a": 5}, False),
        ("a.b == 1", {"a": None}, False),
        ("a.b == 1", {"a": [{"b": 1}]}, False),
        ("a.b != 1", {"a": 5}, True),
        ("a.b == null", {"a": {"b": None}}, True),
        ("a.b == null", {"a": {}}, False),
        ("items[0] == 'x'", {"items": ["x", "y"]}, True),
        ("items[1] == 'y'", {"items": ["x", "y"]}, True),
        ("items[2] == 'y'", {"items": ["x", "y"]}, False),
        ("items[0] == 'x'", {"items": "xyz"}, False),
        ("items[0] == 'x'", {"items": {"0": "x"}}, False),
        ("items[0] == 'x'", {"items": ("x",)}, True),
        ("items[0] == null", {"items": [None]}, True),
        ("items[0] == null", {"items": []}, False),
        ("grid[1][0] == 3", {"grid": [[1, 2], [3, 4]]}, True),
        ("grid[1][0] == 3", {"grid": [[1, 2], 3]}, False),
        ("amount > 1000 and approved", {"amount": 2000, "approved": True}, True),
        ("amount > 1000 and approved", {"amount": 2000, "approved": 1}, False),
        ("amount > 1000 or approved", {"approved": True}, True),
        ("amount > 1000 or approved", {}, False),
        ("not (amount > 1000 or approved)", {}, True),
        ("a.not == 1", {"a": {"not": 1}}, True),
    ],
)
def test_evaluate_paths_and_combinations(text, data, expected):
    assert evaluate(parse_condition(text), data) is expected


def test_evaluate_accepts_any_mapping():
    from types import MappingProxyType

    assert evaluate(parse_condition("a.b == 1"), MappingProxyType({"a": MappingProxyType({"b": 1})})) is True


def test_evaluate_rejects_non_expressions():
    with pytest.raises(TypeError):
        evaluate("x == 1", {})  # type: ignore[arg-type]


# ----------------------------------------------------------- referenced_paths


def test_referenced_paths():
    expr = parse_condition("(z.b > 1 or a == 'x') and not items[0] and a != null and grid[1][2] == 3 or z.a")
    assert referenced_paths(expr) == ["a", "grid[1][2]", "items[0]", "z.a", "z.b"]
    assert referenced_paths(parse_condition("x")) == ["x"]
    with pytest.raises(TypeError):
        referenced_paths(42)  # type: ignore[arg-type]
