"""Signing in with an OpenID Connect provider: authorization code flow with PKCE (S256), state and
nonce, through ``authlib`` (the OAuth client) and ``joserfc`` (authlib's JOSE library).

``begin`` gives the provider's authorization URL for a new single-use flow (``oidc_flows``);
``finish`` takes the callback's ``state`` and ``code``, exchanges the code (with the PKCE
verifier) at the token endpoint and verifies the ID token fully: signature with the provider's
JWKS (fetched again once for an unknown key id), an asymmetric algorithm the provider announces,
``iss`` equal to the configured issuer, ``aud`` (and ``azp``) our client id, ``exp`` / ``iat``,
the flow's ``nonce``, and ``at_hash`` when present. The user name comes from the configured
claim (then ``email``, then ``sub``), groups from the groups claim; claims missing from the ID
token are read from the userinfo endpoint (same ``sub``). Any failed check raises
``InvalidToken`` (the audit reason ``invalid token``); an unreachable provider ``ProviderUnavailable``.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from urllib.parse import urlencode

import httpx
from authlib.integrations.base_client.errors import OAuthError
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from assist.identity.config import IdentityConfig
from assist.identity.errors import InvalidToken, ProviderUnavailable
from assist.identity.groups import clean_groups
from assist.identity.oidc_flows import PendingFlow, PendingFlows

__all__ = ["OidcProvider", "ProviderIdentity"]

log = logging.getLogger(__name__)

_ASYMMETRIC = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
_LEEWAY_S = 60  # clocks of this server and the provider may differ this much


@dataclass(frozen=True)
class ProviderIdentity:
    name: str
    groups: tuple[str, ...]
    subject: str  # the provider's stable id for the person ("sub")
    next_path: str


class OidcProvider:
    def __init__(self, config: IdentityConfig, timeout_s: float = 10.0) -> None:
        self.config, self.timeout_s = config, timeout_s
        self.issuer = config.oidc_issuer.rstrip("/")
        self.flows = PendingFlows()
        self._metadata: dict | None = None
        self._jwks: dict | None = None
        self._lock = threading.Lock()

    @property
    def name(self) -> str:
        return self.config.provider_name

    @property
    def admin_group(self) -> str | None:
        return self.config.oidc_admin_group

    def describe(self) -> str:
        return f"OpenID Connect {self.issuer} ('Sign in with {self.name}' at /login)"

    # -- the provider's documents ------------------------------------------------------------

    def _get(self, url: str) -> dict:
        try:
            response = httpx.get(url, timeout=self.timeout_s, follow_redirects=False)
            response.raise_for_status()
            return response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("OpenID provider %s: %s", url, exc)
            raise ProviderUnavailable(f"The sign-in provider ({self.issuer}) cannot be reached right now; try "
                                      "again in a few minutes, or sign in with a password.") from exc

    def metadata(self) -> dict:
        """The discovery document, fetched once and checked (its issuer must be ours exactly)."""
        with self._lock:
            if self._metadata is None:
                found = self._get(self.issuer + "/.well-known/openid-configuration")
                if str(found.get("issuer", "")).rstrip("/") != self.issuer:
                    raise ProviderUnavailable(f"The provider at {self.issuer} calls itself {found.get('issuer')!r}; "
                                              "set --oidc-issuer to exactly that.")
                missing = [k for k in ("authorization_endpoint", "token_endpoint", "jwks_uri") if not found.get(k)]
                if missing:
                    raise ProviderUnavailable(f"The provider's discovery document lacks {', '.join(missing)}.")
                self._metadata = found
            return self._metadata

    def _keys(self, refresh: bool = False) -> KeySet:
        if refresh or self._jwks is None:
            self._jwks = self._get(self.metadata()["jwks_uri"])
        try:
            return KeySet.import_key_set(self._jwks)
        except (JoseError, ValueError, KeyError, TypeError) as exc:
            raise ProviderUnavailable("The provider's signing keys (JWKS) cannot be read.") from exc

    def _client(self, redirect_uri: str) -> OAuth2Client:
        secret = self.config.oidc_client_secret
        return OAuth2Client(self.config.oidc_client_id, secret, scope=self.config.oidc_scopes,
                            redirect_uri=redirect_uri, code_challenge_method="S256", timeout=self.timeout_s,
                            token_endpoint_auth_method="client_secret_basic" if secret else "none")

    # -- the flow ------------------------------------------------------------------------------

    def begin(self, browser_secret: str, redirect_uri: str, next_path: str) -> str:
        """The URL to send the browser to; the flow waits for its callback (single use)."""
        endpoint = self.metadata()["authorization_endpoint"]
        flow = self.flows.start(browser_secret, redirect_uri, next_path)
        with self._client(redirect_uri) as client:
            url, _ = client.create_authorization_url(endpoint, state=flow.state, code_verifier=flow.code_verifier,
                                                     nonce=flow.nonce)
        return url

    def finish(self, state: str, code: str, browser_secret: str | None, error: str | None = None) -> ProviderIdentity:
        if error:  # Deny at the provider, or its own failure (some providers leave the state out)
            self.flows.discard(state)
            raise InvalidToken(f"the provider answered {error[:80]!r}", reason="refused by the provider")
        flow = self.flows.take(state, browser_secret)  # whatever happens next, this state is spent
        if not code:
            raise InvalidToken("the provider sent no code")
        token = self._exchange(flow, code)
        claims = self.verify_id_token(token.get("id_token") or "", flow.nonce, token.get("access_token"))
        claims = self._with_userinfo(claims, token.get("access_token"))
        return ProviderIdentity(self._name(claims), self._groups(claims), str(claims["sub"]), flow.next_path)

    def _exchange(self, flow: PendingFlow, code: str) -> dict:
        endpoint = self.metadata()["token_endpoint"]
        try:
            with self._client(flow.redirect_uri) as client:
                return dict(client.fetch_token(endpoint, grant_type="authorization_code", code=code,
                                               code_verifier=flow.code_verifier, redirect_uri=flow.redirect_uri))
        except OAuthError as exc:  # invalid_grant: a used, expired or foreign code
            raise InvalidToken(f"the provider refused the code: {exc.error or 'error'}") from exc
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(f"The sign-in provider ({self.issuer}) cannot be reached right now; "
                                      "try again in a few minutes.") from exc

    def verify_id_token(self, id_token: str, nonce: str, access_token: str | None = None) -> dict:
        """The ID token's claims after every check in the module doc; ``InvalidToken`` otherwise."""
        if not id_token:
            raise InvalidToken("no ID token")
        announced = self.metadata().get("id_token_signing_alg_values_supported") or ["RS256"]
        algorithms = [a for a in announced if a in _ASYMMETRIC]
        try:
            try:
                decoded = jwt.decode(id_token, self._keys(), algorithms=algorithms)
            except InvalidKeyIdError:  # keys rotated since we fetched them
                decoded = jwt.decode(id_token, self._keys(refresh=True), algorithms=algorithms)
            options = {"iss": {"essential": True, "value": self.issuer}, "aud": {"essential": True,
                       "value": self.config.oidc_client_id}, "exp": {"essential": True}}
            params = {"nonce": nonce, "client_id": self.config.oidc_client_id}
            if access_token:
                params["access_token"] = access_token
            claims = CodeIDToken(decoded.claims, decoded.header, options, params)
            claims.validate(leeway=_LEEWAY_S)
        except JoseError as exc:
            raise InvalidToken(f"ID token: {exc.description or exc.error}") from exc
        except (ValueError, TypeError) as exc:  # not a JWT at all
            raise InvalidToken("ID token: malformed") from exc
        if "nonce" not in claims:  # validate_nonce checks it only when present in the params: always
            raise InvalidToken("ID token: no nonce")
        return dict(claims)

    def _with_userinfo(self, claims: dict, access_token: str | None) -> dict:
        wanted = (self.config.oidc_username_claim, self.config.oidc_groups_claim)
        endpoint = self.metadata().get("userinfo_endpoint")
        if all(k in claims for k in wanted) or not endpoint or not access_token:
            return claims
        try:
            response = httpx.get(endpoint, headers={"Authorization": f"Bearer {access_token}"}, timeout=self.timeout_s)
            response.raise_for_status()
            info = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("OpenID userinfo %s: %s", endpoint, exc)
            return claims  # the ID token's claims suffice for a name (email or sub)
        if not isinstance(info, dict) or info.get("sub") != claims.get("sub"):
            raise InvalidToken("userinfo is about someone else")
        return {**info, **claims}

    def _name(self, claims: dict) -> str:
        for claim in dict.fromkeys((self.config.oidc_username_claim, "email", "sub")):
            value = claims.get(claim)
            if isinstance(value, str) and value.strip():
                return value.strip()
        raise InvalidToken("no user name in the token")

    def _groups(self, claims: dict) -> tuple[str, ...]:
        value = claims.get(self.config.oidc_groups_claim)
        if isinstance(value, str):
            value = value.replace(",", " ").split()
        return clean_groups(value if isinstance(value, list) else [])

    def logout_url(self, post_logout_redirect_uri: str) -> str | None:
        """The provider's end-session URL (RP-initiated logout), when it offers one."""
        try:
            endpoint = self.metadata().get("end_session_endpoint")
        except ProviderUnavailable:
            return None
        if not endpoint:
            return None
        query = urlencode({"client_id": self.config.oidc_client_id, "post_logout_redirect_uri": post_logout_redirect_uri})
        return f"{endpoint}{'&' if '?' in endpoint else '?'}{query}"
