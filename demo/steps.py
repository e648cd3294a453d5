"""Named, timed steps: each one's duration and outcome, for the demo's report."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass


@dataclass
class Step:
    name: str
    seconds: float = 0.0
    ok: bool = False
    error: str = ""


class Steps:
    def __init__(self) -> None:
        self.done: list[Step] = []

    @contextmanager
    def step(self, name: str) -> Iterator[Step]:
        """Time the block; an exception marks the step failed (with its message) and propagates."""
        current = Step(name)
        self.done.append(current)
        print(f"  ... {name}", flush=True)
        started = time.monotonic()
        try:
            yield current
        except BaseException as exc:
            current.error = f"{type(exc).__name__}: {exc}".strip()
            raise
        else:
            current.ok = True
        finally:
            current.seconds = time.monotonic() - started

    @property
    def failed(self) -> list[Step]:
        return [s for s in self.done if not s.ok]
