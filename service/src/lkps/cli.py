"""The ``lkps`` command: ``serve``, ``migrate`` and ``dev`` (SQLite, migrations applied on start)."""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import logging
import secrets
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from pydantic import SecretStr

from . import __version__
from .app import server, setup_logging
from .revocation import UnknownAgentError, revoke_agent
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
    # -- agents (issue 23: the relay's operator revocation)
    agents = commands.add_parser("agents", help="operate on agents").add_subparsers(
        dest="action", required=True
    )
    revoke = agents.add_parser(
        "revoke",
        help="cut an agent off now: its workers are closed within LKPS_RELAY_CHECK_INTERVAL and every "
        "token issued to it so far stops working (remove its Entra app role first to keep it from "
        "registering again)",
    )
    revoke.add_argument("app_id", metavar="app-id", help="the agent's Entra app (client) ID")
    # -- end agents
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"lkps: {exc}", file=sys.stderr)
        return 2
    if args.command == "dev":
        settings = settings.model_copy(update={"migrate_on_start": True, "log_format": "text"})
    setup_logging(settings)
    for warning in Settings.unknown_variables():
        log.warning(warning)
    if args.command == "agents":
        return _agents(settings, args)
    if args.command == "serve" and settings.agent_token_secret is None:
        print(
            "lkps: LKPS_AGENT_TOKEN_SECRET is not set: it signs agent tokens (every replica needs the same"
            " one, and LiveKit must not know it); generate one with `openssl rand -base64 48`",
            file=sys.stderr,
        )
        return 2
    if args.command == "dev" and settings.agent_token_secret is None:
        settings = settings.model_copy(update={"agent_token_secret": SecretStr(secrets.token_urlsafe(48))})
        log.warning(
            "LKPS_AGENT_TOKEN_SECRET is not set: agent tokens are signed with a key made for this process"
            " (they stop working when it stops, and no other replica takes them)"
        )
    if args.command == "migrate":
        migrate.upgrade(settings.database_url)
        log.info("database migrated", extra={"database": settings.database_url.split("://", 1)[0]})
        return 0
    return _serve(settings, args.host, args.port)


def _agents(settings: Settings, args: argparse.Namespace) -> int:
    """``lkps agents revoke <app-id>`` (the only action so far)."""
    now = dt.datetime.now(dt.timezone.utc)
    try:
        revocation = asyncio.run(revoke_agent(settings, args.app_id, now))
    except (ValueError, UnknownAgentError) as exc:
        print(f"lkps: {exc}", file=sys.stderr)
        return 2
    log.warning(
        "agent revoked",
        extra={
            "agent_entra_app_id": revocation.entra_app_id,
            "revoked_at": revocation.revoked_at.isoformat(),
        },
    )
    return 0


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
