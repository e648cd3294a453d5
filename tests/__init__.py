"""The test suite. A package only so ``tests.support`` (the shared helpers) imports by its full name; pytest
collects with ``--import-mode=importlib`` and the repository root on ``sys.path`` (see ``pyproject.toml``)."""
