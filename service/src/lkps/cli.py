"""The ``lkps`` command: ``serve``, ``migrate`` and ``dev`` (SQLite, migrations applied on start)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from . import __version__
from .app import server, setup_logging
from .settings import Settings, SettingsError
from .storage import migrate

log = logging.getLogger("lkps")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lkps", description="LiveKit Platform Service")
    parser.add_argument("--version", action="version", version=f"lkps {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the HTTP service (run 'lkps migrate' first)")
    # All interfaces by default: inside a container the port is reachable only that way.
    serve.add_argument("--host", default="0.0.0.0", help="interface to bind (default: all)")  # noqa: S104
    serve.add_argument("--port", type=int, default=8080)
    commands.add_parser("migrate", help="bring the database schema to the latest revision")
    dev = commands.add_parser(
        "dev", help="run locally: readable logs, migrations on start (SQLite by default)"
    )
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8080)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"lkps: {exc}", file=sys.stderr)
        return 2
    unproven_gateway = settings.identity_mode == "gateway" and settings.gateway_shared_secret is None
    if args.command == "serve" and unproven_gateway:
        print(
            "lkps: LKPS_GATEWAY_SHARED_SECRET is not set: gateway mode trusts identity headers only from"
            " the gateway; set it to the secret the gateway sends in LKPS_GATEWAY_SECRET_HEADER"
            " (x-gateway-secret)",
            file=sys.stderr,
        )
        return 2
    if args.command == "dev":
        settings = settings.model_copy(update={"migrate_on_start": True, "log_format": "text"})
    setup_logging(settings)
    if args.command == "dev" and unproven_gateway:
        log.warning(
            "!!! GATEWAY MODE WITHOUT LKPS_GATEWAY_SHARED_SECRET: any caller that reaches this port can"
            " claim any identity with a header. Fine on a laptop, never on a shared host; 'lkps serve'"
            " refuses this."
        )
    for warning in Settings.unknown_variables():
        log.warning(warning)
    if args.command == "migrate":
        migrate.upgrade(settings.database_url)
        log.info("database migrated", extra={"database": settings.database_url.split("://", 1)[0]})
        return 0
    return _serve(settings, args.host, args.port)


def _serve(settings: Settings, host: str, port: int) -> int:
    process = server(settings, host, port)
    # uvicorn ends a signalled shutdown by re-raising the signal, with the handler that was installed
    # before it started: this one writes the log lines still batched for the event loop, then dies alike.
    signal.signal(signal.SIGTERM, _write_logs_then_die)
    process.run()
    return 0 if process.started else 1


def _write_logs_then_die(signum: int, frame: FrameType | None) -> None:
    logging.shutdown()
    signal.signal(signum, signal.SIG_DFL)
    signal.raise_signal(signum)


if __name__ == "__main__":
    sys.exit(main())
