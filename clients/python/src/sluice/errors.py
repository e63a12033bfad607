"""Exceptions. Server errors carry Sluice's own message; refusals of a guarded call say when to retry."""

from __future__ import annotations

from typing import Optional

import redis.exceptions


class SluiceError(Exception):
    """Base of every error this package raises."""


class CommandError(SluiceError):
    """Sluice answered `-ERR ...` (or another error reply); `str(e)` is its message."""


class TryAgain(CommandError):
    """`-TRYAGAIN`: in shared mode Redis could not take a write; nothing (or maybe nothing) was stored."""


class SluiceConnectionError(SluiceError):
    """Sluice could not be reached, or did not answer in time."""


class Refused(SluiceError):
    """A guarded call was not let through (and no stale answer could stand in)."""

    def __init__(self, message: str, retry_after_ms: int = 0) -> None:
        super().__init__(message)
        self.retry_after_ms = retry_after_ms


class BreakerOpen(Refused):
    """The upstream's circuit breaker is open; `retry_after_ms` is -1 when it is forced open."""


class RateLimited(Refused):
    """The shared rate limit would not allow the call within the policy's `max_wait_s`."""


class SlotUnavailable(Refused):
    """No concurrency slot was granted within the slot's `wait_ms`."""


class BudgetExceeded(Refused):
    """The spend budget of the call is used up for this period."""


class LeaseWaitTimeout(Refused):
    """Another caller has been computing this very answer (it holds the question's lease) for
    longer than the policy's `max_wait_s`, and no stale answer could stand in. The upstream is not
    asked again behind the lease's back: retry later, or raise `max_wait_s`."""


class UpstreamRateLimited(Exception):
    """Raise this from a guarded call's body when the upstream answered 429.

    The guard then holds the shared limit for `retry_after_s` (RL.PENALIZE), so every caller of
    every Sluice instance backs off, not only this one. Exceptions from SDKs that carry a
    `status_code` of 429 and a response with a `Retry-After` header are recognised as well."""

    def __init__(self, retry_after_s: Optional[float] = None, message: str = "upstream answered 429") -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


def from_redis(exc: redis.exceptions.RedisError) -> SluiceError:
    """Maps redis-py's exceptions onto ours, keeping the server's message."""
    if isinstance(exc, SluiceError):
        return exc
    if isinstance(exc, redis.exceptions.TryAgainError):
        return TryAgain(_message(exc, "TRYAGAIN"))
    if isinstance(exc, redis.exceptions.ResponseError):
        return CommandError(_message(exc, "ERR"))
    if isinstance(exc, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
        return SluiceConnectionError(str(exc))
    return SluiceError(str(exc))


def _message(exc: Exception, prefix: str) -> str:
    text = str(exc)
    # redis-py strips the error code for some replies and not for others; show the reply as
    # Sluice wrote it minus the code, so messages match PROTOCOL.md.
    if text.startswith(prefix + " "):
        text = text[len(prefix) + 1 :]
    return text
