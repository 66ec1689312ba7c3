"""Fake credentials for your own tests: does my service keep answering while a token refreshes?

:class:`FakeCredential` (sync) and :class:`AsyncFakeCredential` (asyncio and trio) are real
credentials, not mocks: give one to :class:`~bgrefresh_policy.BackgroundRefreshCredential`, a
policy, a provider or an Azure SDK client, exactly where your application takes its credential.
Each issues tokens of the lifetime you choose (:data:`FRESH`, :data:`DUE`, :data:`EXPIRING`),
records its calls, and can be held open and released, made to fail, or made to hang, so that a
test shows what happened *while* a refresh was under way by order, not by timing.

Loaded only when imported: ``import bgrefresh_policy`` does not load it.
"""

from __future__ import annotations

from ._async import AsyncFakeCredential
from ._fake import DUE, EXPIRING, FRESH, FakeCall
from ._sync import FakeCredential

__all__ = ["DUE", "EXPIRING", "FRESH", "AsyncFakeCredential", "FakeCall", "FakeCredential"]
