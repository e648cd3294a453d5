"""Session room names in the spec's form, ``{cwid}-{agent app id}-{unix ts}-{4 hex}``, never issued twice.

Four hex digits leave 65,536 names per caller, agent and second. Drawn at random, two of a few thousand
session starts in one second from one caller (a load test, a retrying client, a shared service account)
collide often: at 4,000 a second, about one start in forty would share a room with another session, whose
client would then join a stranger's room. So this process remembers the names it issued in the current
second and draws again on a repeat. (Replicas draw independently: a collision across two of them needs the
same caller, agent and second, and one chance in 65,536.)
"""

from __future__ import annotations

import re
import secrets

from ..errors import ApiError

_DRAWS = 64  # before giving up: with the second's names nearly used up, more draws rarely help
# Room names carry the caller's CWID; anything outside this set is replaced so names stay URL- and log-safe.
_UNSAFE_CWID = re.compile(r"[^A-Za-z0-9._@]")
MAX_CWID = 64
_AGENT_ID_LENGTH = 36  # a GUID's text


class RoomNames:
    def __init__(self) -> None:
        self._second = -1
        self._issued: set[str] = set()

    def cwid(self, raw: str) -> str:
        """The caller's CWID as room names carry it: unsafe characters replaced, at most 64 long."""
        return _UNSAFE_CWID.sub("_", raw)[:MAX_CWID]

    def hex4(self) -> str:
        """Four random hex digits."""
        return secrets.token_hex(2)

    def new(self, cwid: str, agent_id: str, second: int) -> str:
        """A room name for a session started at ``second`` (unix time) not issued before in that second."""
        if second != self._second:
            self._second, self._issued = second, set()
        prefix = f"{cwid}-{agent_id}-{second}-"
        for _ in range(_DRAWS):
            name = prefix + self.hex4()
            if name not in self._issued:
                self._issued.add(name)
                return name
        raise ApiError(
            503,
            "room_names_exhausted",
            "too many sessions were started for this caller and agent within one second; retry",
        )


def agent_app_id_from_room(room_name: str) -> str | None:
    """The agent's app ID in a room name of the form above (the GUID before the last two parts), if any."""
    head, _, _ = room_name.rpartition("-")
    head, _, _ = head.rpartition("-")
    candidate = head[-_AGENT_ID_LENGTH:]
    if len(candidate) == _AGENT_ID_LENGTH and candidate.count("-") == 4:
        return candidate.lower()
    return None
