"""``python -m lkps``: the same command as ``lkps``."""

import sys

from .cli import main

sys.exit(main())
