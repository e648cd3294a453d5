"""The service's log handler: lines batched per event-loop iteration, never lost or reordered."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading

import pytest

from lkps.logs import BatchingStreamHandler, JsonFormatter


@pytest.fixture
def logged() -> tuple[logging.Logger, io.StringIO, BatchingStreamHandler]:
    stream = io.StringIO()
    handler = BatchingStreamHandler(stream)
    handler.setFormatter(JsonFormatter())
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


def _record(**extra: object) -> logging.LogRecord:
    return logging.Logger("lkps.test").makeRecord(
        "lkps.test", logging.INFO, "(unknown file)", 0, "hello %s", ("world",), None, extra=extra
    )


def test_a_json_line_holds_the_standard_fields_then_every_extra_in_order() -> None:
    record = _record(zeta=1, alpha="a", mid=[1, 2])
    record.created = 1_700_000_000.0429  # 2023-11-14T22:13:20.042 UTC
    line = JsonFormatter().format(record)
    assert list(json.loads(line).items()) == [
        ("ts", "2023-11-14T22:13:20.042+00:00"),
        ("level", "info"),
        ("logger", "lkps.test"),
        ("msg", "hello world"),
        ("zeta", 1),
        ("alpha", "a"),
        ("mid", [1, 2]),
    ]


def test_extras_survive_another_formatter_and_a_filter_adding_fields() -> None:
    record = _record(agent="a1", expires_in=3600)
    # A second handler's stdlib formatter adds message/asctime after the extras; a filter adds its own field.
    logging.Formatter("%(asctime)s %(message)s").format(record)
    record.request_id = "r-1"
    record._private = "hidden"
    fields = json.loads(JsonFormatter().format(record))
    assert {k: fields[k] for k in ("agent", "expires_in", "request_id")} == {
        "agent": "a1",
        "expires_in": 3600,
        "request_id": "r-1",
    }
    assert not {"message", "asctime", "_private", "args", "levelno"} & fields.keys()


def test_a_record_without_extras_has_only_the_standard_fields() -> None:
    assert set(json.loads(JsonFormatter().format(_record()))) == {"ts", "level", "logger", "msg"}
