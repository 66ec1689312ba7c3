"""Property tests of the real policy on a real event loop, driven step by step by Hypothesis.

Random sequences of clock jumps, requests, credential successes, failures and hangs (calls left
unanswered), 401s, CAE challenges (``authorize_request`` with claims) and close. After every step:

- a request that completed carries a token that had not expired when it was attached;
- a request that began after an invalidation never carries a token from a credential call that
  began before it;
- at most one plain refresh is in flight per key and generation (a refresh made stale by an
  invalidation may still finish, but never writes back);
- after close, no background refresh is running and every refresh task that existed is done.
"""

from __future__ import annotations

import asyncio
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from azure.core.credentials import AccessTokenInfo, TokenRequestOptions
from azure.core.pipeline import AsyncPipeline
from azure.core.rest import HttpRequest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tests.support import FakeClock, ScriptedTransport, bearer, make_request
from tests.unit.conftest import SCOPE, make_policy

# The generation a refresh was decided in, set in its task's context (see PolicyMachine).
_DECIDED: ContextVar[int] = ContextVar("decided")


@dataclass
class Call:
    number: int
    claims: str | None
    generation: int  # of the key, when the refresh was decided
    answer: asyncio.Future[AccessTokenInfo]


@dataclass
class GatedCredential:
    """Each call waits until the test answers it: a token, an error, or never (a hang)."""

    clock: FakeClock
    calls: list[Call] = field(default_factory=list)
    generation: Any = None  # reads the key's generation

    async def get_token_info(self, *scopes: str, options: TokenRequestOptions | None = None) -> AccessTokenInfo:
        loop = asyncio.get_running_loop()
        call = Call(len(self.calls) + 1, (options or {}).get("claims"), self.generation(), loop.create_future())
        self.calls.append(call)
        return await call.answer

    def pending(self) -> list[Call]:
        return [c for c in self.calls if not c.answer.done()]


@dataclass
class Request:
    task: asyncio.Task[None]
    request: Any
    calls_before: int  # credential calls begun before the request began
    invalidated_after_call: int  # calls begun before the last invalidation that preceded the request


class PolicyMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = FakeClock()
        self.credential = GatedCredential(self.clock)
        self.policy: Any = make_policy(self.credential, self.clock)
        self._tag_calls_with_their_generation()
        self.requests: list[Request] = []
        self.explicit: list[asyncio.Task[None]] = []
        self.sends: list[asyncio.Task[Any]] = []
        self.last_invalidation = 0
        self.attach_time: dict[int, float] = {}
        self.closed_tasks: set[asyncio.Task[Any]] = set()
        self.closed = False

    def _tag_calls_with_their_generation(self) -> None:
        """Record with each credential call the generation its refresh was decided in.

        Read at the call itself, it would be off by one for a background refresh whose task takes
        its first step (Python 3.10 and 3.11: on the loop's next pass) after a 401 has already
        dropped the token it was refreshing.
        """
        refresh_parts, fetcher = self.policy._refresh_parts, self.policy._fetcher
        decided: list[int] = []

        def parts(command: Any) -> Any:
            decided.append(command.generation)  # the driver makes the fetcher right after
            return refresh_parts(command)

        def tagged_fetcher(*args: Any) -> Any:
            fetch, generation = fetcher(*args), decided[-1]

            async def tagged() -> Any:
                _DECIDED.set(generation)  # the refresh's own task: its context only
                return await fetch()

            return tagged

        self.policy._refresh_parts, self.policy._fetcher = parts, tagged_fetcher
        self.credential.generation = _DECIDED.get

    def _key_generation(self) -> int:
        return int(self.policy._store.generation(self.policy._default_key))

    def settle(self) -> None:
        for _ in range(8):
            self.loop.run_until_complete(asyncio.sleep(0))

    def _expiry(self, number: int) -> float:
        return float(self.credential.calls[number - 1].answer.result().expires_on)

    @rule(seconds=st.floats(0, 1000, allow_nan=False))
    def time_passes(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule()
    def request(self) -> None:
        request = make_request()
        task = self.loop.create_task(self.policy.on_request(request))
        self.requests.append(Request(task, request, len(self.credential.calls), self.last_invalidation))
        self.settle()

    @precondition(lambda self: bool(self.credential.pending()))
    @rule(data=st.data(), outcome=st.sampled_from(["token", "error"]), lifetime=st.integers(100, 4000))
    def answer(self, data: st.DataObject, outcome: str, lifetime: int) -> None:
        pending = self.credential.pending()
        call = pending[data.draw(st.integers(0, len(pending) - 1))]
        if outcome == "token":
            call.answer.set_result(AccessTokenInfo(f"token-{call.number}", int(self.clock.now + lifetime)))
        else:
            call.answer.set_exception(ConnectionError(f"call {call.number} failed"))
        self.settle()

    @rule()
    def unauthorized(self) -> None:
        self.policy._token = None  # what azure-core's send() does on a 401
        self.last_invalidation = len(self.credential.calls)

    @rule()
    def rejected_with_401(self) -> None:
        """A request through azure-core's send() answered 401: the token it carried is dropped if still cached."""
        calls_before = len(self.credential.calls)
        generation_before = self._key_generation()
        pipeline = AsyncPipeline(ScriptedTransport(self._unauthorized), policies=[self.policy])
        self.sends.append(self.loop.create_task(pipeline.run(HttpRequest("GET", "https://example.test/"))))
        self.settle()
        if self._key_generation() != generation_before:
            self.last_invalidation = max(self.last_invalidation, calls_before)

    @staticmethod
    async def _unauthorized(request: Any) -> tuple[int, dict[str, str]]:
        return 401, {}

    @rule()
    def claims_challenge(self) -> None:
        self.policy._token = None
        self.last_invalidation = len(self.credential.calls)
        task = self.loop.create_task(self.policy.authorize_request(make_request(), SCOPE, claims='{"a":1}'))
        self.explicit.append(task)
        self.settle()

    @rule()
    def close(self) -> None:
        async def close() -> set[asyncio.Task[Any]]:
            runner = self.policy._runners.existing()
            running = set(runner._tasks) if runner is not None else set()
            await self.policy.close()
            return running

        self.closed_tasks |= self.loop.run_until_complete(close())
        self.closed = True
        self.settle()

    @invariant()
    def completed_requests_carry_valid_fresh_enough_tokens(self) -> None:
        for entry in self.requests:
            if not entry.task.done() or entry.task.cancelled() or entry.task.exception() is not None:
                continue
            number = int(bearer(entry.request).rsplit("-", 1)[1])
            self.attach_time.setdefault(id(entry), self.clock.now)
            assert self._expiry(number) > self.attach_time[id(entry)] or number > entry.calls_before
            if entry.invalidated_after_call:
                assert number > entry.invalidated_after_call

    @invariant()
    def one_plain_refresh_per_generation(self) -> None:
        generations = [c.generation for c in self.credential.pending() if c.claims is None]
        assert len(generations) == len(set(generations))

    @invariant()
    def nothing_left_running_after_close(self) -> None:
        if self.closed:
            assert all(task.done() for task in self.closed_tasks)
            state = self.policy._store.peek(self.policy._default_key)
            assert state is None or state.background_since is None

    def teardown(self) -> None:
        tasks = [entry.task for entry in self.requests] + self.explicit + self.sends
        # Waiting requests start new refreshes when theirs fail: answer until everyone is done.
        for _ in range(50):
            for call in self.credential.pending():
                call.answer.set_exception(ConnectionError("teardown"))
            self.settle()
            if all(task.done() for task in tasks):
                break
        assert all(task.done() for task in tasks)
        for task in tasks:
            if not task.cancelled():
                task.exception()  # retrieved: failures are expected outcomes here
        self.loop.run_until_complete(self.policy.close())
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()


PolicyMachine.TestCase.settings = settings(
    max_examples=150, stateful_step_count=30, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
test_policy_machine = PolicyMachine.TestCase
