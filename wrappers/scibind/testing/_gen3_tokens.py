"""Fence's JWTs for the fake Gen3 commons: RS256 API keys, access, refresh and ID tokens.

Claims follow Fence: ``pur`` (``api_key``, ``access``, ``refresh``, ``id``), ``sub`` (user id as a string),
``iss`` (Fence's base URL, ``https://<commons>/user``), ``aud``, ``iat``, ``exp``, ``jti``, ``azp``,
``scope`` and, in access tokens, ``context.user``. Time comes from the fake's clock, so tests can move
time forward instead of sleeping.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["FakeUser", "TokenError", "TokenService"]

KID = "fence_key_scibind_fake"


class TokenError(Exception):
    """A token that is malformed, badly signed, expired, revoked or of the wrong purpose."""


@dataclass
class FakeUser:
    """A commons user. ``authz`` maps resource paths to permissions, as Fence's ``/user/user`` shows."""

    username: str
    id: int
    email: str | None = None
    is_admin: bool = False
    authz: dict[str, list[dict[str, str]]] = field(
        default_factory=lambda: {"/": [{"method": "*", "service": "*"}]}
    )
    idp: str = "google"

    def can(self, resource: str, method: str, service: str = "*") -> bool:
        """Whether a permission on ``resource`` (or one of its parents) allows ``method``."""
        if self.is_admin:
            return True
        path = "/" + resource.strip("/")
        for granted, permissions in self.authz.items():
            root = "/" + granted.strip("/")
            if root != "/" and path != root and not path.startswith(root + "/"):
                continue
            for p in permissions:
                if p.get("method") in ("*", method) and p.get("service") in ("*", service):
                    return True
        return False


@functools.cache
def _default_private_key() -> Any:
    from cryptography.hazmat.primitives.asymmetric import rsa

    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class TokenService:
    """Mints and checks the fake's JWTs with one RSA key pair."""

    def __init__(self, clock: Callable[[], float], private_key: Any | None = None) -> None:
        self.clock = clock
        self.private_key = private_key if private_key is not None else _default_private_key()
        self.public_key = self.private_key.public_key()
        self.kid = KID
        self.revoked: set[str] = set()
        self.minted: dict[str, int] = {"api_key": 0, "access": 0, "refresh": 0, "id": 0}

    # -- keys --------------------------------------------------------------------------------------
    def public_pem(self) -> str:
        """The public key as PEM text."""
        from cryptography.hazmat.primitives import serialization

        pem: bytes = self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return pem.decode()

    def jwk(self) -> dict[str, Any]:
        """The public key as a JSON Web Key."""
        from jwt.algorithms import RSAAlgorithm

        key: dict[str, Any] = RSAAlgorithm.to_jwk(self.public_key, as_dict=True)
        key.update({"kid": self.kid, "alg": "RS256", "use": "sig"})
        return key

    # -- minting -----------------------------------------------------------------------------------
    def _encode(self, claims: dict[str, Any]) -> str:
        import jwt

        self.minted[claims["pur"]] = self.minted.get(claims["pur"], 0) + 1
        return jwt.encode(claims, self.private_key, algorithm="RS256", headers={"kid": self.kid})

    def _base(self, purpose: str, issuer: str, subject: str, ttl: float) -> dict[str, Any]:
        iat = int(self.clock())
        return {
            "pur": purpose,
            "sub": subject,
            "iss": issuer,
            "aud": [issuer],
            "iat": iat,
            "exp": iat + int(ttl),
            "jti": str(uuid.uuid4()),
        }

    def api_key(
        self, user: FakeUser, issuer: str, scopes: Iterable[str], ttl: float, client_id: str = ""
    ) -> tuple[str, dict[str, Any]]:
        """An API key (what ``credentials.json`` holds) and its claims."""
        claims = self._base("api_key", issuer, str(user.id), ttl)
        claims.update({"azp": client_id, "scope": list(scopes)})
        return self._encode(claims), claims

    def access_token(
        self,
        user: FakeUser | None,
        issuer: str,
        scopes: Iterable[str],
        ttl: float,
        client_id: str = "",
        subject: str | None = None,
    ) -> str:
        """An access token for ``user`` (or for a client, when ``user`` is None)."""
        scope = list(scopes)
        claims = self._base("access", issuer, subject or (str(user.id) if user else ""), ttl)
        claims["aud"] = [issuer, *([client_id] if client_id else []), *scope]
        claims.update({"scope": scope, "azp": client_id})
        if user is not None:
            claims["context"] = {
                "user": {
                    "name": user.username,
                    "is_admin": user.is_admin,
                    "google": {"proxy_group": None},
                }
            }
        return self._encode(claims)

    def refresh_token(
        self, user: FakeUser, issuer: str, scopes: Iterable[str], ttl: float, client_id: str
    ) -> str:
        """A refresh token for the ``refresh_token`` grant."""
        claims = self._base("refresh", issuer, str(user.id), ttl)
        claims["aud"] = [issuer, client_id]
        claims.update({"azp": client_id, "scope": list(scopes)})
        return self._encode(claims)

    def id_token(self, user: FakeUser, issuer: str, ttl: float, client_id: str) -> str:
        """An OIDC ID token."""
        claims = self._base("id", issuer, str(user.id), ttl)
        claims["aud"] = [issuer, client_id]
        claims.update({"azp": client_id, "auth_time": claims["iat"],
                       "context": {"user": {"name": user.username, "is_admin": user.is_admin}}})  # fmt: skip
        return self._encode(claims)

    # -- checking ----------------------------------------------------------------------------------
    def decode(self, token: str, purpose: str) -> dict[str, Any]:
        """Verify signature, purpose, expiry (on the fake's clock) and revocation; return the claims."""
        import jwt

        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                self.public_key,
                algorithms=["RS256"],
                options={"verify_exp": False, "verify_aud": False, "verify_iat": False},
            )
        except jwt.PyJWTError as exc:
            raise TokenError(f"Invalid token: {exc}") from None
        if claims.get("pur") != purpose:
            raise TokenError(f"Token purpose is {claims.get('pur')!r}, expected {purpose!r}")
        if self.clock() >= float(claims.get("exp", 0)):
            raise TokenError("Signature has expired")
        if claims.get("jti") in self.revoked:
            raise TokenError("Token has been revoked")
        return claims
