"""The identifiers the service reads and makes: Entra app IDs in canonical form, new random IDs.

One rule for every agent ID the service reads (a body's ``agent_entra_app_id``, the gateway's client-id
header, a token's ``azp``/``appid``): a GUID in its standard text form, 8-4-4-4-12 hex digits, either case,
nothing around it. Python's ``uuid.UUID`` also takes ``urn:uuid:``, braces, no hyphens and hyphens anywhere,
so the same agent could be named many ways; those are refused, and the canonical form is lower case.
"""

from __future__ import annotations

import re
import uuid

GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


class Ids:
    def canonical(self, value: str) -> str:
        """``value`` as a canonical lower-case GUID; ``ValueError`` if it is not one in standard form."""
        if not GUID.fullmatch(value):
            raise ValueError("not a GUID in 8-4-4-4-12 form")
        return value.lower()

    def new(self) -> str:
        """A random (version 4) UUID in canonical form."""
        return str(uuid.uuid4())
