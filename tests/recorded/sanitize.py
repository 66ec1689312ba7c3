"""Scrubbing secrets out of cassettes, and making them independent of where they were recorded.

Applied by vcrpy to every request before it is recorded or matched, and to every response
before it is recorded. Client secrets and assertions become ``REDACTED``; each access token
becomes ``sanitized-token-N`` in the token response *and* in the Authorization headers that
carry it, so a replay still checks which token each request carried. Hosts become the
canonical replay hosts, and real tenant, client and subscription ids the emulator's.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

__all__ = ["ARM_HOST", "LOGIN_HOST", "SANITIZED_TOKEN", "Sanitizer"]

LOGIN_HOST = "login.replay.invalid"
ARM_HOST = "management.replay.invalid"
SANITIZED_TOKEN = re.compile(r"sanitized-token-\d+")
_SECRET_FIELDS = ("client_secret", "client_assertion")


class Sanitizer:
    """One per recording session: it remembers which real token became which placeholder.

    :param live_hosts: hosts (``host`` or ``host:port``) of the live endpoints being recorded.
    :param replacements: literal strings to replace everywhere (real ids -> fake ids).
    """

    def __init__(self, live_hosts: set[str], replacements: dict[str, str] | None = None) -> None:
        self._live_hosts = live_hosts
        self._replacements = dict(replacements or {})
        self._tokens: dict[str, str] = {}

    def _placeholder(self, token: str) -> str:
        if SANITIZED_TOKEN.fullmatch(token):
            return token  # already a placeholder: a replayed token
        if token not in self._tokens:
            self._tokens[token] = f"sanitized-token-{len(self._tokens) + 1}"
        return self._tokens[token]

    def _replace_ids(self, text: str) -> str:
        for real, fake in self._replacements.items():
            text = text.replace(real, fake)
        return text

    def _canonical_uri(self, uri: str) -> str:
        parts = urlsplit(self._replace_ids(uri))
        if parts.netloc not in self._live_hosts:
            return urlunsplit(parts)
        host = ARM_HOST if parts.path.startswith("/subscriptions") else LOGIN_HOST
        return urlunsplit(parts._replace(netloc=host))

    def request(self, request: Any) -> Any:
        """vcrpy's ``before_record_request``."""
        request.uri = self._canonical_uri(request.uri)
        body = request.body
        if isinstance(body, dict):  # vcrpy's aiohttp stub keeps a form given as a dict
            request.body = {
                name: "REDACTED" if name in _SECRET_FIELDS else self._replace_ids(str(value))
                for name, value in body.items()
            }
        elif body:
            text = body.decode() if isinstance(body, bytes) else str(body)
            fields = parse_qsl(text, keep_blank_values=True)
            if any(name in _SECRET_FIELDS for name, _ in fields):
                fields = [(name, "REDACTED" if name in _SECRET_FIELDS else value) for name, value in fields]
                text = urlencode(fields)
            request.body = self._replace_ids(text).encode()
        authorization = request.headers.get("Authorization")
        if authorization:
            scheme, _, token = authorization.partition(" ")
            request.headers["Authorization"] = f"{scheme} {self._placeholder(token)}"
        return request

    def response(self, response: dict[str, Any]) -> dict[str, Any]:
        """vcrpy's ``before_record_response``."""
        body = response.get("body", {}).get("string")
        if not body:
            return response
        text = body.decode() if isinstance(body, bytes) else str(body)
        try:
            document = json.loads(text)
        except ValueError:
            document = None
        if isinstance(document, dict) and "access_token" in document:
            document["access_token"] = self._placeholder(str(document["access_token"]))
            text = json.dumps(document)
        for host in self._live_hosts:
            text = text.replace(f"https://{host}", f"https://{LOGIN_HOST}")
        response["body"]["string"] = self._replace_ids(text).encode()
        response["headers"].pop("Content-Length", None)
        return response
