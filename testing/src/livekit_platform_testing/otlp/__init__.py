"""An OTLP/HTTP trace collector: ``POST /v1/traces``, spans kept as plain records.

``OtlpStandIn`` (``standin``) keeps what arrives in ``SpanStore`` (``models``); the wire is ``responses``,
routed by ``urls``; ``records`` holds the span and export records. ``python -m livekit_platform_testing.otlp``
runs it.
"""

from .cli import main
from .records import ExportRecord, ReceivedSpan
from .responses import PROTOBUF
from .standin import OtlpStandIn

__all__ = ["PROTOBUF", "ExportRecord", "OtlpStandIn", "ReceivedSpan", "main"]
