"""Who may ask the reward server for scores: one API key, and where a server without one may listen.

As vLLM's `--api-key`: the key comes from `--api-key` or `$LOONG_REWARD_API_KEY`; callers send it as
`Authorization: Bearer <key>` (or as the password of HTTP Basic auth, which is what a URL like
`http://user:<key>@host:5000/get_reward` makes `requests` and `httpx` send, for trainers that take only a
URL). Keys are compared in constant time and never logged. A server without a key listens on loopback
only; binding any other interface without one is refused unless the operator says `--insecure`.
"""

# No `from __future__ import annotations`: FastAPI reads the dependency's annotations at run time, and
# `Request` is imported inside `require_api_key` (fastapi is an optional extra).
import base64
import binascii
import hmac
import ipaddress
import logging
import os
import re
from collections.abc import Callable, Mapping
from typing import Any

from loong_env.errors import ConfigError
from loong_env.integrations.errors import UnauthorizedError

log = logging.getLogger(__name__)
API_KEY_ENV = "LOONG_REWARD_API_KEY"
OPEN_ROUTES = frozenset({"/health"})  # every other route of the app asks for the key
_KEY = re.compile(r"^[\x21-\x7e]{16,512}$")  # printable ASCII, no spaces: it must fit in a header
HOW_TO_SET = (
    f"set a key with --api-key KEY or ${API_KEY_ENV}=KEY (make one with "
    '`python -c "import secrets; print(secrets.token_urlsafe(32))"`)'
)


def resolve_api_key(given: str | None, env: Mapping[str, str] | None = None) -> str | None:
    """The server's key: `given` (--api-key), else $LOONG_REWARD_API_KEY, else None; checked for shape."""
    env = os.environ if env is None else env
    key = given if given is not None else env.get(API_KEY_ENV)
    key = (key or "").strip()
    if not key:
        return None
    if not _KEY.match(key):
        raise ConfigError(
            f"the API key must be 16 to 512 printable ASCII characters without spaces (it travels in an "
            f"HTTP header), got one of {len(key)} characters; {HOW_TO_SET}"
        )
    return key


def is_loopback(host: str) -> bool:
    """True when `host` names this machine's loopback interface only (127.0.0.0/8, ::1, localhost)."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name other than localhost may resolve to any interface


def check_bind(host: str, *, api_key: str | None, insecure: bool) -> None:
    """Refuse to listen beyond loopback without a key, unless the operator chose `insecure`."""
    if api_key is None and not insecure and not is_loopback(host):
        raise ConfigError(
            f"refusing to serve rewards on {host!r} without an API key: anyone who reaches that interface "
            f"could make this machine run code. {HOW_TO_SET}, and give it to your trainer; or bind "
            "127.0.0.1; or pass --insecure to serve without a key anyway"
        )


def warn_if_open(host: str, port: int, *, api_key: str | None) -> None:
    """Log, loudly, that a server is about to listen beyond loopback with no key (`insecure` chosen)."""
    if api_key is None and not is_loopback(host):
        log.warning(
            "\n%s\nINSECURE: serving rewards on %s:%s WITHOUT an API key (--insecure). Anyone who can "
            "reach this port can make this machine run code answers and spend its CPU. Unless this network "
            "is yours alone, %s.\n%s",
            "!" * 100,
            host,
            port,
            HOW_TO_SET,
            "!" * 100,
        )


def presented_key(authorization: str | None) -> str | None:
    """The key a caller sent: the token of `Bearer <key>`, or the password of `Basic base64(user:key)`."""
    if not authorization:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer":
        return value or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[2] or None
    return None


def key_matches(presented: str | None, key: str) -> bool:
    """Constant-time comparison of what the caller sent with the server's key."""
    if presented is None:
        return False
    return hmac.compare_digest(presented.encode("utf-8", "surrogateescape"), key.encode("utf-8"))


def require_api_key(key: str) -> Callable[..., Any]:
    """A FastAPI dependency for the whole app: every route but OPEN_ROUTES answers 401 without `key`."""
    from fastapi import Request, Security
    from fastapi.security import HTTPBearer

    documented = HTTPBearer(auto_error=False, description=f"The server's API key (${API_KEY_ENV}).")

    async def dependency(request: Request, _: Any = Security(documented)) -> None:  # noqa: B008
        route = request.scope.get("route")
        if getattr(route, "path", None) in OPEN_ROUTES:
            return
        header = request.headers.get("authorization")
        if key_matches(presented_key(header), key):
            return
        if header is None:
            raise UnauthorizedError(
                "this reward server requires an API key: send the header 'Authorization: Bearer <key>' "
                f"with the key it was started with (--api-key or ${API_KEY_ENV})"
            )
        raise UnauthorizedError(
            "the API key sent in the Authorization header is not this server's key "
            "(send 'Authorization: Bearer <key>' with the key the server was started with)"
        )

    return dependency
