"""The service's JSON log lines, from the plain formatter and from speedup ``logs``' (the same lines)."""

from __future__ import annotations

import json
import logging

import pytest

from lkps.observability.logs import JsonFormatter
from lkps.speedups.logs import FastJsonFormatter

FORMATTERS = pytest.mark.parametrize("formatter", [JsonFormatter, FastJsonFormatter])


def _record(**extra: object) -> logging.LogRecord:
    return logging.Logger("lkps.test").makeRecord(
        "lkps.test", logging.INFO, "(unknown file)", 0, "hello %s", ("world",), None, extra=extra
    )


@FORMATTERS
def test_a_json_line_holds_the_standard_fields_then_every_extra_in_order(
    formatter: type[JsonFormatter],
) -> None:
    record = _record(zeta=1, alpha="a", mid=[1, 2])
    record.created = 1_700_000_000.0429  # 2023-11-14T22:13:20.042 UTC
    line = formatter().format(record)
    assert list(json.loads(line).items()) == [
        ("ts", "2023-11-14T22:13:20.042+00:00"),
        ("level", "info"),
        ("logger", "lkps.test"),
        ("msg", "hello world"),
        ("zeta", 1),
        ("alpha", "a"),
        ("mid", [1, 2]),
    ]


@FORMATTERS
def test_extras_survive_another_formatter_and_a_filter_adding_fields(formatter: type[JsonFormatter]) -> None:
    record = _record(agent="a1", expires_in=3600)
    # A second handler's stdlib formatter adds message/asctime after the extras; a filter adds its own field.
    logging.Formatter("%(asctime)s %(message)s").format(record)
    record.request_id = "r-1"
    record._private = "hidden"
    fields = json.loads(formatter().format(record))
    assert {k: fields[k] for k in ("agent", "expires_in", "request_id")} == {
        "agent": "a1",
        "expires_in": 3600,
        "request_id": "r-1",
    }
    assert not {"message", "asctime", "_private", "args", "levelno"} & fields.keys()


@FORMATTERS
def test_a_record_without_extras_has_only_the_standard_fields(formatter: type[JsonFormatter]) -> None:
    assert set(json.loads(formatter().format(_record()))) == {"ts", "level", "logger", "msg"}


@FORMATTERS
def test_what_orjson_refuses_is_still_logged(formatter: type[JsonFormatter]) -> None:
    fields = json.loads(formatter().format(_record(big=2**70, when=object)))
    assert fields["big"] == 2**70
    assert "object" in fields["when"]


def test_both_formatters_write_the_same_line_at_every_millisecond() -> None:
    for ms in range(0, 1000, 7):
        record = _record(agent="a1", n=ms)
        record.created = 1_700_000_000 + ms / 1000 + 0.0004
        assert FastJsonFormatter().format(record) == JsonFormatter().format(record)
