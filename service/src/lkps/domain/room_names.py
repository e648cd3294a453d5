"""Session room names, ``{cwid}-{agent app id}-{unix ts}-{32 hex}``: the last part is 128 random bits.

A room name is the only thing that keeps one user's join out of another's room, and replicas draw names
without asking each other or the database. So the random part alone makes a repeat negligible: at 1,000
session starts a second, all for one caller and agent and across every replica together, a repeat within
one second has probability about n²/2 / 2**128 = 1,000² / 2 / 3.4e38 ≈ 1.5e-33, and within a year
(3.2e7 seconds) about 4.6e-26. Even ignoring the caller, agent and second (every name ever issued drawn from
one pool), 100 years at that rate (3.2e12 names) give (3.2e12)² / 2 / 2**128 ≈ 1.5e-14.
(The earlier 4 hex digits, 65,536 names a caller, agent and second, needed an in-process memory of issued
names and still let replicas collide.)
"""

from __future__ import annotations

import re
import secrets

# Room names carry the caller's CWID; anything outside this set is replaced so names stay URL- and log-safe.
_UNSAFE_CWID = re.compile(r"[^A-Za-z0-9._@]")
MAX_CWID = 64
RANDOM_BYTES = 16  # 128 bits from the operating system's CSPRNG (``secrets``)
_AGENT_ID_LENGTH = 36  # a GUID's text


class RoomNames:
    def cwid(self, raw: str) -> str:
        """The caller's CWID as room names carry it: unsafe characters replaced, at most 64 long."""
        return _UNSAFE_CWID.sub("_", raw)[:MAX_CWID]

    def random_part(self) -> str:
        """:data:`RANDOM_BYTES` random bytes as lower-case hex."""
        return secrets.token_hex(RANDOM_BYTES)

    def new(self, cwid: str, agent_id: str, second: int) -> str:
        """A room name for a session started at ``second`` (unix time)."""
        return f"{cwid}-{agent_id}-{second}-{self.random_part()}"


def agent_app_id_from_room(room_name: str) -> str | None:
    """The agent's app ID in a room name of the form above (the GUID before the last two parts), if any."""
    head, _, _ = room_name.rpartition("-")
    head, _, _ = head.rpartition("-")
    candidate = head[-_AGENT_ID_LENGTH:]
    if len(candidate) == _AGENT_ID_LENGTH and candidate.count("-") == 4:
        return candidate.lower()
    return None
