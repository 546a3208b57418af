"""Where a pinned start goes: the one place that differs between AWS and the local runtime.

Deployed (QualifiedRouting): Step Functions runs versions and aliases itself. A revision starts with its
version's ARN, an alias with the alias's ARN, and Step Functions picks the route by the alias's weights;
the revision it picked is read back from the execution (DescribeExecution's stateMachineVersionArn).
Local (EmulatedRouting): the emulator cannot start a version or an alias ARN, so Stepflow picks the route
itself with the same weights (an injectable random source) and starts a state machine made, once, from
that revision's own definition. Either way the instance records the revision it runs.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from chalicelib.core.definition_keys import name_of, revision_key
from chalicelib.errors import Conflict

TOTAL_WEIGHT = 100


@dataclass(frozen=True)
class Route:
    """One revision an alias (or a pin) sends starts to, with its share of them in percent."""

    number: int
    revision: str  # the content id
    version: str | None  # the definition's own version label
    version_arn: str | None  # the Step Functions version it was published as (None: registered before versions)
    weight: int = TOTAL_WEIGHT

    def as_dict(self) -> dict[str, Any]:
        return {"revision": self.number, "revision_id": self.revision, "version": self.version,
                "version_arn": self.version_arn, "weight": self.weight}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Route:
        return cls(int(data["revision"]), data["revision_id"], data.get("version"), data.get("version_arn"),
                   int(data.get("weight", TOTAL_WEIGHT)))


@dataclass(frozen=True)
class Target:
    """What StartExecution gets, and the route it runs (None when Step Functions picks it: an alias)."""

    arn: str
    route: Route | None


def pick(routes: Sequence[Route], rng: random.Random) -> Route:
    """A route, each with the probability of its weight (the weights sum to 100)."""
    point = rng.randrange(TOTAL_WEIGHT)
    for route in routes:
        if point < route.weight:
            return route
        point -= route.weight
    return routes[-1]


class QualifiedRouting:
    """Deployed: versions and aliases of the workflow's state machine, started by their qualified ARNs."""

    emulated = False

    def __init__(self, machines: Any):
        self._machines = machines

    def target(self, workflow: str, machine_arn: str, routes: Sequence[Route], alias: str | None) -> Target:
        self.check(workflow, routes)
        if alias is not None and len(routes) > 1:
            return Target(self._machines.alias_arn(machine_arn, alias), None)  # Step Functions picks by weight
        # One route (a revision, or an alias that sends everything to one): its version, no pick to learn.
        return Target(str(routes[0].version_arn), routes[0])

    def check(self, workflow: str, routes: Sequence[Route]) -> None:
        """Every route needs a published version for Step Functions to run it."""
        for route in routes:
            if not route.version_arn:
                raise Conflict(f"revision {route.number} of '{name_of(workflow)}' was registered before Stepflow published "
                               "state machine versions: restore it (POST /definitions/{name}/revisions/"
                               f"{route.number}/restore) and pin the new revision")

    def sync_alias(self, machine_arn: str, alias: str, routes: Sequence[Route]) -> None:
        self._machines.point_alias(machine_arn, alias, [(str(r.version_arn), r.weight) for r in routes])

    def chosen(self, execution_arn: str) -> str | None:
        """The version ARN Step Functions started for an alias (None if it does not say)."""
        execution = self._machines.describe(execution_arn)
        return execution.get("stateMachineVersionArn")


class EmulatedRouting:
    """Local: Stepflow picks the route and starts that revision's own state machine."""

    emulated = True

    def __init__(self, machine_for: Callable[[str, str, Route], str], rng: random.Random | None = None):
        # (workflow, its state machine's ARN, route) -> the ARN of a state machine running that revision
        self._machine_for = machine_for
        self.rng = rng or random.Random()  # replaceable: a test seeds it

    def target(self, workflow: str, machine_arn: str, routes: Sequence[Route], alias: str | None) -> Target:
        route = pick(routes, self.rng) if alias is not None else routes[0]
        return Target(self._machine_for(workflow, machine_arn, route), route)

    def check(self, workflow: str, routes: Sequence[Route]) -> None:
        """Any stored revision runs: its state machine is made from its definition."""

    def sync_alias(self, machine_arn: str, alias: str, routes: Sequence[Route]) -> None:
        """Nothing to keep in step: starts never go through an alias here."""

    def chosen(self, execution_arn: str) -> str | None:
        return None


class RevisionMachines:
    """Local: a state machine per revision (named after its content id and the definition's key), made
    from the revision's own definition on its first start and found again after that (one
    DescribeStateMachine). `workflow` is the definition's key (core/definition_keys.py)."""

    def __init__(self, definitions: Any, machines: Any, placeholders: Callable[[], dict[str, str]]):
        self._definitions = definitions
        self._machines = machines
        self._placeholders = placeholders
        self._lock = threading.Lock()

    def __call__(self, workflow: str, machine_arn: str, route: Route) -> str:
        from chalicelib.core.compiler import CompileOptions, compile_definition
        from chalicelib.core.model import Definition
        from chalicelib.core.sizing import bind_placeholders

        key = revision_key(workflow, route.revision)  # unique per scope and revision, at most 80 characters
        arn = f"{machine_arn.rsplit(':', 1)[0]}:{self._machines.machine_name(key)}"
        if self._machines.exists(arn):
            return arn
        body = self._definitions.get_revision(workflow, route.revision)["body"]
        # Its steps load their definition by the key, as the workflow's own state machine's do.
        options = CompileOptions(workflow=workflow) if workflow != name_of(workflow) else CompileOptions()
        asl = bind_placeholders(compile_definition(Definition.model_validate(body), route.revision, options),
                                self._placeholders())
        with self._lock:  # two first starts of one revision make one state machine
            return str(self._machines.ensure(key, asl))
