"""``python -m livekit_platform_testing.otlp``: the OTLP stand-in as a process that prints its URLs."""

from __future__ import annotations

import argparse

from ..server import serve_forever
from .standin import OtlpStandIn


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Run the OTLP/HTTP trace collector stand-in; prints one JSON line of URLs."
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (default: a free one)")
    args = parser.parse_args(argv)
    serve_forever(OtlpStandIn(port=args.port))
