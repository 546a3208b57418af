"""Graph rendering: golden Mermaid per bundled example, shapes per step type, escaping, instance colours."""

from __future__ import annotations

import copy
import html
import re

import pytest

from chalicelib.core.graph_render import (
    STATE_STYLES,
    STATES,
    mermaid_text,
    node_ids,
    render,
    render_instance,
    step_state,
)
from chalicelib.core.model import Definition
from chalicelib.examples import bundled

GOLDEN = {
    "expense_approval": """\
flowchart TD
    s_submit["Submit"]
    s_manager_approval{{"Manager Approval"}}
    s_manager_decision{"Approved by manager?"}
    s_needs_finance{"Over the threshold?"}
    s_finance_approval{{"Finance Approval"}}
    s_finance_decision{"Approved by finance?"}
    s_process["Process"]
    s_rejected["Notify rejection"]
    s_submit --> s_manager_approval
    s_manager_approval --> s_manager_decision
    s_manager_decision -->|"approved == true"| s_needs_finance
    s_manager_decision -->|"otherwise"| s_rejected
    s_needs_finance -->|"amount #gt; 1000"| s_finance_approval
    s_needs_finance -->|"otherwise"| s_process
    s_finance_approval --> s_finance_decision
    s_finance_decision -->|"finance_approved == true"| s_process
    s_finance_decision -->|"otherwise"| s_rejected
""",
    "image_pipeline": """\
flowchart TD
    s_generate["Generate image"]
    s_refine["Refine image"]
    s_generate --> s_refine
""",
    "order_fulfilment": """\
flowchart TD
    s_receive["Receive order"]
    s_check_stock["Check stock"]
    s_check_fraud["Check fraud"]
    s_quote_shipping["Quote shipping"]
    s_decide{"Large order?"}
    s_manual_review["Flag for review"]
    s_auto_approve["Approve automatically"]
    s_confirm["Confirm order"]
    s_receive --> s_check_stock
    s_receive --> s_check_fraud
    s_receive --> s_quote_shipping
    s_check_stock --> s_decide
    s_check_fraud --> s_decide
    s_quote_shipping --> s_decide
    s_decide -->|"amount #gt; 1000 or fraud_score #gt;= 50"| s_manual_review
    s_decide -->|"otherwise"| s_auto_approve
    s_manual_review --> s_confirm
    s_auto_approve --> s_confirm
""",
}

HOSTILE_TITLES = [
    'He said "hi"',
    "<script>alert(1)</script>",
    '<img src=x onerror="alert(1)">',
    "`markdown` **bold**",
    "end",
    "graph TD",
    "click s_a call alert(1)",
    'click s_a href "javascript:alert(1)"',
    "style s_a fill:#f00;",
    "classDef x fill:#f00;",
    '%%{init: {"theme": "dark"}}%%',
    "%% a comment",
    "a]b[c{d}e(f)g|h",
    "#quot; #35; &amp; &lt;",
    "$$x^2$$ fa:fa-car",
    "line one\nline two\r\nthree\u2028four",
    "]) ]] }} --> s_b",
    "subgraph X\nend",
    "tab\there\x07bell",
    "émoji ✓ 日本語",
]


def definition(data):
    return Definition.model_validate(data)


def machine(step_id, *deps, **extra):
    return {"id": step_id, "type": "machine", "task_type": "data.set", "config": {"values": {}},
            "depends_on": list(deps), **extra}


def mermaid_decode(text):
    """What Mermaid shows for a label: `#name;` and `#NN;` entity codes back to characters."""
    return re.sub(r"#(\w+);", lambda m: html.unescape(f"&#{m[1]};" if m[1].isdigit() else f"&{m[1]};"), text)


@pytest.mark.parametrize("name", sorted(bundled()))
def test_each_bundled_example_renders_its_golden_mermaid(name):
    assert render(definition(bundled()[name]))["mermaid_source"] == GOLDEN[name]


def test_every_bundled_example_has_a_golden():
    assert set(GOLDEN) == set(bundled())


def test_nodes_and_edges_as_data():
    graph = render(definition(bundled()["order_fulfilment"]))
    assert graph["nodes"][0] == {"id": "receive", "label": "Receive order", "type": "machine", "is_initial": True,
                                 "is_terminal": False, "mermaid_id": "s_receive"}
    assert [n["id"] for n in graph["nodes"] if n["is_terminal"]] == ["confirm"]
    decide = [e for e in graph["edges"] if e["source"] == "decide"]
    assert decide == [
        {"source": "decide", "target": "manual_review", "condition": "amount > 1000 or fraud_score >= 50",
         "is_default": False},
        {"source": "decide", "target": "auto_approve", "condition": None, "is_default": True},
    ]


def test_explicit_initial_and_terminal_steps_are_marked():
    graph = render(definition(bundled()["expense_approval"]))
    assert [n["id"] for n in graph["nodes"] if n["is_initial"]] == ["submit"]
    assert [n["id"] for n in graph["nodes"] if n["is_terminal"]] == ["process", "rejected"]


def test_json_format_leaves_out_the_mermaid_source():
    graph = render(definition(bundled()["image_pipeline"]), graph_format="json")
    assert "mermaid_source" not in graph
    assert graph["edges"] == [{"source": "generate", "target": "refine", "condition": None, "is_default": False}]
    with pytest.raises(ValueError):
        render(definition(bundled()["image_pipeline"]), graph_format="svg")


def test_each_step_type_has_its_shape():
    source = render(definition({"name": "shapes", "steps": [
        machine("m", title="Machine"),
        {"id": "h", "type": "human", "depends_on": ["m"], "title": "Human"},
        {"id": "g", "type": "gateway", "depends_on": ["h"], "title": "Gateway"},
        {"id": "t", "type": "timer", "seconds": 5, "depends_on": ["g"], "title": "Timer"},
        {"id": "w", "type": "webhook", "depends_on": ["t"], "title": "Webhook"},
        {"id": "r", "type": "receive", "event_type": "paid", "depends_on": ["w"], "title": "Receive"},
    ]}))["mermaid_source"].splitlines()
    assert source[1:7] == [
        '    s_m["Machine"]',
        '    s_h{{"Human"}}',
        '    s_g{"Gateway"}',
        '    s_t(["Timer"])',
        '    s_w[["Webhook"]]',
        '    s_r[/"Receive"/]',
    ]


def test_a_step_without_a_title_is_labelled_by_its_id():
    assert '    s_plain["plain"]' in render(definition({"name": "x", "steps": [machine("plain")]}))["mermaid_source"]


def test_node_ids_are_prefixed_so_keywords_and_dashes_are_safe():
    assert node_ids(["end", "graph", "click", "style", "a-b", "subgraph"]) == {
        "end": "s_end", "graph": "s_graph", "click": "s_click", "style": "s_style", "a-b": "s_a_b",
        "subgraph": "s_subgraph"}


def test_node_ids_that_would_collide_are_numbered_instead():
    assert node_ids(["a-b", "a_b", "c"]) == {"a-b": "s0", "a_b": "s1", "c": "s2"}


@pytest.mark.parametrize("title", HOSTILE_TITLES)
def test_a_hostile_title_stays_inside_its_quoted_label(title):
    graph = render(definition({"name": "hostile", "steps": [
        machine("a", title=title),
        {"id": "b", "type": "human", "depends_on": ["a"], "title": title},
        {"id": "end", "type": "gateway", "depends_on": ["b"], "title": title},
        machine("yes", "end", condition='note == "x"', title=title),
        machine("no", "end", title=title),
    ]}))
    lines = graph["mermaid_source"].splitlines()
    # Exactly the header, five nodes and four edges: nothing the title says became a statement.
    assert len(lines) == 1 + 5 + 4
    label = mermaid_text(title)
    assert re.fullmatch(r'[^"\r\n\x00-\x1f<>&`%|:$]*', label.replace("#", "")), label
    assert lines[1] == f'    s_a["{label}"]'
    assert lines[2] == f'    s_b{{{{"{label}"}}}}'
    assert lines[3] == f'    s_end{{"{label}"}}'
    # Every '#' starts an entity code, so Mermaid shows exactly the title (line breaks as spaces).
    assert re.fullmatch(r"(?:[^#]|#\w+;)*", label)
    shown = re.sub(r"[\r\n\t\v\f\x85\u2028\u2029]", " ", title).replace("\x07", "")
    assert mermaid_decode(label) == shown


def test_conditions_on_edge_labels_are_escaped_too():
    graph = render(definition({"name": "cond", "steps": [
        {"id": "g", "type": "gateway"},
        machine("a", "g", condition='note == "a|b <i>x</i> %%{init}%%"'),
        machine("b", "g"),
    ]}))
    edge = graph["mermaid_source"].splitlines()[4]
    assert edge == ('    s_g -->|"note == #quot;a#124;b #lt;i#gt;x#lt;/i#gt; #37;#37;{init}#37;#37;#quot;"| s_a')
    assert graph["edges"][0]["condition"] == 'note == "a|b <i>x</i> %%{init}%%"'


@pytest.mark.parametrize(("step_status", "instance_status", "state"), [
    (None, "running", "not_reached"),
    (None, "completed", "not_reached"),
    ("succeeded", "running", "completed"),
    ("succeeded", "failed", "completed"),
    ("running", "running", "current"),
    ("running", "waiting", "current"),
    ("waiting", "waiting", "waiting"),
    ("failed", "failed", "failed"),
    ("timed_out", "failed", "failed"),
    ("running", "canceled", "canceled"),
    ("waiting", "canceled", "canceled"),
    ("running", "failed", "canceled"),
    ("running", "completed", "completed"),
    ("canceled", "canceled", "canceled"),
    ("canceled", "running", "canceled"),
])
def test_step_state(step_status, instance_status, state):
    assert step_state(step_status, instance_status) == state


def test_instance_graph_colours_each_step_by_its_state():
    order = definition(bundled()["order_fulfilment"])
    statuses = {"receive": "succeeded", "check_stock": "succeeded", "check_fraud": "failed",
                "quote_shipping": "running"}
    graph = render_instance(order, statuses, "running")
    lines = graph["mermaid_source"].splitlines()
    assert lines[: len(GOLDEN["order_fulfilment"].splitlines())] == GOLDEN["order_fulfilment"].splitlines()
    assert "    classDef completed fill:#90EE90,stroke:#006400,color:#000000" in lines
    assert "    classDef current fill:#FFD700,stroke:#B8860B,stroke-width:2px,color:#000000" in lines
    assert "    classDef failed fill:#FF6B6B,stroke:#8B0000,stroke-width:2px,color:#000000" in lines
    assert [line for line in lines if line.startswith("    class ")] == [
        "    class s_receive,s_check_stock completed",
        "    class s_quote_shipping current",
        "    class s_check_fraud failed",
        "    class s_decide,s_manual_review,s_auto_approve,s_confirm not_reached",
    ]
    assert {n["id"]: n["state"] for n in graph["nodes"]} == {
        "receive": "completed", "check_stock": "completed", "check_fraud": "failed", "quote_shipping": "current",
        "decide": "not_reached", "manual_review": "not_reached", "auto_approve": "not_reached",
        "confirm": "not_reached"}


def test_every_state_has_a_distinct_style_and_a_class_definition():
    assert len(set(STATE_STYLES.values())) == len(STATES) == 6
    assert {s.split(",")[0] for s in STATE_STYLES.values()} == {
        "fill:#90EE90", "fill:#FFD700", "fill:#ADD8E6", "fill:#FF6B6B", "fill:#D3D3D3", "fill:#FFFFFF"}
    source = render_instance(definition(bundled()["image_pipeline"]), {}, "running")["mermaid_source"]
    assert [line.split()[1] for line in source.splitlines() if line.startswith("    classDef ")] == list(STATES)


def test_a_waiting_human_step_and_a_canceled_instance():
    expense = definition(bundled()["expense_approval"])
    waiting = render_instance(expense, {"submit": "succeeded", "manager_approval": "waiting"}, "waiting")
    assert "    class s_manager_approval waiting" in waiting["mermaid_source"]
    canceled = render_instance(expense, {"submit": "succeeded", "manager_approval": "waiting"}, "canceled")
    assert "    class s_manager_approval canceled" in canceled["mermaid_source"]


def test_rendering_is_pure_and_deterministic():
    data = bundled()["expense_approval"]
    before = copy.deepcopy(data)
    first = render(definition(data))
    assert render(definition(data)) == first
    assert data == before
    statuses = {"submit": "succeeded"}
    assert render_instance(definition(data), statuses, "running") == render_instance(definition(data), statuses,
                                                                                     "running")
