"""``python -m livekit_platform_testing.otlp``: see ``cli.main``."""

from .cli import main

main()
