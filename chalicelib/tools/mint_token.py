"""`python -m chalicelib.tools.mint_token --role editor --tenant acme --user alice`: a development JWT.

Signed HS256 with STEPFLOW_JWT_SECRET, else the local stage's documented development secret (the
one `make run` verifies with when STEPFLOW_AUTH=hs256 and no secret is given). Prints the token only.
"""

from __future__ import annotations

import argparse
import os
import sys

from chalicelib.auth import ROLES, mint
from chalicelib.config import LOCAL_JWT_SECRET


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m chalicelib.tools.mint_token", description=__doc__)
    parser.add_argument("--role", default="viewer", choices=ROLES)
    parser.add_argument("--tenant", default="default")
    parser.add_argument("--user", default="dev")
    parser.add_argument("--groups", default="", help="comma-separated task groups")
    parser.add_argument("--ttl", type=int, default=3600, help="seconds until it expires")
    args = parser.parse_args(argv)
    secret = os.environ.get("STEPFLOW_JWT_SECRET") or LOCAL_JWT_SECRET
    groups = [g for g in args.groups.split(",") if g]
    print(mint(secret, args.user, roles=[args.role], groups=groups, tenant=args.tenant, ttl_seconds=args.ttl,
               issuer=os.environ.get("STEPFLOW_JWT_ISSUER"), audience=os.environ.get("STEPFLOW_JWT_AUDIENCE")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
