"""The structural diff and the one-line change summary between two revisions of a definition."""

from __future__ import annotations

from chalicelib.core.model import Definition
from chalicelib.core.revisions import MAX_DIFF_LINES, change_summary, source_diff, structural_diff


def definition(*steps: dict, **top: object) -> Definition:
    return Definition.model_validate({"name": "flow", "steps": list(steps), **top})


A = {"id": "a", "type": "machine", "task_type": "util.log", "config": {"message": "a"}}
B = {"id": "b", "type": "machine", "task_type": "util.log", "config": {"message": "b"}, "depends_on": ["a"]}
C = {"id": "c", "type": "machine", "task_type": "util.log", "config": {"message": "c"}, "depends_on": ["a"]}


def test_a_rewired_workflow_lists_steps_and_edges_both_ways():
    old, new = definition(A, B), definition({**A, "config": {"message": "A"}}, C, description="rewired")
    assert structural_diff(old, new) == {
        "steps_added": ["c"], "steps_removed": ["b"], "steps_changed": [{"id": "a", "fields": ["config"]}],
        "edges_added": [{"source": "a", "target": "c", "condition": None}],
        "edges_removed": [{"source": "a", "target": "b", "condition": None}],
        "fields_changed": ["description"],
    }
    assert change_summary(old, new) == "added c; removed b; changed a; edges +1/-1; description changed"
    assert change_summary(None, old) == "first revision: 2 steps"
    assert change_summary(old, old) == "no change to the steps"


def test_the_source_diff_is_unified_and_bounded():
    assert source_diff("a\nb\n", "a\nc", "x@1", "x@2") == "--- x@1\n+++ x@2\n@@ -1,2 +1,2 @@\n a\n-b\n+c\n"
    long = source_diff("", "\n".join(map(str, range(MAX_DIFF_LINES * 2))), "x@1", "x@2").splitlines()
    assert len(long) == MAX_DIFF_LINES + 1 and long[-1].endswith("more lines")
