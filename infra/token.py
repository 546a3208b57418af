"""ID tokens from a deployed stage's Cognito user pool: users with a role and a tenant, and the deploy's own.

    python -m infra.token --stage dev --user alice --create --role admin --tenant default
        creates alice (or updates her role and tenant), shows a generated password once on stderr,
        and prints her ID token on stdout;
    python -m infra.token --stage dev --user alice
        asks for her password (or reads $STEPFLOW_PASSWORD) and prints her ID token.

`make aws-user` and `make aws-token` run these. The pool and its app client come from the stack's
outputs (UserPoolId, UserPoolClientId); the calls are Cognito's admin APIs, made with the deployer's
AWS credentials, so the app client needs no secret and no hosted sign-in page. A user's role is the
Cognito group of that name (viewer, executor, editor, admin); other groups are task groups; the tenant
is the user attribute custom:tenant_id. The API takes the ID token (chalicelib/auth.py says why).

The deploy registers the bundled examples as the user `stepflow-seed` (admin of the seeding tenant):
each deploy enables it, gives it a fresh random password that is used once and never stored, signs
in, and disables it again, so the account is no standing credential.
"""

from __future__ import annotations

import argparse
import getpass
import os
import secrets
import string
import sys
from collections.abc import Iterable, Mapping
from typing import Any

from chalicelib.auth import ROLES
from infra import identity

SEED_USER = "stepflow-seed"
DEFAULT_TENANT = "default"
PASSWORD_LENGTH = 24


class TokenError(SystemExit):
    def __init__(self, message: str):
        super().__init__(f"infra.token: {message}")


def pool_of(stack_outputs: Mapping[str, str]) -> tuple[str, str]:
    """(user pool id, app client id) from the stack's outputs; a stage using another provider has none."""
    pool, client = stack_outputs.get("UserPoolId"), stack_outputs.get("UserPoolClientId")
    if not pool or not client:
        raise TokenError("this stage has no user pool of its own (it trusts the identity provider named by "
                         "JwtIssuer): get tokens from that provider")
    return pool, client


def generate_password(rng: secrets.SystemRandom | None = None) -> str:
    """A random password meeting the pool's policy (infra/identity.py): every character class, 24 long."""
    rng = rng or secrets.SystemRandom()
    classes = (string.ascii_lowercase, string.ascii_uppercase, string.digits, "^$*.[]{}()?-!@#%&/,><:;|_~")
    chosen = [rng.choice(chars) for chars in classes]
    chosen += [rng.choice("".join(classes)) for _ in range(PASSWORD_LENGTH - len(chosen))]
    rng.shuffle(chosen)
    return "".join(chosen)


def _is(exc: Exception, code: str) -> bool:
    return getattr(exc, "response", {}).get("Error", {}).get("Code") == code


def ensure_user(idp: Any, pool: str, username: str, *, role: str, tenant: str, groups: Iterable[str] = (),
                password: str | None = None) -> tuple[str, bool, str | None]:
    """Creates the user or brings it to this role, tenant and task groups; sets `password` when given
    (a new user gets a generated one otherwise).

    Returns (the user's `sub`, which is the principal id the API sees; whether the user was created;
    the password set, or None when it is unchanged).
    """
    from botocore.exceptions import ClientError

    if role not in ROLES:
        raise TokenError(f"unknown role '{role}' (one of {', '.join(ROLES)})")
    groups = tuple(groups)
    if set(groups) & set(ROLES):
        raise TokenError(f"task groups cannot be role names ({', '.join(ROLES)}): give the role with --role")
    tenant_attribute = {"Name": f"custom:{identity.TENANT_ATTRIBUTE}", "Value": tenant}
    try:
        idp.admin_get_user(UserPoolId=pool, Username=username)
        created = False
        idp.admin_update_user_attributes(UserPoolId=pool, Username=username, UserAttributes=[tenant_attribute])
    except ClientError as exc:
        if not _is(exc, "UserNotFoundException"):
            raise
        # No invitation message: the password is set right below and shown to whoever runs this.
        idp.admin_create_user(UserPoolId=pool, Username=username, UserAttributes=[tenant_attribute],
                              TemporaryPassword=generate_password(), MessageAction="SUPPRESS")
        created = True
        password = password or generate_password()
    if password:
        idp.admin_set_user_password(UserPoolId=pool, Username=username, Password=password, Permanent=True)
    wanted = {role, *groups}
    current = {g["GroupName"] for g in idp.admin_list_groups_for_user(UserPoolId=pool, Username=username)["Groups"]}
    for group in sorted(current - wanted):
        if group in ROLES:  # one role per user; task groups are only ever added here
            idp.admin_remove_user_from_group(UserPoolId=pool, Username=username, GroupName=group)
    for group in sorted(wanted - current):
        if group not in ROLES:
            try:
                idp.create_group(UserPoolId=pool, GroupName=group, Description="Stepflow task group")
            except ClientError as exc:
                if not _is(exc, "GroupExistsException"):
                    raise
        idp.admin_add_user_to_group(UserPoolId=pool, Username=username, GroupName=group)
    user = idp.admin_get_user(UserPoolId=pool, Username=username)
    sub = next((a["Value"] for a in user.get("UserAttributes", []) if a["Name"] == "sub"), username)
    return sub, created, password


def id_token(idp: Any, pool: str, client: str, username: str, password: str) -> str:
    """Signs in with the admin flow (the deployer's IAM credentials) and returns the ID token."""
    from botocore.exceptions import ClientError

    try:
        answer = idp.admin_initiate_auth(UserPoolId=pool, ClientId=client, AuthFlow="ADMIN_USER_PASSWORD_AUTH",
                                         AuthParameters={"USERNAME": username, "PASSWORD": password})
    except ClientError as exc:
        if _is(exc, "NotAuthorizedException") or _is(exc, "UserNotFoundException"):
            raise TokenError(f"Cognito refused to sign in '{username}': wrong user name or password, or the user "
                             "is disabled") from None
        raise
    if "AuthenticationResult" not in answer:
        raise TokenError(f"Cognito asks '{username}' for {answer.get('ChallengeName', 'a challenge')} first; "
                         "set a permanent password with --create --reset-password")
    return answer["AuthenticationResult"]["IdToken"]


def seed_token(idp: Any, pool: str, client: str, tenant: str = DEFAULT_TENANT) -> str:
    """An admin ID token of `tenant` for registering the bundled examples (see the module's docstring)."""
    from botocore.exceptions import ClientError

    try:
        idp.admin_enable_user(UserPoolId=pool, Username=SEED_USER)
    except ClientError as exc:
        if not _is(exc, "UserNotFoundException"):  # the first deploy creates it, enabled
            raise
    password = generate_password()
    try:
        ensure_user(idp, pool, SEED_USER, role="admin", tenant=tenant, password=password)
        return id_token(idp, pool, client, SEED_USER, password)
    finally:
        # Tokens already issued stay valid until they expire (60 minutes); no new one can be had.
        idp.admin_disable_user(UserPoolId=pool, Username=SEED_USER)


def instructions(stage: str, stack_outputs: Mapping[str, str], region: str, api_prefix: str = "/workflows",
                 user: str = "you") -> str:
    """What `make deploy` prints last: how to get a token for this stage and use it."""
    api = stack_outputs.get("EndpointURL", "<EndpointURL>").rstrip("/") + "/" + api_prefix.strip("/")
    if not stack_outputs.get("UserPoolId"):
        return (f"This stage trusts the identity provider {stack_outputs.get('TokenIssuer', '(JwtIssuer)')}: get an "
                f"ID token from it whose 'aud' is {stack_outputs.get('TokenAudience', '(JwtAudience)')}, with a role "
                "(cognito:groups or roles) and a tenant (custom:tenant_id or tenant_id), then\n"
                f"  curl -H \"Authorization: Bearer $TOKEN\" {api}/definitions")
    client = stack_outputs.get("UserPoolClientId", "<UserPoolClientId>")
    return "\n".join([
        "Get a token (an ID token of the stage's user pool, valid 60 minutes):",
        f"  export TOKEN=$(make -s aws-user STAGE={stage} NAME={user} ROLE=admin TENANT={DEFAULT_TENANT})"
        f"   # once: creates '{user}' and shows the password",
        f"  export TOKEN=$(make -s aws-token STAGE={stage} NAME={user})"
        "   # afterwards: asks for the password",
        "  # or, with the AWS CLI:",
        f"  export TOKEN=$(aws cognito-idp initiate-auth --region {region} --client-id {client} "
        f"--auth-flow USER_PASSWORD_AUTH --auth-parameters USERNAME={user},PASSWORD='...' "
        "--query AuthenticationResult.IdToken --output text)",
        f"  curl -H \"Authorization: Bearer $TOKEN\" {api}/definitions",
    ])


def main(argv: list[str] | None = None) -> int:
    from infra import deploy

    parser = argparse.ArgumentParser(prog="python -m infra.token", description=__doc__.splitlines()[0])
    parser.add_argument("--stage", default="dev")
    parser.add_argument("--region", default=None)
    parser.add_argument("--user", required=True, help="the user name in the stage's pool")
    parser.add_argument("--create", action="store_true", help="create the user, or update its role, tenant, groups")
    parser.add_argument("--role", default="viewer", choices=ROLES, help="with --create (default viewer)")
    parser.add_argument("--tenant", default=DEFAULT_TENANT, help="with --create (default: default)")
    parser.add_argument("--groups", default="", help="with --create: comma-separated task groups")
    parser.add_argument("--reset-password", action="store_true", help="with --create: set a new generated password")
    args = parser.parse_args(argv)
    if args.user == SEED_USER:
        raise TokenError(f"'{SEED_USER}' is the deploy's own user; pick another name")
    session, _, _ = deploy.aws_session(args.region)
    cfn = session.client("cloudformation")
    name = deploy.stack_name(args.stage)
    if deploy.stack_status(cfn, name) is None:
        raise TokenError(f"no stack {name} in this account and region: `make deploy STAGE={args.stage}` first")
    pool, client = pool_of(deploy.outputs(cfn, name))
    idp = session.client("cognito-idp")
    password = None
    if args.create:
        groups = [g.strip() for g in args.groups.split(",") if g.strip()]
        sub, created, fresh = ensure_user(idp, pool, args.user, role=args.role, tenant=args.tenant, groups=groups,
                                          password=generate_password() if args.reset_password else None)
        what = "created" if created else "updated"
        print(f"infra.token: {what} '{args.user}' in {pool}: role {args.role}, tenant {args.tenant}"
              + (f", groups {', '.join(groups)}" if groups else "") + f"; the API knows this user as {sub}",
              file=sys.stderr)
        if fresh:
            print(f"infra.token: password for '{args.user}' (shown once, keep it): {fresh}", file=sys.stderr)
        password = fresh
    if password is None:
        password = os.environ.get("STEPFLOW_PASSWORD") or getpass.getpass(f"password for {args.user}: ")
    print(id_token(idp, pool, client, args.user, password))
    return 0


if __name__ == "__main__":
    sys.exit(main())
