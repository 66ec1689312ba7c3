"""Property tests of the refresh decision and the per-key state, with no event loop.

Hypothesis drives random sequences of clock jumps, requests, refresh outcomes (success, failure,
a hang cut off by the timeout, an answer that is not newer), 401s, CAE challenges (explicit
tokens) and close, against :class:`KeyState` and :func:`decide` as the policy uses them, and
checks the invariants after every step.
"""

from __future__ import annotations

from dataclasses import dataclass

from azure.core.credentials import AccessTokenInfo
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from bgrefresh_policy._key_state import Action, CachedToken, Completion, KeyState
from bgrefresh_policy._options import RefreshOptions

OPTIONS = RefreshOptions(min_validity=60, retry_delay=30, refresh_timeout=10)


@dataclass
class Refresh:
    generation: int
    background: bool
    started: float


class KeyStateMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.state = KeyState()
        self.now = 1_800_000_000.0
        self.serial = 0
        self.closed = False
        self.running: list[Refresh] = []
        self.invalidated_generations: set[int] = set()

    def _token(self, lifetime: float, jitter: int) -> CachedToken:
        self.serial += 1
        return CachedToken(AccessTokenInfo("t", int(self.now + lifetime)), jitter=jitter, serial=self.serial)

    def _background_running(self) -> bool:
        return any(r.background for r in self.running)

    @initialize(lifetime=st.integers(100, 4000), jitter=st.integers(0, 60))
    def first_token(self, lifetime: int, jitter: int) -> None:
        self.state.complete(0, self._token(lifetime, jitter), self.now, retry_delay=OPTIONS.retry_delay)

    @rule(seconds=st.floats(0, 900, allow_nan=False))
    def time_passes(self, seconds: float) -> None:
        self.now += seconds
        # As the runner does: a background refresh still running at refresh_timeout is cancelled
        # and counts as failed, at that moment.
        for refresh in [r for r in self.running if r.background]:
            deadline = refresh.started + OPTIONS.refresh_timeout
            if deadline <= self.now:
                self.running.remove(refresh)
                self.state.end_background()
                self.state.complete(refresh.generation, None, deadline, retry_delay=OPTIONS.retry_delay)

    @rule()
    def request(self) -> None:
        action = self.state.decide(self.now, OPTIONS, background_allowed=not self.closed)
        current = self.state.current
        if action is Action.ATTACH:
            # Never attach an expired token while a refresh could succeed.
            assert current is not None
            assert current.expires_on > self.now
        elif action is Action.BACKGROUND:
            assert not self.closed
            assert current is not None
            assert current.expires_on - self.now >= OPTIONS.min_validity
            # At most one background refresh per key.
            assert not self._background_running()
            # Back-off respected.
            assert self.now >= self.state.retry_not_before
            self.running.append(Refresh(self.state.begin_background(self.now), True, self.now))
        elif not any(r.generation == self.state.generation for r in self.running):
            self.running.append(Refresh(self.state.generation, False, self.now))  # else: joins it

    @precondition(lambda self: bool(self.running))
    @rule(
        data=st.data(),
        outcome=st.sampled_from(["success", "failure", "not newer", "timed out"]),
        lifetime=st.integers(100, 4000),
        jitter=st.integers(0, 60),
    )
    def refresh_ends(self, data: st.DataObject, outcome: str, lifetime: int, jitter: int) -> None:
        refresh = self.running.pop(data.draw(st.integers(0, len(self.running) - 1)))
        if refresh.background:
            self.state.end_background()
        before = self.state.current
        if outcome == "success":
            token: CachedToken | None = self._token(lifetime, jitter)
        elif outcome == "not newer" and before is not None:
            token = CachedToken(before.token, jitter=jitter, serial=before.serial)
        else:
            token = None
        result = self.state.complete(refresh.generation, token, self.now, retry_delay=OPTIONS.retry_delay)
        if refresh.generation in self.invalidated_generations:
            # A result older than an invalidation is never used.
            assert result is Completion.STALE
            assert self.state.current is before
        if result in (Completion.FAILED, Completion.NOT_NEWER):
            assert self.state.retry_not_before == self.now + OPTIONS.retry_delay
            assert self.state.current is before
        if result is Completion.STORED and refresh.background and before is not None:
            assert token is not None
            assert token.expires_on > before.expires_on

    @rule()
    def unauthorized(self) -> None:
        current = self.state.current
        if current is not None:
            self.invalidated_generations.add(self.state.generation)
            assert self.state.invalidate(current.serial)
            assert self.state.current is None

    @rule(lifetime=st.integers(100, 4000))
    def claims_challenge(self, lifetime: int) -> None:
        self.invalidated_generations.add(self.state.generation)
        self.state.invalidate()
        generation = self.state.generation
        token = self._token(lifetime, 0)
        assert self.state.complete(generation, token, self.now, retry_delay=30, explicit=True) is Completion.STORED
        self.invalidated_generations.add(generation)  # the explicit store moved past it too
        assert self.state.current is token

    @rule()
    def close(self) -> None:
        self.closed = True

    @invariant()
    def back_off_is_bounded(self) -> None:
        assert self.state.retry_not_before <= self.now + OPTIONS.retry_delay


KeyStateMachine.TestCase.settings = settings(
    max_examples=300, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
test_key_state_machine = KeyStateMachine.TestCase
