"""OpenTelemetry's SDK for the telemetry tests: spans to an in-memory exporter, metrics
to an in-memory reader, both set as the process's global providers once (the API lets
them be set once). A test sees only what was emitted while it ran."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from opentelemetry import metrics, trace
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider, ObservableGauge
from opentelemetry.sdk.metrics.export import AggregationTemporality, InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.worker.conftest import WorkerOnFace


class _WhileListening(SimpleSpanProcessor):
    """Exports only while a test listens: the rest of a test session, whose stores emit
    to the same global provider, leaves nothing behind."""

    listening = False

    def on_end(self, span: ReadableSpan) -> None:
        if self.listening:
            super().on_end(span)


@dataclass
class Spans:
    exporter: InMemorySpanExporter
    processor: _WhileListening

    def finished(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def named(self, name: str) -> list[ReadableSpan]:
        return [span for span in self.finished() if span.name == name]

    def one(self, name: str) -> ReadableSpan:
        [span] = self.named(name)
        return span

    def parent_of(self, span: ReadableSpan) -> ReadableSpan | None:
        if span.parent is None:
            return None
        [parent] = [s for s in self.finished() if s.context.span_id == span.parent.span_id]
        return parent

    def children_of(self, span: ReadableSpan) -> list[ReadableSpan]:
        return [
            s
            for s in self.finished()
            if s.parent is not None and s.parent.span_id == span.context.span_id
        ]


@dataclass
class Metrics:
    """What the instruments recorded since the test began (delta temporality: each
    reading is what was recorded since the one before)."""

    reader: InMemoryMetricReader
    recorded: dict[str, list[tuple[dict[str, Any], Any]]] = field(default_factory=dict)

    def read(self) -> dict[str, list[tuple[dict[str, Any], Any]]]:
        """Collect now: each instrument's points as (attributes, value or count)."""
        data = self.reader.get_metrics_data()
        for resource in data.resource_metrics if data else []:
            for scope in resource.scope_metrics:
                for metric in scope.metrics:
                    points = self.recorded.setdefault(metric.name, [])
                    for point in metric.data.data_points:
                        value = getattr(point, "value", None)
                        if value is None:
                            value = point.count  # a histogram's: how many it recorded
                        points.append((dict(point.attributes or {}), value))
        return self.recorded

    def total(self, name: str) -> Any:
        return sum(value for _, value in self.read().get(name, []))


_SDK: dict[str, Any] = {}


def _sdk() -> dict[str, Any]:
    """The global providers, set once for the process."""
    if not _SDK:
        exporter = InMemorySpanExporter()
        processor = _WhileListening(exporter)
        tracer_provider = TracerProvider()
        tracer_provider.add_span_processor(processor)
        trace.set_tracer_provider(tracer_provider)
        delta = AggregationTemporality.DELTA
        reader = InMemoryMetricReader(
            preferred_temporality={Counter: delta, Histogram: delta, ObservableGauge: delta}
        )
        metrics.set_meter_provider(MeterProvider(metric_readers=[reader]))
        _SDK.update(exporter=exporter, processor=processor, reader=reader)
    return _SDK


@pytest.fixture
def spans() -> Iterator[Spans]:
    """The spans that ended while the test ran."""
    sdk = _sdk()
    sdk["exporter"].clear()
    sdk["processor"].listening = True
    try:
        yield Spans(sdk["exporter"], sdk["processor"])
    finally:
        sdk["processor"].listening = False
        sdk["exporter"].clear()


@pytest.fixture
def recorded() -> Metrics:
    """The metrics recorded while the test ran."""
    reader = _sdk()["reader"]
    reader.get_metrics_data()  # what came before is read, and left out
    return Metrics(reader)


@pytest.fixture
def workers(db_url: str, face: str) -> WorkerOnFace:
    return WorkerOnFace(db_url, face)
