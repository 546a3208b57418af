"""Delivers DynamoDB stream records to the app's `@app.on_dynamodb_record` handlers locally, as Lambda's
event source mapping does on AWS.

moto records a table's changes in its stream shard (puts, updates, deletes and transactions; a canceled
transaction's records leave with it, stepflow_local/moto_transactions.py) but hands them only to Lambda
functions it runs itself, and keeps every record forever. Each poll takes the records the shard holds
(trimming it, so memory follows what is not delivered yet), then hands them to each handler of the table
in order, in batches of the handler's batch_size, shaped as Lambda hands them over. A batch whose handler
raised stays first in line for the next poll, as Lambda retries a failed batch and holds the shard behind
it. A table whose stream no handler reads is trimmed all the same.
"""

from __future__ import annotations

import copy
import importlib
import json
import logging
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from stepflow_local.moto_patches import DYNAMODB_LOCK
from stepflow_local.runtime import LocalRuntime

LOG = logging.getLogger("stepflow_local")
REOPEN_ON = frozenset({"TrimmedDataAccessException", "ExpiredIteratorException"})


def stream_handlers(app: Any, runtime: LocalRuntime) -> dict[str, list[tuple[Any, int]]]:
    """Table.name -> [(handler, batch size)] of the app's stream consumers (their stream ARN names the table)."""
    from chalice.app import DynamoDBEventConfig

    by_physical = {physical: name for name, physical in runtime.table_names.items()}
    handlers: dict[str, list[tuple[Any, int]]] = {}
    for source in getattr(app, "event_sources", []):
        if not isinstance(source, DynamoDBEventConfig):
            continue
        physical = source.stream_arn.split(":table/", 1)[-1].split("/stream/", 1)[0]
        if physical not in by_physical:
            LOG.warning("stream consumer %s reads a table this runtime does not have: %s", source.name, physical)
            continue
        module_name, attribute = source.handler_string.rsplit(".", 1)
        handler = getattr(importlib.import_module(module_name), attribute)
        handlers.setdefault(by_physical[physical], []).append((handler, max(1, int(source.batch_size))))
    return handlers


class StreamPump:
    """Hands each table's stream records to its handlers, each record once per handler, in order."""

    def __init__(self, runtime: LocalRuntime, handlers: dict[str, list[tuple[Any, int]]]):
        self._runtime = runtime
        self._handlers = handlers
        self._pending: dict[tuple[str, int], list[dict[str, Any]]] = {}  # (stream ARN, handler) -> records
        self._lock = threading.Lock()

    def poll(self) -> int:
        """Delivers what the streams hold now; how many records were delivered (counted per handler)."""
        with self._lock:
            delivered = 0
            streams = dict(self._runtime.stream_arns)
            # Records of a stream that no longer exists (the runtime was reset) are dropped.
            self._pending = {k: v for k, v in self._pending.items() if k[0] in streams.values()}
            for name, stream_arn in streams.items():
                taken = take_records(self._runtime, name)
                handlers = self._handlers.get(name, [])
                for index, (handler, batch_size) in enumerate(handlers):
                    pending = self._pending.setdefault((stream_arn, index), [])
                    pending += [lambda_record(r, stream_arn, self._runtime.region) for r in taken]
                    while pending:
                        batch = pending[:batch_size]
                        handler({"Records": batch}, None)  # raises: the batch stays first in line
                        del pending[:len(batch)]
                        delivered += len(batch)
            return delivered


def take_records(runtime: LocalRuntime, table: str) -> list[dict[str, Any]]:
    """The records the table's stream holds that were not taken yet: from moto's shard (removed from it:
    moto numbers later records on), or, on a kept store, read from DynamoDB Local's stream."""
    if runtime.store is not None:
        return _kept_reader(runtime).take(runtime.stream_arns[table])
    from moto.dynamodb.models import dynamodb_backends

    physical = runtime.table_names.get(table)
    with DYNAMODB_LOCK:
        found = dynamodb_backends[runtime.account_id][runtime.region].tables.get(physical) if physical else None
        shard = getattr(found, "stream_shard", None)
        if shard is None or not shard.items:
            return []
        records = [copy.deepcopy(r.to_json()) for r in shard.items]
        shard.starting_sequence_number += len(shard.items)
        del shard.items[:]
    return records


class KeptStreamReader:
    """Reads a kept store's streams through the DynamoDB Streams API, as Lambda's event source mapping
    does: each shard from where the last poll stopped, the place checkpointed in the data directory
    after every read, so a restarted server goes on where it stopped (records are handed on at least
    once: a server killed between a handler's run and the checkpoint hands the last batch on again)."""

    def __init__(self, client: Any, checkpoint: Path):
        self._client = client
        self._checkpoint = checkpoint
        self._iterators: dict[str, str] = {}  # shard id -> next iterator
        try:
            self._after: dict[str, str] = json.loads(checkpoint.read_text())
        except (OSError, ValueError):
            self._after = {}  # shard id -> last sequence number taken

    def take(self, stream_arn: str) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        shards = self._client.describe_stream(StreamArn=stream_arn)["StreamDescription"].get("Shards") or []
        for shard in shards:
            shard_id = shard["ShardId"]
            iterator = self._iterators.get(shard_id) or self._start(stream_arn, shard_id)
            reopened = False
            while iterator:
                try:
                    page = self._client.get_records(ShardIterator=iterator, Limit=1000)
                except self._client.exceptions.ClientError as exc:
                    # An iterator DynamoDB no longer honours: expired (15 minutes unused), or, in DynamoDB
                    # Local, one handed out by an empty read whose position a record written within the
                    # same second then falls before ("trimmed"). The checkpoint says what was taken:
                    # reopen there (the shard's start if nothing was) and read on, once per poll.
                    code = exc.response.get("Error", {}).get("Code")
                    if reopened or code not in REOPEN_ON:
                        raise
                    reopened = True
                    iterator = self._start(stream_arn, shard_id)
                    continue
                iterator = page.get("NextShardIterator")
                records += page["Records"]
                if page["Records"]:
                    self._after[shard_id] = page["Records"][-1]["dynamodb"]["SequenceNumber"]
                if not page["Records"]:
                    break
            if iterator:
                self._iterators[shard_id] = iterator
            else:
                self._iterators.pop(shard_id, None)  # a closed shard: its child shards carry on
        if records:
            self._checkpoint.write_text(json.dumps(self._after))
        return records

    def _start(self, stream_arn: str, shard_id: str) -> str:
        if shard_id in self._after:
            return self._client.get_shard_iterator(
                StreamArn=stream_arn, ShardId=shard_id, ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                SequenceNumber=self._after[shard_id])["ShardIterator"]
        return self._client.get_shard_iterator(StreamArn=stream_arn, ShardId=shard_id,
                                               ShardIteratorType="TRIM_HORIZON")["ShardIterator"]


def _kept_reader(runtime: LocalRuntime) -> KeptStreamReader:
    # Kept on the runtime it reads for (its client and data directory), made on the first poll.
    reader: KeptStreamReader | None = getattr(runtime, "_kept_stream_reader", None)
    if reader is None:
        checkpoint = Path(runtime.store.data_dir) / "streams.json"
        reader = KeptStreamReader(runtime.client("dynamodbstreams"), checkpoint)
        setattr(runtime, "_kept_stream_reader", reader)  # noqa: B010 - not an attribute LocalRuntime declares
    return reader


def lambda_record(record: dict[str, Any], stream_arn: str, region: str) -> dict[str, Any]:
    """A moto stream record as Lambda delivers it: the stream's ARN and region, times in epoch seconds."""
    change = dict(record["dynamodb"])
    created = change.get("ApproximateCreationDateTime")
    if isinstance(created, datetime):
        change["ApproximateCreationDateTime"] = created.timestamp()
    return {**record, "awsRegion": region, "eventSourceARN": stream_arn, "dynamodb": change}


def deliver_streams(app: Any, runtime: LocalRuntime, every_seconds: float = 0.5) -> StreamPump:
    """Runs a StreamPump for the app's stream consumers every `every_seconds` while the runtime is up."""
    pump = StreamPump(runtime, stream_handlers(app, runtime))
    runtime.every(every_seconds, pump.poll, name="dynamodb-streams")
    return pump
