"""A WSGI app for a real pre-fork server (gunicorn --preload), holding one sync policy.

Loaded once, in the master, before it forks its workers: the master gets a token that is already
due, and starts its background refresh, which the test's token endpoint holds open; with
``refresh_when_idle=True`` an idle timer is armed too. Each worker then serves requests with the
token it inherited and makes its own refresh. Each response tells the worker's pid and the
Authorization header the policy attached (test tokens only).
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any

from azure.core.credentials import AccessTokenInfo, TokenRequestOptions
from azure.core.pipeline import PipelineContext, PipelineRequest
from azure.core.rest import HttpRequest

from bgrefresh_policy import BackgroundRefreshTokenPolicy


class LoopbackCredential:
    """Asks the test's token endpoint, telling it which process asks."""

    def __init__(self, url: str) -> None:
        self.url = url

    def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        request = urllib.request.Request(self.url, headers={"X-Pid": str(os.getpid())})
        with urllib.request.urlopen(request, timeout=120) as response:
            answer = json.load(response)
        return AccessTokenInfo(answer["token"], answer["expires_on"], refresh_on=answer.get("refresh_on"))

    def close(self) -> None:
        pass

    def __enter__(self) -> LoopbackCredential:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass


def authorization() -> str:
    request = PipelineRequest(HttpRequest("GET", "https://service.example.test/"), PipelineContext(None))
    policy.on_request(request)
    return str(request.http_request.headers["Authorization"])


policy = BackgroundRefreshTokenPolicy(
    LoopbackCredential(os.environ["BGREFRESH_TOKEN_URL"]),
    "https://service.example.test/.default",
    refresh_when_idle=True,
)
authorization()  # the master's first token, due at once
authorization()  # due: the master's background refresh starts, and the token endpoint holds it


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = json.dumps({"pid": os.getpid(), "authorization": authorization()}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]
