"""Sans-I/O plumbing: the guarded call is written once, as generators that yield round trips and
sleeps, and run by a blocking driver (redis.Redis) or an asyncio one (redis.asyncio.Redis).
Keeping the logic free of I/O is what lets the sync and async APIs behave identically."""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any, Callable, Generator, Generic, List, Sequence, Tuple, TypeVar, Union

import redis
import redis.asyncio
import redis.exceptions

from .errors import SluiceError, from_redis

T = TypeVar("T")
log = logging.getLogger("sluice")
Arg = Union[str, bytes, int, float]


@dataclass(frozen=True)
class Cmd(Generic[T]):
    """One command and how to read its reply."""

    args: Tuple[Arg, ...]
    parse: Callable[[Any], T]


@dataclass(frozen=True)
class RoundTrip:
    """Commands sent together (pipelined, not a transaction). The flow receives one result per
    command: the parsed reply, or the SluiceError the server answered with."""

    cmds: Tuple[Cmd[Any], ...]


@dataclass(frozen=True)
class Sleep:
    seconds: float


Op = Union[RoundTrip, Sleep]
Flow = Generator[Op, Any, T]


def one(cmd: Cmd[T]) -> Flow[T]:
    """One command; an error reply is raised."""
    results = yield RoundTrip((cmd,))
    result = results[0]
    if isinstance(result, BaseException):
        raise result
    return result  # type: ignore[no-any-return]


def batch(*cmds: Cmd[Any]) -> Flow[List[Any]]:
    """Several commands in one round trip; error replies come back in place, not raised."""
    results = yield RoundTrip(tuple(cmds))
    return list(results)


def sleep(seconds: float) -> Flow[None]:
    if seconds > 0:
        yield Sleep(seconds)


def _parsed(cmd: Cmd[Any], raw: Any) -> Any:
    if isinstance(raw, redis.exceptions.RedisError):
        return from_redis(raw)
    if isinstance(raw, BaseException):
        return raw
    return cmd.parse(raw)


def _execute_command(target: object) -> Any:
    # redis-py's execute_command is untyped in some releases and typed in others.
    return getattr(target, "execute_command")


def execute(client: "redis.Redis", trip: RoundTrip) -> List[Any]:
    if len(trip.cmds) == 1:
        cmd = trip.cmds[0]
        try:
            raw: Any = _execute_command(client)(*cmd.args)
        except redis.exceptions.ResponseError as exc:
            raw = exc
        return [_parsed(cmd, raw)]
    with client.pipeline(transaction=False) as pipe:
        for cmd in trip.cmds:
            _execute_command(pipe)(*cmd.args)
        raws = pipe.execute(raise_on_error=False)
    return [_parsed(cmd, raw) for cmd, raw in zip(trip.cmds, raws)]


async def aexecute(client: "redis.asyncio.Redis", trip: RoundTrip) -> List[Any]:
    if len(trip.cmds) == 1:
        cmd = trip.cmds[0]
        try:
            raw: Any = await _execute_command(client)(*cmd.args)
        except redis.exceptions.ResponseError as exc:
            raw = exc
        return [_parsed(cmd, raw)]
    async with client.pipeline(transaction=False) as pipe:
        for cmd in trip.cmds:
            _execute_command(pipe)(*cmd.args)
        raws = await pipe.execute(raise_on_error=False)
    return [_parsed(cmd, raw) for cmd, raw in zip(trip.cmds, raws)]


def run(client: "redis.Redis", flow: Flow[T]) -> T:
    """Drives a flow to its end with blocking I/O. A lost connection is thrown into the flow (so
    it can clean up) as SluiceConnectionError. An interrupt (KeyboardInterrupt, or any other
    BaseException) during a round trip or a sleep is thrown into the flow as well, which then
    gives back what it holds; the interrupt is raised afterwards whatever the flow does."""
    reply: Any = None
    error: Union[BaseException, None] = None
    while True:
        try:
            op = flow.throw(error) if error is not None else flow.send(reply)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        error, reply = None, None
        try:
            if isinstance(op, Sleep):
                time.sleep(op.seconds)
            else:
                reply = execute(client, op)
        except redis.exceptions.RedisError as exc:
            error = from_redis(exc)
        except BaseException as exc:
            _drain(client, flow, exc)
            raise


def _drain(client: "redis.Redis", flow: Flow[Any], interrupt: BaseException) -> None:
    """Throws `interrupt` into the flow and runs the clean-up it does then (its round trips; no
    sleeps), swallowing what it raises: the caller raises the interrupt."""
    reply: Any = None
    error: Union[BaseException, None] = interrupt
    while True:
        try:
            op = flow.throw(error) if error is not None else flow.send(reply)
        except BaseException as exc:  # StopIteration, the interrupt re-raised, or a clean-up error
            if not isinstance(exc, StopIteration) and exc is not interrupt:
                log.debug("clean-up after %r raised %r", interrupt, exc)
            return
        error, reply = None, None
        if isinstance(op, Sleep):
            continue
        try:
            reply = execute(client, op)
        except redis.exceptions.RedisError as exc:
            error = from_redis(exc)


async def arun(client: "redis.asyncio.Redis", flow: Flow[T], *, shielded: bool = False) -> T:
    """The asyncio driver. A cancellation (or another BaseException) during a round trip or a
    sleep is thrown into the flow, whose clean-up then runs in a task of its own that a second
    cancellation cannot stop halfway; the cancellation is raised afterwards. With `shielded`,
    the whole flow runs in such a task (for flows that only give back: __aexit__)."""
    if shielded:
        task = asyncio.ensure_future(arun(client, flow))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            if not task.done():
                # Cancelled while the flow runs: it goes on (and finishes) in its task.
                task.add_done_callback(_log_failure)
            raise
    reply: Any = None
    error: Union[BaseException, None] = None
    while True:
        try:
            op = flow.throw(error) if error is not None else flow.send(reply)
        except StopIteration as stop:
            return stop.value  # type: ignore[no-any-return]
        error, reply = None, None
        try:
            if isinstance(op, Sleep):
                await asyncio.sleep(op.seconds)
            else:
                reply = await aexecute(client, op)
        except redis.exceptions.RedisError as exc:
            error = from_redis(exc)
        except BaseException as exc:
            cleanup = asyncio.ensure_future(_adrain(client, flow, exc))
            try:
                await asyncio.shield(cleanup)
            except BaseException:
                cleanup.add_done_callback(_log_failure)  # cancelled again: it finishes on its own
            raise


async def _adrain(client: "redis.asyncio.Redis", flow: Flow[Any], interrupt: BaseException) -> None:
    reply: Any = None
    error: Union[BaseException, None] = interrupt
    while True:
        try:
            op = flow.throw(error) if error is not None else flow.send(reply)
        except BaseException as exc:
            if not isinstance(exc, StopIteration) and exc is not interrupt:
                log.debug("clean-up after %r raised %r", interrupt, exc)
            return
        error, reply = None, None
        if isinstance(op, Sleep):
            continue
        try:
            reply = await aexecute(client, op)
        except redis.exceptions.RedisError as exc:
            error = from_redis(exc)


def _log_failure(task: "asyncio.Future[Any]") -> None:
    if not task.cancelled() and task.exception() is not None:
        log.warning("sluice clean-up failed: %r", task.exception())


def raise_first(results: Sequence[Any]) -> None:
    for result in results:
        if isinstance(result, SluiceError):
            raise result
