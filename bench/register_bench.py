"""Registration benchmark: the pure path a POST /definitions takes (JSON text -> model -> validation ->
compile -> size check with ARNs bound), its compile share, the ancestry check against the per-step walk
it replaced (timed in the same run), and bytes per step of the state machine as deployed."""

from __future__ import annotations

import gc
import json
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

from bench.dag_schedule import random_dag
from chalicelib.core.bounds import TooDeep, loads_json
from chalicelib.core.compiler import CompileOptions, compile_definition
from chalicelib.core.graph import build_graph
from chalicelib.core.loading import revision_of
from chalicelib.core.model import Definition, MachineStep
from chalicelib.core.sizing import MAX_DEFINITION_BYTES, compiled_size, deployed_size
from chalicelib.core.upstream import Upstream
from chalicelib.core.validation import parse_definition, size_issues, validate_definition
from chalicelib.examples import bundled
from chalicelib.resources import FUNCTIONS
from chalicelib.service.definitions import collector_paused
from chalicelib.tasks.registry import default_registry

SIZES = (1_000, 10_000)
SHAPES = ("chain", "fan-out/fan-in", "random, window 32", "gateways")
RUNS = {1_000: 7, 10_000: 3}  # CPU time, median of this many runs
TARGET_MS = {1_000: 100.0, 10_000: 1_000.0}
BYTES_TARGET = 400.0
SHARED = CompileOptions(share_context=True)
# The stage's function ARNs as deployed: the prod stage's function names (infra/build.py names them
# stepflow-<stage>-<function>) in a region with one of the longest names.
BINDINGS = {f.placeholder: f"arn:aws:lambda:ap-southeast-4:123456789012:function:stepflow-prod-{f.name}"
            for f in FUNCTIONS}


def definition_text(shape: str, n: int) -> str:
    """A definition of n data.set steps in the given shape, each mapping an input from a predecessor,
    with a human step every 100 steps (so the decided-field check has upstream outputs to read).
    "gateways" is a chain of blocks of 10: a gateway, a branch with a fork and join inside, a plain
    branch, and the step where they meet."""
    edges: list[dict[str, str]] = []
    conditions: dict[str, str] = {}
    if shape == "chain":
        names = [f"s{i:05d}" for i in range(n)]
        preds = {name: [names[i - 1]] if i else [] for i, name in enumerate(names)}
    elif shape == "fan-out/fan-in":
        names = ["start", *(f"w{i:05d}" for i in range(n - 2)), "join"]
        preds = {name: ["start"] for name in names[1:-1]}
        preds["start"] = preds["join"] = []
        # depends_on takes at most 100 steps: the fan-in is written as top-level edges.
        edges = [{"source": name, "target": "join"} for name in names[1:-1]]
    elif shape == "gateways":
        names, preds = [], {}
        for b in range(n // 10):
            g, m = f"g{b:04d}", f"m{b:04d}"
            a, c = [f"a{b:04d}_{j}" for j in range(4)], [f"c{b:04d}_{j}" for j in range(4)]
            names += [g, *a, *c, m]
            preds[g] = [names[-11]] if b else []
            preds.update({a[0]: [g], a[1]: [a[0]], a[2]: [a[0]], a[3]: [a[1], a[2]], c[0]: [g], c[1]: [c[0]],
                          c[2]: [c[1]], c[3]: [c[2]], m: [a[3], c[3]]})
            conditions[a[0]] = "amount > 100"
    else:
        names, pairs, _ = random_dag(n, 0, window=32)
        preds = {name: [] for name in names}
        for a, b in pairs:
            preds[b].append(a)
    position = {name: i for i, name in enumerate(names)}
    steps = []
    for i, name in enumerate(names):
        step: dict[str, Any] = {"id": name, "depends_on": preds[name]}
        if name in conditions:
            step["condition"] = conditions[name]
        if shape == "gateways" and i % 10 == 0:
            step["type"] = "gateway"
        elif i % 100 == 99:
            step.update(type="human", form_schema={"type": "object", "properties": {f"ok_{name}": {"type": "boolean"}}})
        else:
            step.update(type="machine", task_type="data.set", config={"values": {f"v_{name}": i}})
            if preds[name] and not (shape == "gateways" and position[preds[name][-1]] % 10 == 0):
                # From the predecessor declared last (a gateway produces nothing to map): the mapping is
                # checked against what runs before the step.
                source = preds[name][-1]
                field = f"ok_{source}" if position[source] % 100 == 99 else f"v_{source}"
                step["input_mappings"] = [{"from_step": source, "from_field": field, "to_field": "x"}]
        steps.append(step)
    return json.dumps({"name": f"bench_{n}", "steps": steps, "edges": edges})


def register_path(text: str, registry: Any) -> list[Any]:
    """What DefinitionService.register checks before it stores anything, without the early exit on a
    first issue (at 10,000 steps the step cap is one, and the rest is still what this measures).

    The body is read with the API's bounded reader; a body over its value count (the 10,000-step
    definitions, which the API refuses at that point) with plain json.loads, so the rest still runs."""
    try:
        data = loads_json(text)
    except TooDeep:
        data = json.loads(text)
    with collector_paused():  # as check() does
        definition, issues = parse_definition(data)
        assert definition is not None, issues
        issues = validate_definition(definition, registry)
        asl = compile_definition(definition, revision_of(definition))
        return issues + size_issues(asl, BINDINGS)


def reference_ancestry_check(definition: Definition) -> int:
    """The check registration used to run (the baseline): a graph walk from every step with input mappings,
    and a linear search of the steps for each mapped step. Returns how many mappings are upstream."""
    graph = build_graph(definition)
    upstream_count = 0
    for step in definition.steps:
        if not isinstance(step, MachineStep):
            continue
        upstream = graph.ancestors(step.id)
        for mapping in step.input_mappings:
            if mapping.from_step in upstream:
                definition.step(mapping.from_step)  # its declared outputs are read next
                upstream_count += 1
    return upstream_count


def current_ancestry_check(definition: Definition, registry: Any) -> int:
    """The same question through what validation runs now (core/upstream.py): one topological pass."""
    graph = build_graph(definition)
    context = Upstream(definition, graph, graph.topological_order() or [], registry)
    upstream_count = 0
    for step in definition.steps:
        if isinstance(step, MachineStep):
            for mapping in step.input_mappings:
                if context.runs_before(mapping.from_step, step.id):
                    context.outputs(mapping.from_step)
                    upstream_count += 1
    return upstream_count


def cpu_ms(fn: Callable[[], Any], runs: int) -> float:
    """Median CPU time of `runs` calls, with a collection before each so one run does not pay for another."""
    times = []
    for _ in range(runs):
        gc.collect()
        started = time.process_time()
        fn()
        times.append((time.process_time() - started) * 1000)
    return statistics.median(times)


def run(sizes: Sequence[int] = SIZES, shapes: Sequence[str] = SHAPES) -> dict[str, Any]:
    registry = default_registry()
    rows = []
    for n in sizes:
        runs = RUNS.get(n, 3)
        for shape in shapes:
            text = definition_text(shape, n)
            definition, _ = parse_definition(json.loads(text))
            assert definition is not None
            issues = register_path(text, registry)
            # Only the caps may be reported (at 10,000 steps: steps and size); anything else means the
            # benchmark's input is wrong.
            allowed = {"too_many_steps", "too_large"} if n > 1_000 else set()
            assert {i.code for i in issues} <= allowed, [i.as_dict() for i in issues[:3]]
            old, new = reference_ancestry_check(definition), current_ancestry_check(definition, registry)
            assert old == new, (old, new)
            asl = compile_definition(definition, revision_of(definition))
            rows.append({
                "n": n, "shape": shape, "runs": runs,
                "register_ms": cpu_ms(lambda t=text: register_path(t, registry), runs),
                "compile_ms": cpu_ms(lambda d=definition: compile_definition(d, "bench"), runs),
                "ancestry_old_ms": cpu_ms(lambda d=definition: reference_ancestry_check(d), max(1, runs // 2)),
                "ancestry_new_ms": cpu_ms(lambda d=definition: current_ancestry_check(d, registry), runs),
                "bytes_unbound": compiled_size(asl) / n, "bytes_bound": deployed_size(asl, BINDINGS) / n,
                "bytes_shared": deployed_size(compile_definition(definition, revision_of(definition), SHARED),
                                              BINDINGS) / n,
            })
    examples = []
    for name, data in sorted(bundled().items()):
        definition = Definition.model_validate(data)
        asl = compile_definition(definition, revision_of(definition))
        steps = len(definition.steps)
        shared = compile_definition(definition, revision_of(definition), SHARED)
        examples.append({"name": name, "steps": steps, "bytes_unbound": compiled_size(asl) / steps,
                         "bytes_bound": deployed_size(asl, BINDINGS) / steps,
                         "bytes_shared": deployed_size(shared, BINDINGS) / steps})
    return {"rows": rows, "examples": examples}


def _verdict(ok: bool) -> str:
    return "met" if ok else "missed"


def report_markdown(result: dict[str, Any]) -> str:
    arn = BINDINGS[FUNCTIONS[0].placeholder]
    lines = [
        "## Registration (`POST /definitions` before anything is stored)",
        "",
        "*register* is the pure path of `DefinitionService.register`: JSON text -> `parse_definition` ->",
        "`validate_definition` -> `compile_definition` -> `size_issues` on the ASL with the function ARNs",
        "(with the cyclic garbage collector paused, as `check` pauses it),",
        f"bound (`{arn}` and its sibling, {len(arn)} characters). CPU time, median of {RUNS[1_000]} runs at",
        f"1,000 steps and {RUNS[10_000]} at 10,000. The API caps definitions at 1,000 steps (one run's history)",
        "and bodies at 50,000 JSON values, so at 10,000 the body is read with plain `json.loads`, validation",
        "reports the step cap as its one issue, and the figure is the pure core's cost. Steps are",
        "`data.set` machine steps, each mapping an input from a predecessor, and a human step every 100.",
        "*ancestry before* is the per-step ancestor walk validation used to run (`reference_ancestry_check`",
        "in bench/register_bench.py, timed here on the same definitions); *after* is the one topological",
        "pass of ancestor bitsets it runs now. Targets: register <= 100 ms at 1,000 steps, <= 1 s at 10,000.",
        "",
        "| steps | shape | register ms | target | compile ms | ancestry before ms | ancestry after ms | verdict |",
        "|---:|:--|---:|---:|---:|---:|---:|:-:|",
    ]
    for r in result["rows"]:
        target = TARGET_MS[r["n"]]
        lines.append(
            f"| {r['n']:,} | {r['shape']} | {r['register_ms']:.0f} | {target:,.0f} | {r['compile_ms']:.0f} | "
            f"{r['ancestry_old_ms']:.0f} | {r['ancestry_new_ms']:.1f} | {_verdict(r['register_ms'] <= target)} |")
    lines += [
        "",
        "ASL bytes per step: compact JSON as sent to Step Functions, unbound (`${...}` placeholders, as",
        f"committed in statemachines/) and bound to the ARNs above. Target: <= {BYTES_TARGET:.0f} bytes per step bound.",
        f"Step Functions takes at most {MAX_DEFINITION_BYTES:,} bytes; registration refuses a larger bound",
        "definition with `too_large`. Every Lambda-backed state costs about 90 bytes for its function ARN, 145",
        "for the Lambda service retrier and 140 for its payload, of which 100 are the same in every state",
        "(workflow, revision, start input, execution). *context shared* is `CompileOptions(share_context=True)`:",
        "the first state assigns those to a workflow variable the others read. It is not what registration",
        "deploys (the verdict is on the default): moto and LocalStack read JSONPath variables only through",
        "JSONata, which neither has offline (stepflow_local/moto_variables.py fills the gap for moto), and",
        "whether RedriveExecution restores variables, as retrying a failed instance needs, is to be checked",
        "on AWS first (docs/architecture.md, \"Compiled size\").",
        "",
        "| definition | steps | bytes/step unbound | bytes/step bound | verdict | bound, context shared |",
        "|:--|---:|---:|---:|:-:|---:|",
    ]
    for r in result["rows"]:
        if r["n"] == SIZES[0]:
            lines.append(f"| {r['shape']} (bench) | {r['n']:,} | {r['bytes_unbound']:.0f} | {r['bytes_bound']:.0f} | "
                         f"{_verdict(r['bytes_bound'] <= BYTES_TARGET)} | {r['bytes_shared']:.0f} |")
    for e in result["examples"]:
        lines.append(f"| {e['name']} (bundled example) | {e['steps']} | {e['bytes_unbound']:.0f} | "
                     f"{e['bytes_bound']:.0f} | {_verdict(e['bytes_bound'] <= BYTES_TARGET)} | {e['bytes_shared']:.0f} |")
    return "\n".join(lines) + "\n"
