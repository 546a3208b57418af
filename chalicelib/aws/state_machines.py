"""Step Functions adapter: state machines and executions, AWS errors translated to ours."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from chalicelib.errors import Conflict, NotFound, UpstreamError

if TYPE_CHECKING:  # a development dependency only: the Lambda package has no stubs
    from mypy_boto3_stepfunctions import SFNClient
    from mypy_boto3_stepfunctions.type_defs import DescribeExecutionOutputTypeDef, HistoryEventTypeDef


class StateMachines:
    def __init__(self, sfn: SFNClient, role_arn: str, prefix: str):
        self._sfn = sfn
        self._role_arn = role_arn
        self._prefix = prefix

    def machine_name(self, workflow: str) -> str:
        """`workflow`: the definition's key (core/definition_keys.py), which is its name when unscoped."""
        from chalicelib.core.definition_keys import machine_name

        return machine_name(self._prefix, workflow)

    def arn_for(self, workflow: str) -> str | None:
        name = self.machine_name(workflow)
        paginator = self._sfn.get_paginator("list_state_machines")
        for page in paginator.paginate():
            for machine in page["stateMachines"]:
                if machine["name"] == name:
                    return machine["stateMachineArn"]
        return None

    def ensure(self, workflow: str, asl: dict[str, Any], known_arn: str | None = None) -> str:
        """Creates the workflow's state machine, or updates it to this definition."""
        definition = json.dumps(asl, separators=(",", ":"))
        arn = known_arn or self.arn_for(workflow)
        try:
            if arn:
                self._sfn.update_state_machine(stateMachineArn=arn, definition=definition, roleArn=self._role_arn)
                return arn
            created = self._sfn.create_state_machine(
                name=self.machine_name(workflow), definition=definition, roleArn=self._role_arn, type="STANDARD"
            )
            return created["stateMachineArn"]
        except ClientError as exc:
            raise UpstreamError(f"Step Functions refused the state machine: {_code(exc)}") from exc

    def publish(self, workflow: str, asl: dict[str, Any], known_arn: str | None = None) -> tuple[str, str | None]:
        """Creates or updates the workflow's state machine to this definition and publishes it as a version,
        in the one call (publish=True): (state machine ARN, version ARN)."""
        definition = json.dumps(asl, separators=(",", ":"))
        arn = known_arn or self.arn_for(workflow)
        try:
            if arn:
                updated = self._sfn.update_state_machine(stateMachineArn=arn, definition=definition,
                                                         roleArn=self._role_arn, publish=True)
                return arn, updated.get("stateMachineVersionArn")
            created = self._sfn.create_state_machine(
                name=self.machine_name(workflow), definition=definition, roleArn=self._role_arn, type="STANDARD",
                publish=True)
            return created["stateMachineArn"], created.get("stateMachineVersionArn")
        except ClientError as exc:
            raise UpstreamError(f"Step Functions refused the state machine: {_code(exc)}") from exc

    def exists(self, machine_arn: str) -> bool:
        try:
            self._sfn.describe_state_machine(stateMachineArn=machine_arn)
        except ClientError as exc:
            if _code(exc) == "StateMachineDoesNotExist":
                return False
            raise UpstreamError(f"Step Functions: {_code(exc)}") from exc
        return True

    @staticmethod
    def alias_arn(machine_arn: str, alias: str) -> str:
        """An alias's ARN: the state machine's, qualified by the alias name (Step Functions' own form)."""
        return f"{unqualified(machine_arn)}:{alias}"

    def point_alias(self, machine_arn: str, alias: str, routes: list[tuple[str, int]]) -> str:
        """Sets the alias's routing to these (version ARN, weight) pairs, creating the alias on first use."""
        routing: Any = [{"stateMachineVersionArn": arn, "weight": weight} for arn, weight in routes]
        try:
            try:
                self._sfn.update_state_machine_alias(stateMachineAliasArn=self.alias_arn(machine_arn, alias),
                                                     routingConfiguration=routing)
                return self.alias_arn(machine_arn, alias)
            except ClientError as exc:
                if _code(exc) != "ResourceNotFound":
                    raise
            created = self._sfn.create_state_machine_alias(name=alias, routingConfiguration=routing)
            return created["stateMachineAliasArn"]
        except ClientError as exc:
            raise UpstreamError(f"Step Functions refused the alias: {_code(exc)}") from exc
        except BotoCoreError as exc:
            raise UpstreamError(f"Step Functions could not be reached: {type(exc).__name__}") from exc

    @staticmethod
    def execution_arn(machine_arn: str, name: str) -> str:
        """The ARN an execution of this state machine with this name has (or will have): Step Functions
        derives it, so a start whose answer was lost can be looked up by name. An execution started
        through a version or an alias is named after the state machine itself (no qualifier)."""
        return f"{unqualified(machine_arn).replace(':stateMachine:', ':execution:', 1)}:{name}"

    def start(self, machine_arn: str, name: str, payload: dict[str, Any]) -> str:
        """StartExecution; with the same name and input it is idempotent while that execution is open."""
        try:
            result = self._sfn.start_execution(stateMachineArn=machine_arn, name=name, input=json.dumps(payload))
        except ClientError as exc:
            if _code(exc) == "ExecutionAlreadyExists":
                raise Conflict(f"an execution named '{name}' already exists") from exc
            raise UpstreamError(f"Step Functions could not start the execution: {_code(exc)}") from exc
        except BotoCoreError as exc:
            raise UpstreamError(f"Step Functions could not be reached: {type(exc).__name__}") from exc
        return result["executionArn"]

    def find(self, execution_arn: str) -> DescribeExecutionOutputTypeDef | None:
        """DescribeExecution, or None when no such execution exists."""
        try:
            return self.describe(execution_arn)
        except NotFound:
            return None

    def describe(self, execution_arn: str) -> DescribeExecutionOutputTypeDef:
        try:
            return self._sfn.describe_execution(executionArn=execution_arn)
        except ClientError as exc:
            if _code(exc) == "ExecutionDoesNotExist":
                raise NotFound("execution not found") from exc
            raise UpstreamError(f"Step Functions: {_code(exc)}") from exc
        except BotoCoreError as exc:
            raise UpstreamError(f"Step Functions could not be reached: {type(exc).__name__}") from exc

    def history(self, execution_arn: str) -> list[HistoryEventTypeDef]:
        """Every event of the execution; NotFound when it does not exist (past retention, or lost with a
        local runtime's restart)."""
        events: list[HistoryEventTypeDef] = []
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": 1000}
            if token:
                kwargs["nextToken"] = token
            try:
                page = self._sfn.get_execution_history(**kwargs)
            except ClientError as exc:
                if _code(exc) == "ExecutionDoesNotExist":
                    raise NotFound("execution not found") from exc
                raise
            events.extend(page["events"])
            token = page.get("nextToken")
            if not token:
                return events

    def history_page(self, execution_arn: str, token: str | None,
                     limit: int) -> tuple[list[HistoryEventTypeDef], str | None]:
        """One page of the execution history, oldest first, and the token of the next (None at the end)."""
        kwargs: dict[str, Any] = {"executionArn": execution_arn, "maxResults": limit}
        if token:
            kwargs["nextToken"] = token
        try:
            page = self._sfn.get_execution_history(**kwargs)
        except ClientError as exc:
            if _code(exc) == "ExecutionDoesNotExist":
                raise NotFound("execution not found") from exc
            if _code(exc) in ("InvalidToken", "ValidationException"):
                raise InvalidToken(_code(exc)) from exc
            raise UpstreamError(f"Step Functions: {_code(exc)}") from exc
        except BotoCoreError as exc:
            raise UpstreamError(f"Step Functions could not be reached: {type(exc).__name__}") from exc
        return page["events"], page.get("nextToken")

    def redrive(self, execution_arn: str) -> None:
        """Restarts a failed execution from its failed state (AWS only; within 14 days of the failure)."""
        try:
            self._sfn.redrive_execution(executionArn=execution_arn)
        except (ClientError, NotImplementedError) as exc:
            # Not redrivable (too old, a Map run, limits), or an emulator without the call.
            raise RedriveUnavailable(str(exc)) from exc

    def stop(self, execution_arn: str, error: str, cause: str) -> None:
        """StopExecution; an execution that does not exist (lost with a local runtime's restart) has
        nothing left to stop."""
        try:
            self._sfn.stop_execution(executionArn=execution_arn, error=error, cause=cause[:32768])
        except ClientError as exc:
            if _code(exc) == "ExecutionDoesNotExist":
                return
            raise UpstreamError(f"Step Functions could not stop the execution: {_code(exc)}") from exc
        except BotoCoreError as exc:
            raise UpstreamError(f"Step Functions could not be reached: {type(exc).__name__}") from exc

    def send_success(self, token: str, output: dict[str, Any]) -> None:
        self._sfn.send_task_success(taskToken=token, output=json.dumps(output))

    def send_failure(self, token: str, error: str, cause: str) -> None:
        self._sfn.send_task_failure(taskToken=token, error=error, cause=cause)


class InvalidToken(Exception):
    """Step Functions refused a history page token."""


class RedriveUnavailable(Exception):
    """Step Functions cannot redrive this execution; the caller continues it another way."""


def unqualified(machine_arn: str) -> str:
    """A state machine ARN without its version or alias qualifier (arn:aws:states:region:account:stateMachine:name)."""
    return ":".join(machine_arn.split(":")[:7])


def _code(exc: ClientError) -> str:
    return exc.response.get("Error", {}).get("Code", "Unknown")
