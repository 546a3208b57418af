"""The local service's data directory (stepflow_local/durable.py, dynamodb_local.py): tables kept and upgraded in
place, SQLite's write-ahead log, and no DynamoDB Local of a crashed server left holding the database."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from chalicelib.resources import Index, Table
from stepflow_local.durable import _stop_leftover
from stepflow_local.dynamodb_local import DynamoDBLocalProcess, ensure_tables, use_write_ahead_log
from tests.dynamodb_local import ROOT, DynamoDBLocal


@pytest.fixture(scope="module")
def dynamodb():
    server = DynamoDBLocal()
    yield server.client()
    server.stop()


def test_missing_tables_are_created_and_kept_ones_gain_what_a_newer_version_declares(dynamodb):
    old = Table("T", "kept", "id", indexes=(Index("by_a", "a"),))
    new = Table("T", "kept", "id", indexes=(Index("by_a", "a"), Index("by_b", "b", "c")))
    other = Table("U", "other", "id", ttl_attribute="expires")
    assert ensure_tables(dynamodb, [old.create_table_request("kept")], {}) == ["kept"]
    dynamodb.put_item(TableName="kept", Item={"id": {"S": "1"}, "a": {"S": "x"}, "b": {"S": "y"}, "c": {"S": "z"}})

    request = new.create_table_request("kept")
    request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    created = ensure_tables(dynamodb, [request, other.create_table_request("other")], {"other": "expires"})

    assert created == ["other"]
    table = dynamodb.describe_table(TableName="kept")["Table"]
    assert sorted(i["IndexName"] for i in table["GlobalSecondaryIndexes"]) == ["by_a", "by_b"]
    assert table["StreamSpecification"]["StreamEnabled"] is True
    # The kept item is still there and the new index serves it.
    found = dynamodb.query(TableName="kept", IndexName="by_b", KeyConditionExpression="b = :b",
                           ExpressionAttributeValues={":b": {"S": "y"}})["Items"]
    assert [i["id"]["S"] for i in found] == ["1"]
    ttl = dynamodb.describe_time_to_live(TableName="other")["TimeToLiveDescription"]
    assert ttl["AttributeName"] == "expires"
    assert ensure_tables(dynamodb, [request], {}) == []  # nothing left to do


def test_the_database_file_is_put_in_write_ahead_log_mode(tmp_path):
    database = tmp_path / "shared-local-instance.db"
    assert use_write_ahead_log(database)
    connection = sqlite3.connect(database)
    try:
        assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # stored in the file
    finally:
        connection.close()


def _stand_in(tmp_path: Path, name: str, *args: str) -> subprocess.Popen[bytes]:
    """A long-lived process whose command line reads `name args...` (as a JVM's would)."""
    return subprocess.Popen(["bash", "-c", f'exec -a {name} "{sys.executable}" -c "import time; time.sleep(600)" "$@"',
                             "stand-in", *args])


def _gone(process: subprocess.Popen[bytes], timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while process.poll() is None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_dynamodb_local_left_by_a_crashed_server_is_stopped_and_nothing_else_is(tmp_path):
    database = tmp_path / "dynamodb"
    pid_file = tmp_path / "dynamodb.pid"
    leftover = _stand_in(tmp_path, "java", "-dbPath", str(database))
    stranger = _stand_in(tmp_path, "java", "-dbPath", str(tmp_path / "elsewhere"))
    try:
        # Only a process whose command line shows it: a pid reused by another program is left alone.
        wait_for_cmdline = time.monotonic() + 20
        while b"java" not in Path(f"/proc/{stranger.pid}/cmdline").read_bytes().split(b"\0")[0]:
            assert time.monotonic() < wait_for_cmdline
            time.sleep(0.05)
        pid_file.write_text(f"{stranger.pid}\n")
        _stop_leftover(pid_file, database)
        assert stranger.poll() is None

        while b"java" not in Path(f"/proc/{leftover.pid}/cmdline").read_bytes().split(b"\0")[0]:
            assert time.monotonic() < wait_for_cmdline
            time.sleep(0.05)
        pid_file.write_text(f"{leftover.pid}\n")
        _stop_leftover(pid_file, database)
        assert _gone(leftover)
    finally:
        for process in (leftover, stranger):
            if process.poll() is None:
                process.kill()
                process.wait()


def _listening_addresses(port: int) -> set[str]:
    """Local addresses of the LISTEN sockets on `port`, from /proc/net/tcp and tcp6 (hex, as the kernel shows them)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A" and int(hex_port, 16) == port:
                found.add(address)
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/net")
def test_the_kept_store_listens_on_loopback_only(tmp_path):
    server = DynamoDBLocalProcess(tmp_path / "dynamodb", tmp_path / "dynamodb.log").start()
    try:
        server.wait_ready()
        assert server.loopback
        # 127.0.0.1, as IPv4 (0100007F) or IPv4-mapped IPv6; never 0.0.0.0 or ::.
        assert _listening_addresses(server.port) <= {"0100007F", "0000000000000000FFFF00000100007F"}
        assert _listening_addresses(server.port)
    finally:
        server.stop()


RUNTIME_SCRIPT = """
import sys
from stepflow_local.runtime import LocalRuntime

data, step = sys.argv[1], sys.argv[2]
with LocalRuntime(data_dir=data) as runtime:
    ddb, table = runtime.client("dynamodb"), runtime.table_names["definitions"]
    key = {"name": {"S": "kept"}, "sk": {"S": "latest"}}
    if step == "write":
        ddb.put_item(TableName=table, Item={**key, "kind": {"S": "definition"}})
    print("found" if "Item" in ddb.get_item(TableName=table, Key=key) else "missing")
    if step == "reset":
        runtime.reset()
        print("found" if "Item" in ddb.get_item(TableName=table, Key=key) else "missing")
"""


def test_a_runtime_on_a_data_directory_keeps_items_across_restarts_and_reset_forgets_them(tmp_path):
    def run(step: str) -> list[str]:
        done = subprocess.run([sys.executable, "-c", RUNTIME_SCRIPT, str(tmp_path / "data"), step], cwd=ROOT,
                              capture_output=True, text=True, timeout=180, check=False)
        assert done.returncode == 0, done.stderr[-3000:]
        return [line for line in done.stdout.splitlines() if line in ("found", "missing")]

    assert run("write") == ["found"]
    # A new process and a new DynamoDB Local find the item kept; reset() then empties the kept tables,
    # as it does the in-memory ones.
    assert run("reset") == ["found", "missing"]


def test_a_kept_stream_is_read_on_from_its_checkpoint_after_a_restart(dynamodb, tmp_path):
    """The event log's stream on a kept store reaches the lifecycle-event handler through the Streams API
    (stepflow_local/streams.py KeptStreamReader): each record once, and a reader made again (a restarted
    server) goes on after the last record it took, not from the start and not from now."""
    import boto3

    from stepflow_local.streams import KeptStreamReader

    table = Table("E", "kept_events", "id")
    request = table.create_table_request("kept_events")
    request["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": "NEW_IMAGE"}
    ensure_tables(dynamodb, [request], {})
    stream_arn = dynamodb.describe_table(TableName="kept_events")["Table"]["LatestStreamArn"]
    streams = boto3.client("dynamodbstreams", endpoint_url=dynamodb.meta.endpoint_url, region_name="us-east-1",
                           aws_access_key_id="local", aws_secret_access_key="local")
    checkpoint = tmp_path / "streams.json"

    def put(item_id: str) -> None:
        dynamodb.put_item(TableName="kept_events", Item={"id": {"S": item_id}})

    def ids(records: list[dict]) -> list[str]:
        return [r["dynamodb"]["NewImage"]["id"]["S"] for r in records]

    put("a")
    put("b")
    reader = KeptStreamReader(streams, checkpoint)
    assert ids(reader.take(stream_arn)) == ["a", "b"]
    assert reader.take(stream_arn) == []
    put("c")
    assert ids(reader.take(stream_arn)) == ["c"]

    put("d")  # written while no server reads the stream
    restarted = KeptStreamReader(streams, checkpoint)
    assert ids(restarted.take(stream_arn)) == ["d"]
