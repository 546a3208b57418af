"""Authentication switched on for the in-process app (HS256 tokens signed with a test's secret), and back
off afterwards: the local stage's settings leave it off."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def authentication(secret: str) -> Iterator[None]:
    """Requests need a token signed with `secret` while inside; the settings' (off) again after."""
    import app as app_module
    from chalicelib.auth import Authenticator

    app_module.services.auth = Authenticator("hs256", secret)
    try:
        yield
    finally:
        del app_module.services.auth
