"""Who is calling: JWT bearer tokens verified per stage (HS256 with a secret, or RS256 from a JWKS),
turned into a Principal (id, roles, groups, tenant). No HTTP here: chalicelib/api/auth.py applies it.

Claims read:
  sub                                  the principal's id (required)
  roles | cognito:groups               roles; the highest known one counts (viewer < executor < editor < admin)
  groups | cognito:groups              task groups (who may work a group's tasks): `groups`, and every
                                       Cognito group that is not a role name
  tenant_id | custom:tenant_id         the tenant; every read and write is confined to it
  token_use                            when present (Cognito), it must be "id": the API takes ID tokens, which
                                       carry `aud` and the tenant attribute; access tokens carry neither
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

ROLES = ("viewer", "executor", "editor", "admin")
RANK = {role: i for i, role in enumerate(ROLES)}
MODES = ("off", "hs256", "jwks")
JWKS_CACHE_SECONDS = 600
MAX_TOKEN_CHARS = 8192
LEEWAY_SECONDS = 30
# RFC 7518 3.2: an HS256 key must be at least as long as the hash output.
MIN_HS256_SECRET_BYTES = 32


ACCESS_TOKEN_REFUSED = ("this is not an ID token: send the identity provider's ID token "
                        "(Cognito: AuthenticationResult.IdToken, not AccessToken)")


class AuthError(Exception):
    """The token is missing, malformed, expired or not signed by a trusted key (HTTP 401)."""


class NotConfigured(AuthError):
    """Authentication is on but its keys are not configured (HTTP 503)."""


@dataclass(frozen=True)
class Principal:
    id: str
    roles: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    tenant_id: str | None = None
    authenticated: bool = True

    @property
    def role(self) -> str | None:
        """The highest known role, or None."""
        known = [r for r in self.roles if r in RANK]
        return max(known, key=RANK.__getitem__) if known else None

    def has(self, role: str) -> bool:
        mine = self.role
        return mine is not None and RANK[mine] >= RANK[role]

    @property
    def is_admin(self) -> bool:
        return self.has("admin")


# Auth off (the local stage by default): every request acts as this principal, with every right and
# no tenant; bodies may name the acting user and tenant as before.
ANONYMOUS_ADMIN = Principal("anonymous", ("admin",), (), None, authenticated=False)


def _strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(v for v in value.replace(",", " ").split() if v)
    if isinstance(value, Iterable) and not isinstance(value, Mapping):
        return tuple(str(v) for v in value if isinstance(v, str | int))
    return ()


def principal_from_claims(claims: Mapping[str, Any]) -> Principal:
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 255:
        raise AuthError("the token has no usable 'sub' claim")
    cognito_groups = _strings(claims.get("cognito:groups"))
    roles = _strings(claims.get("roles")) + cognito_groups
    # A Cognito pool has one kind of group: the role names give roles, the others are task groups.
    groups = _strings(claims.get("groups")) + tuple(g for g in cognito_groups if g not in RANK)
    tenant = claims.get("tenant_id", claims.get("custom:tenant_id"))
    if tenant is not None and (not isinstance(tenant, str) or not 0 < len(tenant) <= 100):
        raise AuthError("the token's tenant claim is not valid")
    return Principal(sub, roles, groups, tenant)


def deployment_problems(mode: str, secret: str | None, jwks_url: str | None, issuer: str | None,
                        audience: str | None) -> list[str]:
    """What a deployed stage's authentication lacks (empty: it may start). Without an issuer and an
    audience a token minted for any other service signed by the same keys would be accepted."""
    problems = []
    if mode == "off":
        problems.append("authentication cannot be off (STEPFLOW_AUTH)")
    if not issuer:
        problems.append("set STEPFLOW_JWT_ISSUER (the 'iss' every token must carry)")
    if not audience:
        problems.append("set STEPFLOW_JWT_AUDIENCE (the 'aud' every token must carry)")
    if mode == "hs256" and len((secret or "").encode()) < MIN_HS256_SECRET_BYTES:
        problems.append(f"STEPFLOW_JWT_SECRET must be at least {MIN_HS256_SECRET_BYTES} bytes for hs256")
    if mode == "jwks" and not jwks_url:
        problems.append("set STEPFLOW_JWKS_URL (the issuer's JWKS) for jwks")
    return problems


class AuthConfigError(ValueError):
    """An authenticator a deployed stage must not run with (missing issuer, audience, keys, weak secret)."""


@dataclass
class Authenticator:
    """Verifies bearer tokens for one stage; `mode` off means every request is ANONYMOUS_ADMIN."""

    mode: str = "off"
    secret: str | None = None
    jwks_url: str | None = None
    issuer: str | None = None
    audience: str | None = None
    deployed: bool = False  # a deployed stage: refuses to be built without issuer, audience and strong keys
    _jwks: Any = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if self.deployed:
            problems = deployment_problems(self.mode, self.secret, self.jwks_url, self.issuer, self.audience)
            if problems:
                raise AuthConfigError("; ".join(problems))

    @property
    def enabled(self) -> bool:
        return self.mode != "off"

    def authenticate(self, authorization: str | None) -> Principal:
        if not self.enabled:
            return ANONYMOUS_ADMIN
        if not authorization:
            raise AuthError("authentication required: send 'Authorization: Bearer <token>'")
        scheme, _, token = authorization.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise AuthError("the Authorization header must be 'Bearer <token>'")
        if len(token) > MAX_TOKEN_CHARS:
            raise AuthError("the token is too long")
        return principal_from_claims(self.verify(token))

    def verify(self, token: str) -> dict[str, Any]:
        import jwt  # here, not at import: loading PyJWT (and cryptography) is cold-start time

        required = ["sub", "exp"] + (["iss"] if self.issuer else []) + (["aud"] if self.audience else [])
        options = {"require": required, "verify_aud": self.audience is not None}
        kwargs: dict[str, Any] = {"options": options, "leeway": LEEWAY_SECONDS}
        if self.issuer:
            kwargs["issuer"] = self.issuer
        if self.audience:
            kwargs["audience"] = self.audience
        try:
            if self.mode == "hs256":
                if not self.secret:
                    raise NotConfigured("authentication is on but STEPFLOW_JWT_SECRET is not set")
                claims = jwt.decode(token, self.secret, algorithms=["HS256"], **kwargs)
            elif self.mode == "jwks":
                key = self._signing_key(token)
                claims = jwt.decode(token, key, algorithms=["RS256"], **kwargs)
            else:
                raise NotConfigured(f"unknown authentication mode '{self.mode}'")
        except NotConfigured:
            raise
        except jwt.ExpiredSignatureError:
            raise AuthError("the token has expired") from None
        except (jwt.PyJWTError, ValueError, TypeError) as exc:
            if _token_use(token) == "access":  # refused anyway (no `aud`); the message says what to send instead
                raise AuthError(ACCESS_TOKEN_REFUSED) from None
            # The library's message names the failed check, never the token.
            raise AuthError(f"the token is not valid: {type(exc).__name__}") from None
        # Cognito signs ID and access tokens with the same keys: only an ID token names its audience
        # and carries the tenant attribute, so only an ID token is a credential here.
        if claims.get("token_use", "id") != "id":
            raise AuthError(ACCESS_TOKEN_REFUSED)
        return claims

    def _signing_key(self, token: str) -> Any:
        if not self.jwks_url:
            raise NotConfigured("authentication is jwks but STEPFLOW_JWKS_URL is not set")
        import jwt

        kid = jwt.get_unverified_header(token).get("kid")
        keys = self._keyset()
        for key in keys:
            if kid is None or key.key_id == kid:
                return key.key
        # A key rotated in since the last fetch: fetch once more.
        for key in self._keyset(refresh=True):
            if kid is None or key.key_id == kid:
                return key.key
        raise jwt.InvalidKeyError("no key in the JWKS matches the token's kid")

    def _keyset(self, refresh: bool = False) -> list[Any]:
        with self._lock:
            if self._jwks is None or refresh or self._jwks[0] < time.monotonic():
                self._jwks = (time.monotonic() + JWKS_CACHE_SECONDS, load_jwks(self.jwks_url or ""))
            return self._jwks[1]


def _token_use(token: str) -> Any:
    """The unverified `token_use` claim, only to explain a refusal; never to accept anything."""
    import jwt

    try:
        return jwt.decode(token, options={"verify_signature": False}).get("token_use")
    except (jwt.PyJWTError, ValueError, TypeError, AttributeError):
        return None


def load_jwks(url: str) -> list[Any]:
    """The keys of a JWKS document at an https:// URL (e.g. Cognito's), a file:// URL or a plain path."""
    import urllib.request  # with http.client and ssl: only a jwks stage needs them

    import jwt

    if url.startswith(("https://", "http://")):
        with urllib.request.urlopen(url, timeout=5) as answer:  # noqa: S310 - a configured, trusted URL
            data = json.loads(answer.read(1024 * 1024))
    else:
        path = url.removeprefix("file://")
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    return [key for key in jwt.PyJWKSet.from_dict(data).keys if key.key_id or len(data.get("keys", [])) == 1]


def mint(secret: str, sub: str, *, roles: Iterable[str] = (), groups: Iterable[str] = (), tenant: str | None = None,
         ttl_seconds: int = 3600, issuer: str | None = None, audience: str | None = None) -> str:
    """An HS256 token (development and tests)."""
    import jwt

    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub, "roles": list(roles), "groups": list(groups), "iat": now,
                              "exp": now + ttl_seconds}
    if tenant is not None:
        claims["tenant_id"] = tenant
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm="HS256")
