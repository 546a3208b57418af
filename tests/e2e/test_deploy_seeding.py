"""The deploy's last steps over real HTTP: register the bundled examples with the seeding user's ID token.

The pool is the template's (created in moto from its resource properties, tests/templates.py); the
service is `python -m stepflow_local.server` verifying tokens as the deployed API does, with the
issuer, audience and JWKS the template gives the API for that pool. infra.deploy then seeds it exactly
as `make deploy` seeds a stage: seeding_token, then register_examples.
"""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.examples import FOLDER
from infra import deploy as infra_deploy
from tests.local_service import LocalService, call
from tests.templates import api_environment, create_identity


class Session:
    """What infra.deploy needs of a boto3 session: clients of the emulated account."""

    def __init__(self, aws: Any):
        self.aws = aws

    def client(self, service: str) -> Any:
        return self.aws.client(service)


def test_the_deploy_registers_the_examples_with_the_pool_s_token(local_runtime, tmp_path):
    import requests

    import app  # noqa: F401 - building the template imports the app: only inside the runtime
    from infra import build as infra_build

    template = infra_build.build("dev").template
    physical = create_identity(local_runtime, template)
    env = api_environment(local_runtime, template, physical)
    keys = tmp_path / "jwks.json"
    keys.write_text(requests.get(env["STEPFLOW_JWKS_URL"], timeout=10).text)  # moto serves the pool's keys there
    service = LocalService(tmp_path / "service.log", {
        "STEPFLOW_AUTH": "jwks", "STEPFLOW_JWKS_URL": str(keys), "STEPFLOW_JWT_ISSUER": env["STEPFLOW_JWT_ISSUER"],
        "STEPFLOW_JWT_AUDIENCE": env["STEPFLOW_JWT_AUDIENCE"]}).start()
    try:
        endpoint = service.base + "/"  # as the stack's EndpointURL output ends
        with pytest.raises(SystemExit, match="HTTP 401.*refused the seeding token"):
            infra_deploy.register_examples(endpoint, "/workflows", "not-a-token")
        outputs = {"UserPoolId": physical["UserPool"], "UserPoolClientId": physical["UserPoolClient"]}
        bearer = infra_deploy.seeding_token(Session(local_runtime), outputs, {})
        names = sorted(path.stem for path in FOLDER.glob("*.yaml"))
        assert infra_deploy.register_examples(endpoint, "/workflows", bearer) == [f"{n}: registered" for n in names]
        assert infra_deploy.register_examples(endpoint, "/workflows", bearer) == [f"{n}: unchanged" for n in names]
        status, listed = call("GET", f"{service.base}/workflows/definitions",
                              headers={"Authorization": f"Bearer {bearer}"})
        assert status == 200
        assert {d["name"] for d in listed} >= set(names)
        status, one = call("GET", f"{service.base}/workflows/definitions/{names[0]}",
                           headers={"Authorization": f"Bearer {bearer}"})
        assert status == 200 and one["tenant_id"] == "default", one
    finally:
        service.stop()
