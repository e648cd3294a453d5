"""``python -m livekit_platform_testing.livekit``: the LiveKit stand-in as a process that prints its URLs."""

from __future__ import annotations

import argparse
import logging
import os

from ..server import serve_forever
from .standin import LiveKitStandIn


def main(argv: list[str] | None = None) -> None:
    """``python -m livekit_platform_testing.livekit``: serve until SIGTERM, print one JSON line.

    Key and secret come from ``--api-key``/``--api-secret`` or ``LIVEKIT_API_KEY``/``LIVEKIT_API_SECRET``;
    with neither, a random pair is generated and the JSON line carries ``api_secret`` (the only way the caller
    can learn it). A secret the caller supplied is never printed.
    """
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0 picks a free one)")
    parser.add_argument("--api-key", default=os.environ.get("LIVEKIT_API_KEY"))
    parser.add_argument("--api-secret", default=os.environ.get("LIVEKIT_API_SECRET"))
    parser.add_argument("--webhook-url", default=None, help="where to POST signed webhooks")
    parser.add_argument(
        "--departure-timeout", type=float, default=20.0, help="seconds, unless roomConfig says"
    )
    args = parser.parse_args(argv)
    if (args.api_key is None) != (args.api_secret is None):
        parser.error("--api-key and --api-secret (or LIVEKIT_API_KEY/LIVEKIT_API_SECRET) go together")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    serve_forever(
        LiveKitStandIn(
            api_key=args.api_key,
            api_secret=args.api_secret,
            webhook_url=args.webhook_url,
            departure_timeout=args.departure_timeout,
            port=args.port,
        )
    )
