"""What the async policy promises about its events, its back-off and odd credentials: no
``RefreshEvent`` or ``TokenStatus`` holds a token in any field; ``Retry-After`` is read from the
error's cause or context, and in its HTTP-date form; a credential that cannot be weakly referenced
works, with tokens of its own per policy."""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import enum
import gc
import types
import weakref
from collections.abc import Callable, Iterator, Mapping

import pytest
from azure.core.credentials import AccessTokenInfo, TokenRequestOptions
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError

from bgrefresh_policy import RefreshEvent, RefreshOutcome, TokenStatus
from bgrefresh_policy._sharing import shared_count
from tests.support import FakeClock, LoopClock, ScriptedCredential, bearer, make_request, refresh_begins
from tests.unit.conftest import SCOPE, make_policy, prime

# --- no token in any field ---------------------------------------------------------------

_NOT_WALKED = (
    int,
    float,
    complex,
    type(None),
    type,
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.TracebackType,
    types.FrameType,
)


def strings_within(value: object, seen: set[int] | None = None) -> Iterator[str]:
    """Every string reachable from ``value``: a dataclass's fields (``repr=False`` ones too), the items
    of containers, an exception's arguments, cause and context, any object's ``__dict__`` and ``__slots__``.

    Not tracebacks: their frames hold the locals of the code that raised, not what an event keeps.
    """
    seen = set() if seen is None else seen
    if id(value) in seen:
        return
    seen.add(id(value))
    if isinstance(value, str):
        yield str(value)
        return
    if isinstance(value, (bytes, bytearray)):
        yield bytes(value).decode("utf-8", "replace")
        return
    if isinstance(value, _NOT_WALKED) or (isinstance(value, enum.Enum) and not isinstance(value, str)):
        return
    if dataclasses.is_dataclass(value):
        for field in dataclasses.fields(value):
            yield from strings_within(getattr(value, field.name), seen)
    if isinstance(value, Mapping):
        for key, item in value.items():
            yield from strings_within(key, seen)
            yield from strings_within(item, seen)
    elif isinstance(value, (list, tuple, set, frozenset)):
        for item in value:
            yield from strings_within(item, seen)
    if isinstance(value, BaseException):
        yield from strings_within(value.args, seen)
        yield from strings_within(value.__cause__, seen)
        yield from strings_within(value.__context__, seen)
    yield from strings_within(getattr(value, "__dict__", None), seen)
    for klass in type(value).__mro__:
        slots = vars(klass).get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if name not in ("__dict__", "__weakref__") and hasattr(value, name):
                yield from strings_within(getattr(value, name), seen)


def leaks(items: list[RefreshEvent] | list[TokenStatus], secrets: set[str]) -> int:
    """How many of ``items`` hold one of ``secrets`` anywhere (a count: the secrets are never shown)."""
    return sum(1 for item in items if any(secret in text for text in strings_within(item) for secret in secrets))


def issued(credential: ScriptedCredential) -> set[str]:
    """Every token the credential could have given out."""
    return {f"token-{number}" for number in range(1, len(credential.calls) + 1)}


async def test_no_event_or_status_of_any_outcome_holds_the_token_in_any_field(
    credential: ScriptedCredential, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    loop_clock = LoopClock(monkeypatch)
    events: list[RefreshEvent] = []
    statuses: list[TokenStatus] = []
    policy = make_policy(credential, clock, on_refresh=events.append, retry_delay=10, refresh_timeout=5)

    def look() -> None:
        statuses.extend(policy.token_status())

    await prime(policy, clock)  # inline: new token; then due, 200 s left
    look()
    credential.errors = [OSError("token endpoint down")]
    await policy.on_request(make_request())  # background: failed
    await refresh_begins()
    look()
    clock.advance(10)
    credential.fixed_expiry = clock() + 190  # the credential answers from its cache
    await policy.on_request(make_request())  # background: not newer
    await refresh_begins()
    look()
    credential.fixed_expiry = None
    clock.advance(10)
    credential.gate = asyncio.Event()
    await policy.on_request(make_request())  # background, held: the next line makes it stale
    await refresh_begins()
    look()  # a refresh running
    policy._token = None
    credential.gate.set()
    await policy.wait_for_refreshes()
    look()
    await policy.on_request(make_request())  # inline, after the drop
    await policy.authorize_request(make_request(), SCOPE, tenant_id="tenant-a", claims='{"a": 1}')  # explicit
    look()
    policy._store.invalidate(policy._default_key)
    credential.fixed_expiry = clock() - 1  # the machine's clock is ahead
    await policy.on_request(make_request())  # inline: expired on arrival, held
    look()
    credential.fixed_expiry = None
    clock.advance(10)
    await policy.on_request(make_request())  # inline, the hold over: a new token
    clock.advance(3400)
    credential.gate = asyncio.Event()  # held from now on
    await policy.on_request(make_request())  # background: timed out at refresh_timeout
    await refresh_begins()
    await loop_clock.advance(5)
    look()
    clock.advance(10)
    await policy.on_request(make_request())  # background: cancelled by close()
    await refresh_begins()
    await policy.close()
    look()
    assert {event.outcome for event in events} == set(RefreshOutcome)
    assert {status.tenant_id for status in statuses} == {None, "tenant-a"}
    secrets = issued(credential)
    leaking_events, leaking_statuses = leaks(events, secrets), leaks(statuses, secrets)  # counts only
    assert leaking_events == 0, "an event holds a token"
    assert leaking_statuses == 0, "a token status holds a token"


# --- Retry-After on the error's cause or context, and as an HTTP date ----------------------


class _Throttled:
    """The part of an HTTP response ``HttpResponseError`` reads; Retry-After as the test sets it."""

    status_code = 429
    reason = "Too Many Requests"

    def __init__(self, retry_after: str) -> None:
        self.headers: dict[str, str] = {"Retry-After": retry_after}

    def text(self) -> str:
        return ""


def throttled(retry_after: str) -> HttpResponseError:
    return HttpResponseError(message="throttled", response=_Throttled(retry_after))  # type: ignore[arg-type]


def wrapped(retry_after: str, *, link: str) -> ClientAuthenticationError:
    """What a credential raises from its token endpoint's 429: an error of its own, the 429 as its
    ``__cause__`` (``raise ... from``) or only its ``__context__`` (raised while handling it)."""
    try:
        try:
            raise throttled(retry_after)
        except HttpResponseError as response_error:
            if link == "cause":
                raise ClientAuthenticationError("sign-in failed") from response_error
            raise ClientAuthenticationError("sign-in failed")  # noqa: B904 - the context form, on purpose
    except ClientAuthenticationError as error:
        return error


async def backed_off_by(
    credential: ScriptedCredential, clock: FakeClock, error: Callable[[float], BaseException]
) -> float:
    """Seconds of back-off a background refresh failing with ``error(now)`` sets, as ``token_status()``
    and the event tell it; ``retry_delay`` is 1 s, the token has 200 s left."""
    events: list[RefreshEvent] = []
    policy = make_policy(credential, clock, retry_delay=1, min_validity=60, on_refresh=events.append)
    await prime(policy, clock)
    credential.errors = [error(clock())]
    await policy.on_request(make_request())
    await refresh_begins()
    statuses: list[TokenStatus] = policy.token_status()
    (status,) = statuses
    assert events[-1].outcome is RefreshOutcome.FAILED
    assert status.backoff_until is not None
    assert events[-1].next_attempt_at == status.backoff_until
    return status.backoff_until - clock()


@pytest.mark.parametrize("link", ["cause", "context"])
async def test_retry_after_on_the_error_the_credential_wraps_sets_the_back_off(
    credential: ScriptedCredential, clock: FakeClock, link: str
) -> None:
    assert getattr(wrapped("7", link=link), "response", None) is None  # only the wrapped error has one
    assert await backed_off_by(credential, clock, lambda now: wrapped("7", link=link)) == 7


async def test_retry_after_as_an_http_date_sets_the_back_off(credential: ScriptedCredential, clock: FakeClock) -> None:
    def in_two_minutes(now: float) -> HttpResponseError:
        return throttled(email.utils.formatdate(now + 120, usegmt=True))

    assert await backed_off_by(credential, clock, in_two_minutes) == 120


async def test_an_http_date_retry_after_on_the_cause_holds_requests_back_until_then(
    credential: ScriptedCredential, clock: FakeClock
) -> None:
    policy = make_policy(credential, clock, retry_delay=1, min_validity=60)
    await prime(policy, clock)
    credential.errors = [wrapped(email.utils.formatdate(clock() + 90, usegmt=True), link="cause")]
    await policy.on_request(make_request())
    await refresh_begins()
    for _ in range(89):  # a request every second: none starts another attempt
        clock.advance(1)
        await policy.on_request(make_request())
        await refresh_begins()
    assert len(credential.calls) == 2
    clock.advance(1)
    request = make_request()
    await policy.on_request(request)  # 90 s on: the next attempt
    await refresh_begins()
    assert len(credential.calls) == 3
    assert bearer(request) == "Bearer token-1"


# --- a credential that cannot be weakly referenced -------------------------------------------

_COLLECTED: list[str] = []


class SlottedCredential:
    """An async credential with ``__slots__`` and no ``__weakref__``: ``weakref.ref()`` refuses it."""

    __slots__ = ("calls", "clock", "name")

    def __init__(self, clock: FakeClock, name: str) -> None:
        self.clock = clock
        self.name = name
        self.calls = 0

    async def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        self.calls += 1
        return AccessTokenInfo(f"slotted-{self.calls}", int(self.clock() + 3600))

    def __del__(self) -> None:
        _COLLECTED.append(self.name)


async def test_a_credential_without_weak_references_works_with_tokens_of_its_own_per_policy(clock: FakeClock) -> None:
    credential = SlottedCredential(clock, "slotted async")
    with pytest.raises(TypeError):
        weakref.ref(credential)
    before = shared_count()
    first, second = make_policy(credential, clock), make_policy(credential, clock)
    for policy, expected in ((first, "Bearer slotted-1"), (second, "Bearer slotted-2")):
        request = make_request()
        await policy.on_request(request)
        assert bearer(request) == expected  # each policy its own token: sharing would keep it alive
    assert shared_count() == before  # the registry holds nothing for it
    clock.advance(3400)
    await first.on_request(make_request())  # due: a background refresh, as with any credential
    await refresh_begins()
    later = make_request()
    await first.on_request(later)
    assert bearer(later) == "Bearer slotted-3"
    assert credential.calls == 3
    await first.close()
    await second.close()
    del first, second, policy, credential
    gc.collect()
    assert "slotted async" in _COLLECTED  # the library kept it alive nowhere
