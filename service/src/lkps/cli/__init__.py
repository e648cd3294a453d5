"""The ``lkps`` command: ``serve``, ``dev`` (SQLite, migrations applied on start), ``migrate`` (``--sql``: the
DDL for review), ``check-config``, and the admin views from the database: ``agents`` and ``sessions``.

A start-up failure is a few lines naming the variable, its problem and the fix, with exit status 2
(:mod:`.problems`); ``--help`` of each command lists the environment variables it reads.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import textwrap
from collections.abc import Sequence
from types import FrameType

from .. import __version__
from ..app import server, setup_logging
from ..settings import DatabaseSettings, Settings, SettingsError, redacted_database_url
from . import check_config, listings, startup
from .problems import EXIT_CONFIG, OperatorError

log = logging.getLogger("lkps")


def _environment(cls: type[DatabaseSettings], extra: str = "") -> str:
    names = ", ".join(cls.variables().values())
    return textwrap.fill(f"environment: {names}{extra}", width=100, break_on_hyphens=False)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lkps", description="LiveKit Platform Service")
    parser.add_argument("--version", action="version", version=f"lkps {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    every = _environment(Settings, " (and the OTEL_EXPORTER_OTLP_* variables the exporter reads)")
    database = _environment(DatabaseSettings) + "\n(other LKPS_* variables are ignored by this command)"

    def command(name: str, help: str, epilog: str) -> argparse.ArgumentParser:
        return commands.add_parser(
            name,
            help=help,
            description=help,
            epilog=epilog,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )

    serve = command("serve", "run the HTTP service (run 'lkps migrate' first)", every)
    # All interfaces by default: inside a container the port is reachable only that way.
    serve.add_argument("--host", default="0.0.0.0", help="interface to bind (default: all)")  # noqa: S104
    serve.add_argument("--port", type=int, default=8080)
    migrate = command("migrate", "bring the database schema to the latest revision", database)
    migrate.add_argument(
        "--sql",
        action="store_true",
        help="print the DDL instead of running it (PostgreSQL's, without connecting), for review",
    )
    migrate.add_argument("--from", dest="start", metavar="REVISION", help="with --sql: from this revision")
    dev = command("dev", "run locally: readable logs, migrations on start (SQLite by default)", every)
    dev.add_argument("--host", default="127.0.0.1")
    dev.add_argument("--port", type=int, default=8080)
    check = command("check-config", "validate the settings and print them, secrets redacted", every)
    check.add_argument("--json", action="store_true", help="one JSON object")
    agents = command(
        "agents", "list registered agents: state, last registration, expiry, revocation", database
    )
    sessions = command("sessions", "list session lifecycle rows, newest first", database)
    listings.add_arguments(agents, sessions)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _run(args)
    except SettingsError as exc:
        print(f"lkps: {exc}", file=sys.stderr)
    except OperatorError as exc:
        print(f"lkps {args.command}: {exc}", file=sys.stderr)
    return EXIT_CONFIG


def _run(args: argparse.Namespace) -> int:
    if args.command in ("migrate", "agents", "sessions"):
        return _database_command(args)
    settings = Settings.from_env()
    if args.command == "check-config":
        print(check_config.report(settings, Settings.unknown_variables(), args.json))
        return 0
    unproven_gateway = settings.identity_mode == "gateway" and settings.gateway_shared_secret is None
    if args.command == "serve" and unproven_gateway:
        raise OperatorError(
            "LKPS_GATEWAY_SHARED_SECRET is not set: gateway mode trusts identity headers only from the"
            " gateway; set it to the secret the gateway sends in LKPS_GATEWAY_SECRET_HEADER"
            f" ({settings.gateway_secret_header})"
        )
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
    startup.check(settings, args.host, args.port)  # migrates first with LKPS_MIGRATE_ON_START
    return _serve(settings.model_copy(update={"migrate_on_start": False}), args.host, args.port)


def _database_command(args: argparse.Namespace) -> int:
    settings = DatabaseSettings.from_env()
    if args.command == "migrate" and args.sql:
        sys.stdout.write(startup.sql(settings, args.start))
        return 0
    setup_logging(settings)
    for warning in DatabaseSettings.unknown_variables():
        log.warning(warning)
    if args.command == "migrate":
        startup.upgrade(settings)
        log.info("database migrated", extra={"database": redacted_database_url(settings.database_url)})
    elif args.command == "sessions":
        print(listings.sessions(settings, args))
    elif getattr(args, "action", None) is None:  # lkps agents: the list (actions such as revoke may follow)
        print(listings.agents(settings, args))
    else:
        raise AssertionError(f"lkps agents {args.action}: no handler")
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
