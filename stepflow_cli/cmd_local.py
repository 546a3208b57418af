"""Commands for this machine: `server` (the local service, as `make run` starts it) and `token` (development JWTs)."""

from __future__ import annotations

import os
import time
from typing import Any

import click

from stepflow_cli.context import State, output_option, pass_state

ROLES = ("viewer", "executor", "editor", "admin")
# The local stage's documented development secret (chalicelib/config.py LOCAL_JWT_SECRET; a test keeps them
# equal): the service verifies with it when STEPFLOW_AUTH=hs256 and no STEPFLOW_JWT_SECRET is set.
LOCAL_JWT_SECRET = "stepflow-local-jwt-secret-change-me-0123456789"
MIN_SECRET_BYTES = 32  # the service refuses shorter HS256 secrets (RFC 7518 3.2)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), help="Default: $PORT or 8000; 0 picks a free one.")
@click.option("--verbose", is_flag=True, help="Log every request (also STEPFLOW_LOCAL_VERBOSE=1).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Where the data is kept across restarts (default: $STEPFLOW_DATA_DIR or .stepflow).")
@click.option("--ephemeral", is_flag=True, help="Keep everything in memory: nothing survives the server.")
def server(host: str, port: int | None, verbose: bool, data_dir: str | None, ephemeral: bool) -> None:
    """Run the service locally (what `make run` runs).

    AWS is emulated in this process, with DynamoDB on DynamoDB Local in the data directory: stop it and
    start it again, and running instances continue. --ephemeral keeps everything in memory. Ctrl-C stops it.
    """
    # The one command that runs the service itself rather than calling it: imported only here.
    from stepflow_local.server import main as serve

    argv = ["--host", host] + (["--port", str(port)] if port is not None else []) + (["--verbose"] if verbose else [])
    argv += (["--data-dir", data_dir] if data_dir else []) + (["--ephemeral"] if ephemeral else [])
    raise click.exceptions.Exit(serve(argv))


def mint(secret: str, user: str, role: str, tenant: str | None, groups: list[str], ttl: int,
         issuer: str | None = None, audience: str | None = None, now: float | None = None) -> tuple[str, dict[str, Any]]:
    """An HS256 token with the claims the service reads (sub, roles, groups, tenant_id; iss and aud when set)."""
    import jwt

    issued = int(time.time() if now is None else now)
    claims: dict[str, Any] = {"sub": user, "roles": [role], "groups": groups, "iat": issued, "exp": issued + ttl}
    if tenant:
        claims["tenant_id"] = tenant
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm="HS256"), claims


@click.command()
@click.option("--role", type=click.Choice(ROLES), default="viewer", show_default=True)
@click.option("--tenant", default="default", show_default=True, help="The tenant the token confines every call to.")
@click.option("--user", default="dev", show_default=True, help="Who the token says you are (its `sub`).")
@click.option("--groups", default="", metavar="A,B", help="Task groups you belong to (who may work a group's tasks).")
@click.option("--ttl", type=click.IntRange(1, 7 * 24 * 3600), default=3600, show_default=True, metavar="SECONDS")
@click.option("--secret", envvar="STEPFLOW_JWT_SECRET", metavar="SECRET", show_envvar=True,
              help="The HS256 secret the service verifies with. Default: the local stage's development secret.")
@output_option
@pass_state
def token(st: State, role: str, tenant: str, user: str, groups: str, ttl: int, secret: str | None) -> None:
    """Make a development token for a local service.

    Signed the way a local service started with STEPFLOW_AUTH=hs256 verifies it (with STEPFLOW_JWT_SECRET,
    or without it the local stage's development secret):

    \b
    export STEPFLOW_TOKEN=$(stepflow token --role editor --tenant acme --user alice)
    """
    secret = secret or LOCAL_JWT_SECRET
    if len(secret.encode()) < MIN_SECRET_BYTES:
        raise click.BadParameter(f"the service refuses HS256 secrets under {MIN_SECRET_BYTES} bytes",
                                 param_hint="--secret / STEPFLOW_JWT_SECRET")
    minted, claims = mint(secret, user, role, tenant, [g for g in groups.split(",") if g.strip()], ttl,
                          os.environ.get("STEPFLOW_JWT_ISSUER"), os.environ.get("STEPFLOW_JWT_AUDIENCE"))
    st.out.result({"token": minted, "claims": claims}, lambda v: v["token"])  # one line, for $(...)
