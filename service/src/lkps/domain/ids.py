"""The identifiers the service reads and makes: Entra app IDs in canonical form, new random IDs."""

from __future__ import annotations

import uuid


class Ids:
    def canonical(self, value: str) -> str:
        """``value`` as a canonical lower-case GUID; ``ValueError`` if it is none."""
        return str(uuid.UUID(value))

    def new(self) -> str:
        """A random (version 4) UUID in canonical form."""
        return str(uuid.uuid4())
