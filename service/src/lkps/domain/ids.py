"""The identifiers the service reads and makes: Entra app IDs in canonical form, new random IDs.

One rule for every agent ID the service reads (a body's ``agent_entra_app_id``, the gateway's client-id
header, a token's ``azp``/``appid``): a GUID in its standard text form, 8-4-4-4-12 hex digits, either case,
nothing around it. Python's ``uuid.UUID`` also takes ``urn:uuid:``, braces, no hyphens and hyphens anywhere,
so the same agent could be named many ways; those are refused, and the canonical form is lower case.
"""

from __future__ import annotations

import re
import uuid

# The namespace of developer agents' IDs (uuid5 of a user's object ID): fixed forever, or a developer's agent
# would change its ID.
DEVELOPER_AGENTS = uuid.UUID("6f1d2a7e-3b4c-4d5e-8f90-a1b2c3d4e5f6")

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


def developer_agent_id(user_oid: str) -> str:
    """The agent a user registers with a delegated token (``az login``): a version 5 UUID of the user's Entra
    object ID. One per user (two developers never share it, and a user gets the same one every time), and
    never an application's ID (Entra app IDs are random, version 4), so no user can register as an app's
    agent or as another user's."""
    return str(uuid.uuid5(DEVELOPER_AGENTS, user_oid.lower()))
