"""What a request costs in AWS calls, counted by a botocore hook on the app's clients: each endpoint
within its budget, and no request scans a table."""

from __future__ import annotations

from bench.call_budget import BUDGETS, measure


def test_each_endpoint_stays_within_its_aws_call_budget(api, local_aws):
    results = measure(api, local_aws.region)
    print({name: r["by_operation"] for name, r in results.items()})
    for name, result in results.items():
        assert result["scans"] == 0, (name, result)
        budget = BUDGETS[name]
        if budget is not None:
            assert result["calls"] <= budget, (name, result)
    # What each budgeted request still does: its guard's read, the one deciding write, the one call to
    # Step Functions (and the ARN recorded after a start), the audit record's put; no EventBridge call on any.
    for name in ("complete", "approve"):
        assert results[name]["by_operation"] == {"dynamodb.GetItem": 1, "dynamodb.TransactWriteItems": 1,
                                                 "stepfunctions.SendTaskSuccess": 1, "dynamodb.PutItem": 1}, \
            results[name]
    assert results["start"]["by_operation"] == {"dynamodb.GetItem": 1, "dynamodb.TransactWriteItems": 1,
                                                "stepfunctions.StartExecution": 1, "dynamodb.UpdateItem": 1,
                                                "dynamodb.PutItem": 1}
