"""``python -m livekit_platform_testing.livekit``: see ``cli.main``."""

from .cli import main

main()
