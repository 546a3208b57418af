"""The kept store's stream reader (stepflow_local/streams.py) converges when DynamoDB stops honouring an
iterator it kept: it reopens the shard where its checkpoint says, and nothing is lost or handed twice."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber

from stepflow_local.streams import KeptStreamReader

ARN = "arn:aws:dynamodb:ddblocal:000000000000:table/events/stream/2026-01-01T00:00:00.000"
SHARD = "shardId-00000001796042478320-00ca6e8b"


def _seq(number: int) -> str:
    return f"{number:021d}"


def _record(number: int) -> dict:
    return {"eventID": str(number), "eventName": "INSERT", "dynamodb": {"SequenceNumber": _seq(number), "Keys": {}}}


@pytest.fixture
def streams():
    client = boto3.client("dynamodbstreams", region_name="us-east-1", aws_access_key_id="x",
                          aws_secret_access_key="x")
    with Stubber(client) as stubber:
        yield client, stubber
        stubber.assert_no_pending_responses()


def _describe(stubber: Stubber) -> None:
    stubber.add_response("describe_stream", {"StreamDescription": {"Shards": [{"ShardId": SHARD}]}},
                         {"StreamArn": ARN})


@pytest.mark.parametrize("code", ["TrimmedDataAccessException", "ExpiredIteratorException"])
def test_an_iterator_no_longer_honoured_is_reopened_after_the_checkpoint(streams, tmp_path, code):
    client, stubber = streams
    checkpoint = tmp_path / "streams.json"
    reader = KeptStreamReader(client, checkpoint)
    # First poll: from the shard's start, two records, then an empty page whose iterator is kept.
    _describe(stubber)
    stubber.add_response("get_shard_iterator", {"ShardIterator": "it-0"},
                         {"StreamArn": ARN, "ShardId": SHARD, "ShardIteratorType": "TRIM_HORIZON"})
    stubber.add_response("get_records", {"Records": [_record(1), _record(2)], "NextShardIterator": "it-1"},
                         {"ShardIterator": "it-0", "Limit": 1000})
    stubber.add_response("get_records", {"Records": [], "NextShardIterator": "it-2"},
                         {"ShardIterator": "it-1", "Limit": 1000})
    assert [r["eventID"] for r in reader.take(ARN)] == ["1", "2"]
    # Second poll: the kept iterator is refused; the reader reopens after "2" and reads "3".
    _describe(stubber)
    stubber.add_client_error("get_records", service_error_code=code, http_status_code=400,
                             expected_params={"ShardIterator": "it-2", "Limit": 1000})
    stubber.add_response("get_shard_iterator", {"ShardIterator": "it-3"},
                         {"StreamArn": ARN, "ShardId": SHARD, "ShardIteratorType": "AFTER_SEQUENCE_NUMBER",
                          "SequenceNumber": _seq(2)})
    stubber.add_response("get_records", {"Records": [_record(3)], "NextShardIterator": "it-4"},
                         {"ShardIterator": "it-3", "Limit": 1000})
    stubber.add_response("get_records", {"Records": [], "NextShardIterator": "it-5"},
                         {"ShardIterator": "it-4", "Limit": 1000})
    assert [r["eventID"] for r in reader.take(ARN)] == ["3"]
    assert json.loads(checkpoint.read_text()) == {SHARD: _seq(3)}


def test_a_refusal_on_a_fresh_iterator_is_raised_not_retried_forever(streams, tmp_path):
    client, stubber = streams
    reader = KeptStreamReader(client, tmp_path / "streams.json")
    _describe(stubber)
    stubber.add_response("get_shard_iterator", {"ShardIterator": "it-0"},
                         {"StreamArn": ARN, "ShardId": SHARD, "ShardIteratorType": "TRIM_HORIZON"})
    stubber.add_client_error("get_records", service_error_code="TrimmedDataAccessException", http_status_code=400)
    stubber.add_response("get_shard_iterator", {"ShardIterator": "it-1"},
                         {"StreamArn": ARN, "ShardId": SHARD, "ShardIteratorType": "TRIM_HORIZON"})
    stubber.add_client_error("get_records", service_error_code="TrimmedDataAccessException", http_status_code=400)
    with pytest.raises(client.exceptions.ClientError):
        reader.take(ARN)  # the pump logs it and polls again later (a batch that failed stays first in line)


def test_other_errors_are_not_swallowed(streams, tmp_path):
    client, stubber = streams
    reader = KeptStreamReader(client, tmp_path / "streams.json")
    _describe(stubber)
    stubber.add_response("get_shard_iterator", {"ShardIterator": "it-0"},
                         {"StreamArn": ARN, "ShardId": SHARD, "ShardIteratorType": "TRIM_HORIZON"})
    stubber.add_client_error("get_records", service_error_code="InternalServerError", http_status_code=500)
    with pytest.raises(client.exceptions.ClientError):
        reader.take(ARN)
