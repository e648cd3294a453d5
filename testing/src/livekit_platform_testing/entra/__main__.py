"""``python -m livekit_platform_testing.entra``: see ``cli.main``."""

import sys

from .cli import main

main(sys.argv[1:])
