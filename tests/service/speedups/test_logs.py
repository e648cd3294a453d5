"""Speedup ``logs``' handler: lines batched per event-loop iteration, never lost or reordered."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading
from collections.abc import Coroutine
from typing import Any

import pytest

from lkps.speedups.logs import BatchingStreamHandler, FastJsonFormatter


@pytest.fixture
def logged() -> tuple[logging.Logger, io.StringIO, BatchingStreamHandler]:
    stream = io.StringIO()
    handler = BatchingStreamHandler(stream)
    handler.setFormatter(FastJsonFormatter())
    logger = logging.Logger("lkps.test", logging.INFO)  # outside the hierarchy: no pytest capture handlers
    logger.addHandler(handler)
    return logger, stream, handler


def messages(stream: io.StringIO) -> list[str]:
    return [json.loads(line)["msg"] for line in stream.getvalue().splitlines()]


def test_without_a_running_loop_each_line_is_written_at_once(
    logged: tuple[logging.Logger, io.StringIO, BatchingStreamHandler],
) -> None:
    logger, stream, _ = logged
    logger.info("one", extra={"n": 1})
    assert messages(stream) == ["one"]
    assert json.loads(stream.getvalue())["n"] == 1


async def test_lines_of_one_loop_iteration_are_written_together_right_after_it(
    logged: tuple[logging.Logger, io.StringIO, BatchingStreamHandler],
) -> None:
    logger, stream, _ = logged
    writes: list[str] = []
    original = stream.write

    def counting_write(text: str) -> int:
        writes.append(text)
        return original(text)

    stream.write = counting_write  # type: ignore[method-assign]
    for i in range(3):
        logger.info(f"line {i}")
    assert messages(stream) == []  # not yet: still in the same iteration
    await asyncio.sleep(0)
    assert messages(stream) == ["line 0", "line 1", "line 2"]
    assert len(writes) == 1  # one write for the three lines
    logger.info("next")
    await asyncio.sleep(0)
    assert messages(stream)[-1] == "next"


async def test_a_line_from_another_thread_keeps_the_order(
    logged: tuple[logging.Logger, io.StringIO, BatchingStreamHandler],
) -> None:
    logger, stream, _ = logged
    logger.info("from the loop")
    thread = threading.Thread(target=lambda: logger.warning("from a thread"))
    thread.start()
    thread.join()
    # the thread's line is written at once, after the loop's pending one
    assert messages(stream) == ["from the loop", "from a thread"]
    await asyncio.sleep(0)
    assert messages(stream) == ["from the loop", "from a thread"]


def test_a_loop_that_ended_with_lines_pending_leaves_none_behind(
    logged: tuple[logging.Logger, io.StringIO, BatchingStreamHandler],
) -> None:
    logger, stream, _ = logged

    loop = asyncio.new_event_loop()

    def stop_then_log() -> None:
        loop.stop()  # the loop ends with this iteration: the write the line schedules never runs
        logger.info("pending when the loop stops")

    loop.call_soon(stop_then_log)
    loop.run_forever()
    loop.close()
    assert messages(stream) == []
    logger.info("after the loop")  # no loop now: written at once, after the one left pending
    assert messages(stream) == ["pending when the loop stops", "after the loop"]


def test_a_second_loop_in_the_same_thread_gets_its_lines_written(
    logged: tuple[logging.Logger, io.StringIO, BatchingStreamHandler],
) -> None:
    logger, stream, _ = logged

    async def log_twice(name: str) -> None:
        logger.info(f"{name} 1")
        logger.info(f"{name} 2")

    first = asyncio.new_event_loop()
    first.call_soon(first.stop)
    first.call_soon(lambda: (logger.info("first 1"), logger.info("first 2")))  # written by no iteration
    first.run_forever()
    first.close()
    asyncio.run(log_and_yield(log_twice("second")))
    assert messages(stream) == ["first 1", "first 2", "second 1", "second 2"]


async def log_and_yield(logging_done: Coroutine[Any, Any, None]) -> None:
    await logging_done
    await asyncio.sleep(0)


async def test_lines_after_the_first_of_an_iteration_do_not_look_the_loop_up(
    logged: tuple[logging.Logger, io.StringIO, BatchingStreamHandler],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    logger, stream, _ = logged
    lookups: list[None] = []
    real = asyncio.get_running_loop

    def counted() -> asyncio.AbstractEventLoop:
        lookups.append(None)
        return real()

    monkeypatch.setattr(asyncio, "get_running_loop", counted)
    for i in range(5):
        logger.info(f"line {i}")
    assert len(lookups) == 1
    await asyncio.sleep(0)
    assert messages(stream) == [f"line {i}" for i in range(5)]


async def test_flush_and_close_write_what_is_pending(
    logged: tuple[logging.Logger, io.StringIO, BatchingStreamHandler],
) -> None:
    logger, stream, handler = logged
    logger.info("pending at flush")
    handler.flush()
    assert messages(stream) == ["pending at flush"]
    logger.info("pending at close")
    handler.close()
    assert messages(stream) == ["pending at flush", "pending at close"]


async def test_a_record_that_cannot_be_formatted_is_reported_and_the_others_written(
    logged: tuple[logging.Logger, io.StringIO, BatchingStreamHandler],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    logger, stream, handler = logged
    reported: list[logging.LogRecord] = []
    monkeypatch.setattr(handler, "handleError", reported.append)
    logger.info("fine")
    logger.info("broken %d", "not a number")
    logger.info("also fine")
    await asyncio.sleep(0)
    assert messages(stream) == ["fine", "also fine"]
    assert [r.msg for r in reported] == ["broken %d"]
