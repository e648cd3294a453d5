"""The service's own counter and histogram families (plain ints, read at scrape time) expose exactly what
prometheus_client's Counter and Histogram expose for the same increments and observations, and the series a
request is looked up by cannot be grown by what a caller sends."""

from __future__ import annotations

import tracemalloc
from collections.abc import Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from lkps.observability.metrics import CounterFamily, HistogramFamily, Metrics

BOUNDS = (0.001, 0.0025, 0.005, 0.01, 0.1, 1.0)
LABELS = st.sampled_from(["a", "b", "c"])
# values on the bounds themselves, between them, and outside them
SECONDS = st.one_of(st.sampled_from([0.0, *BOUNDS]), st.floats(min_value=0, max_value=5, allow_nan=False))


class _One(Collector):
    def __init__(self, family: CounterFamily | HistogramFamily) -> None:
        self.family = family

    def collect(self) -> Iterator[Metric]:
        yield self.family.collect()


def samples(registry: CollectorRegistry) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = generate_latest(registry).decode()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if not sample.name.endswith("_created")  # prometheus_client's start times; ours have none
    }


@given(st.lists(st.tuples(LABELS, st.integers(min_value=0, max_value=3)), max_size=30))
def test_a_counter_family_exposes_what_prometheus_clients_counter_does(incs: list[tuple[str, int]]) -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    counter = Counter("x_things", "Things.", ["kind"], registry=theirs)
    family = CounterFamily("x_things", "Things.", ["kind"])
    ours.register(_One(family))
    for label, amount in incs:
        counter.labels(label).inc(amount)
        family.labels(label).inc(amount)
    assert samples(ours) == samples(theirs)


@given(st.lists(st.tuples(LABELS, SECONDS), max_size=40))
def test_a_histogram_family_buckets_sums_and_counts_like_prometheus_clients_histogram(
    observations: list[tuple[str, float]],
) -> None:
    theirs, ours = CollectorRegistry(), CollectorRegistry()
    histogram = Histogram("x_seconds", "Durations.", ["route"], buckets=BOUNDS, registry=theirs)
    family = HistogramFamily("x_seconds", "Durations.", BOUNDS, ["route"])
    ours.register(_One(family))
    for label, seconds in observations:
        histogram.labels(label).observe(seconds)
        family.labels(label).observe(seconds)
    mine, reference = samples(ours), samples(theirs)
    assert mine.keys() == reference.keys()
    for key, expected in reference.items():
        assert mine[key] == pytest.approx(expected), key


def test_an_unlabelled_family_exposes_zero_before_its_first_increment() -> None:
    registry = CollectorRegistry()
    registry.register(_One(CounterFamily("x_revocations", "Revocations.")))
    assert samples(registry) == {("x_revocations_total", frozenset()): 0.0}


def test_labels_of_the_wrong_arity_are_refused() -> None:
    with pytest.raises(ValueError, match="x_things"):
        CounterFamily("x_things", "Things.", ["kind"]).labels("a", "b")
    with pytest.raises(ValueError, match="x_seconds"):
        HistogramFamily("x_seconds", "Durations.", BOUNDS, ["route"]).labels()


def test_a_labelled_family_refuses_to_count_itself() -> None:
    """Its own count would never be exported (a silent loss): refused, as prometheus_client refuses it."""
    with pytest.raises(ValueError, match=r"x_things: a labelled counter counts through labels\(kind\)"):
        CounterFamily("x_things", "Things.", ["kind"]).inc()
    with pytest.raises(ValueError, match=r"x_seconds: a labelled histogram observes through labels\(route\)"):
        HistogramFamily("x_seconds", "Durations.", BOUNDS, ["route"]).observe(0.1)
    unlabelled = CounterFamily("x_revocations", "Revocations.")
    unlabelled.inc()
    histogram = HistogramFamily("x_graph_seconds", "Durations.", BOUNDS)
    histogram.observe(0.1)
    assert (unlabelled.value, sum(histogram.counts)) == (1, 1)


def test_what_a_caller_sends_never_becomes_a_remembered_key() -> None:
    # Unknown paths, methods and events are looked up by their label each time; remembering them under what
    # the caller sent would let a scan of distinct paths grow the process without bound.
    metrics = Metrics(routes=["/api/agent/register"])
    for n in range(200):  # warm: the service's own keys and the label series exist
        metrics.request_durations("/api/agent/register", "POST", 200).observe(0.001)
        metrics.request_durations(f"/scan/{n}", f"X{n}", 404).observe(0.001)
        metrics.webhook(f"made_up_{n}", "ignored")
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        for n in range(20_000):
            metrics.request_durations(f"/scan/{n:032x}", f"BREW{n}", 404).observe(0.001)
            metrics.webhook(f"made_up_event_{n:032x}", "ignored")
        grown = sum(s.size_diff for s in tracemalloc.take_snapshot().compare_to(before, "filename"))
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024, f"{grown} bytes kept after 20,000 distinct unknown paths and events"
