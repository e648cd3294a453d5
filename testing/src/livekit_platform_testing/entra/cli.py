"""``python -m livekit_platform_testing.entra``: the Entra stand-in as a process that prints its URLs."""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from ..server import serve_forever
from .standin import EntraStandIn


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m livekit_platform_testing.entra",
        description="Run the Entra ID / Microsoft Graph / IMDS stand-in; prints one JSON line of URLs.",
    )
    parser.add_argument("--port", type=int, default=0, help="HTTPS port (default: any free port)")
    parser.add_argument(
        "--imds-port", type=int, default=0, help="plain-HTTP IMDS port (default: any free port)"
    )
    parser.add_argument("--tenant-id", default=None, help="tenant ID (default: a new GUID)")
    parser.add_argument("--config", type=Path, default=None, help="JSON file of apps etc. to preload")
    parser.add_argument("--token-lifetime", type=int, default=3600, help="access token lifetime in seconds")
    args = parser.parse_args(argv)
    try:
        standin = EntraStandIn(
            tenant_id=args.tenant_id,
            port=args.port,
            imds_port=args.imds_port,
            token_lifetime=args.token_lifetime,
        )
        if args.config is not None:
            standin.load_config(json.loads(args.config.read_text()))
    except (OSError, ValueError, LookupError) as exc:
        parser.error(f"--config {args.config}: {exc}" if args.config else str(exc))
    serve_forever(standin)
