"""The API's verifier against tokens shaped exactly like Amazon Cognito's, signed here with an RSA key of ours.

A deployed stage with the stack's user pool verifies RS256 ID tokens against the pool's JWKS, issuer
`https://cognito-idp.<region>.amazonaws.com/<pool id>` and audience the app client id
(infra/identity.py). Cognito's ID tokens carry `aud`, `token_use: id`, `cognito:groups` and
`custom:tenant_id`; its access tokens carry `client_id` and `token_use: access` and no custom attribute.
The claim sets below are Cognito's, field for field.
"""

from __future__ import annotations

import json
import random
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from chalicelib.auth import Authenticator, AuthError

REGION = "eu-west-1"
POOL = "eu-west-1_AbCdEfGhI"
ISSUER = f"https://cognito-idp.{REGION}.amazonaws.com/{POOL}"
CLIENT = "3n4b5urk1ft4fl3mg5e62d9ado"
GATE = {"name": "managers_gate", "version": "1.0.0",
        "steps": [{"id": "review", "type": "human", "title": "Review", "assignee_group": "managers",
                   "form_schema": {"type": "object", "properties": {"note": {"type": "string"}}}}]}
_rng = random.Random(20260)  # deterministic ids in the claims


def _uuid() -> str:
    return str(uuid.UUID(int=_rng.getrandbits(128), version=4))


class Keys:
    """RSA keys published as a JWKS (as a pool publishes at <issuer>/.well-known/jwks.json)."""

    def __init__(self) -> None:
        self.private: dict[str, Any] = {}

    def add(self, kid: str) -> None:
        self.private[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def jwks(self) -> dict[str, Any]:
        keys = []
        for kid, key in self.private.items():
            public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
            keys.append({**public, "kid": kid, "alg": "RS256", "use": "sig"})
        return {"keys": keys}

    def sign(self, claims: dict[str, Any], kid: str, key: Any = None) -> str:
        return jwt.encode(claims, key or self.private[kid], algorithm="RS256", headers={"kid": kid})


def id_claims(username: str, groups: list[str], tenant: str | None, **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims = {
        "sub": _uuid(), "cognito:groups": groups, "email_verified": True, "iss": ISSUER,
        "cognito:username": username, "origin_jti": _uuid(), "aud": CLIENT, "event_id": _uuid(),
        "token_use": "id", "auth_time": now, "exp": now + 3600, "iat": now, "jti": _uuid(),
        "email": f"{username}@example.com", "custom:tenant_id": tenant,
    }
    if tenant is None:
        del claims["custom:tenant_id"]
    return {**claims, **changes}


def access_claims(username: str, groups: list[str], **changes: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": _uuid(), "cognito:groups": groups, "iss": ISSUER, "client_id": CLIENT, "origin_jti": _uuid(),
            "event_id": _uuid(), "token_use": "access", "scope": "aws.cognito.signin.user.admin",
            "auth_time": now, "exp": now + 3600, "iat": now, "jti": _uuid(), "username": username, **changes}


@pytest.fixture(scope="module")
def keys() -> Keys:
    found = Keys()
    found.add("pool-key-1")
    return found


@pytest.fixture
def cognito_api(api, keys, tmp_path) -> Iterator[Any]:
    """The API verifying as a stage of the stack's pool does (the JWKS from a file; over HTTP: below)."""
    import app as app_module

    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(keys.jwks()))
    app_module.services.auth = Authenticator("jwks", jwks_url=str(path), issuer=ISSUER, audience=CLIENT,
                                             deployed=True)
    try:
        yield api
    finally:
        del app_module.services.auth


def call(api: Any, method: str, path: str, bearer: str, body: Any = None) -> tuple[int, Any]:
    kwargs: dict[str, Any] = {"headers": {"content-type": "application/json", "authorization": f"Bearer {bearer}"}}
    if body is not None:
        kwargs["body"] = json.dumps(body)
    response = getattr(api.client.http, method.lower())(api.prefix + path, **kwargs)
    return response.status_code, json.loads(response.body)


def pending_task(api: Any, instance_id: str, bearer: str, timeout: float = 20.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        status, page = call(api, "GET", f"/tasks?instance_id={instance_id}", bearer)
        assert status == 200, page
        if page["items"]:
            return page["items"][0]
        assert time.monotonic() < deadline, "the step's task was never stored"
        time.sleep(0.1)


def test_a_cognito_id_token_gives_its_role_tenant_and_task_groups(cognito_api, keys):
    """cognito:groups holds both: role names give the role, the other groups are task groups."""
    api = cognito_api
    editor = keys.sign(id_claims("erin", ["editor"], "acme"), "pool-key-1")
    status, body = call(api, "POST", "/definitions", editor, GATE)
    assert status == 201, body
    assert body["tenant_id"] == "acme"
    manager_claims = id_claims("mia", ["executor", "managers"], "acme")
    manager = keys.sign(manager_claims, "pool-key-1")
    outsider = keys.sign(id_claims("olaf", ["executor", "finance"], "acme"), "pool-key-1")
    status, instance = call(api, "POST", "/instances", manager, {"definition_name": "managers_gate"})
    assert status == 201, instance
    task = pending_task(api, instance["id"], manager)
    status, body = call(api, "POST", f"/tasks/{task['id']}/claim", outsider, {})
    assert status == 403, body
    status, body = call(api, "POST", f"/tasks/{task['id']}/claim", manager, {})
    assert status == 200 and body["claimed_by"] == manager_claims["sub"], body
    # Another tenant's ID token, even an admin's, does not see acme's definition.
    other = keys.sign(id_claims("gus", ["admin"], "globex"), "pool-key-1")
    assert call(api, "GET", "/definitions/managers_gate", other)[0] == 404


def test_access_tokens_and_tokens_for_other_clients_pools_or_keys_are_refused(cognito_api, keys):
    api = cognito_api
    impostor_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    refused = {
        "access token": (keys.sign(access_claims("ann", ["admin"]), "pool-key-1"), 401, "not an ID token"),
        "access token naming our client as aud": (
            keys.sign(access_claims("ann", ["admin"], aud=CLIENT, **{"custom:tenant_id": "acme"}), "pool-key-1"),
            401, "not an ID token"),
        "another app client": (keys.sign(id_claims("ann", ["admin"], "acme", aud="another-client"), "pool-key-1"),
                               401, "InvalidAudienceError"),
        "another pool": (keys.sign(id_claims("ann", ["admin"], "acme",
                                             iss=f"https://cognito-idp.{REGION}.amazonaws.com/{REGION}_Other"),
                                   "pool-key-1"), 401, "InvalidIssuerError"),
        "another key, same kid": (keys.sign(id_claims("ann", ["admin"], "acme"), "pool-key-1", impostor_key),
                                  401, "InvalidSignatureError"),
        "unknown kid": (keys.sign(id_claims("ann", ["admin"], "acme"), "other-kid", impostor_key), 401,
                        "InvalidKeyError"),
        "expired": (keys.sign(id_claims("ann", ["admin"], "acme", exp=int(time.time()) - 120), "pool-key-1"),
                    401, "expired"),
        "HS256-signed": (jwt.encode(id_claims("ann", ["admin"], "acme"), "a-shared-secret-that-is-long-enough-32",
                                    algorithm="HS256", headers={"kid": "pool-key-1"}), 401, "InvalidAlgorithmError"),
        "no tenant attribute": (keys.sign(id_claims("ann", ["admin"], None), "pool-key-1"), 403, "names no tenant"),
        "no role group": (keys.sign(id_claims("ann", ["managers"], "acme"), "pool-key-1"), 403, "no known role"),
    }
    for case, (bearer, expected, says) in refused.items():
        status, body = call(api, "GET", "/definitions", bearer)
        assert status == expected and says in body["detail"], (case, status, body)
    assert call(api, "GET", "/definitions", keys.sign(id_claims("ann", ["viewer"], "acme"), "pool-key-1"))[0] == 200


class _JwksServer:
    """Serves a Keys' JWKS over HTTP, counting fetches, as the pool's issuer URL does."""

    def __init__(self, keys: Keys):
        self.keys, self.fetches = keys, 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the http.server protocol
                owner.fetches += 1
                body = json.dumps(owner.keys.jwks()).encode()
                self.send_response(200 if self.path == f"/{POOL}/.well-known/jwks.json" else 404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        return f"http://127.0.0.1:{self.server.server_address[1]}/{POOL}/.well-known/jwks.json"

    def __exit__(self, *_: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


def test_the_pool_s_jwks_is_fetched_over_http_once_and_again_when_a_key_rotates_in():
    keys = Keys()
    keys.add("k1")
    server = _JwksServer(keys)
    with server as url:
        verifier = Authenticator("jwks", jwks_url=url, issuer=ISSUER, audience=CLIENT, deployed=True)
        first = keys.sign(id_claims("ann", ["viewer"], "acme"), "k1")
        for _ in range(3):
            assert verifier.authenticate(f"Bearer {first}").tenant_id == "acme"
        assert server.fetches == 1  # cached
        keys.add("k2")  # Cognito publishes a new key before signing with it
        second = keys.sign(id_claims("ann", ["admin"], "acme"), "k2")
        assert verifier.authenticate(f"Bearer {second}").role == "admin"
        assert server.fetches == 2
        stranger = Keys()
        stranger.add("k3")
        with pytest.raises(AuthError, match="InvalidKeyError"):
            verifier.authenticate(f"Bearer {stranger.sign(id_claims('ann', ['admin'], 'acme'), 'k3')}")
        assert server.fetches == 3  # one refresh for an unknown kid, no more
