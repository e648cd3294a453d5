"""Session room names in the spec's form, ``{cwid}-{agent app id}-{unix ts}-{4 hex}``, never issued twice.

Four hex digits leave 65,536 names per caller, agent and second. Drawn at random, two of a few thousand
session starts in one second from one caller (a load test, a retrying client, a shared service account)
collide often: at 4,000 a second, about one start in forty would share a room with another session, whose
client would then join a stranger's room. So this process remembers the names it issued in the current
second and draws again on a repeat. (Replicas draw independently: a collision across two of them needs the
same caller, agent and second, and one chance in 65,536.)
"""

from __future__ import annotations

import secrets

from .errors import ApiError

_DRAWS = 64  # before giving up: with the second's names nearly used up, more draws rarely help


class RoomNames:
    def __init__(self) -> None:
        self._second = -1
        self._issued: set[str] = set()
        # Random bytes fetched 512 at a time: one getrandom system call per 256 names instead of one each.
        self._random = b""
        self._taken = 0

    def _hex4(self) -> str:
        if self._taken >= len(self._random):
            self._random, self._taken = secrets.token_bytes(512), 0
        start = self._taken
        self._taken += 2
        return self._random[start : start + 2].hex()

    def new(self, cwid: str, agent_id: str, second: int) -> str:
        """A room name for a session started at ``second`` (unix time) not issued before in that second."""
        if second != self._second:
            self._second, self._issued = second, set()
        prefix = f"{cwid}-{agent_id}-{second}-"
        for _ in range(_DRAWS):
            name = prefix + self._hex4()
            if name not in self._issued:
                self._issued.add(name)
                return name
        raise ApiError(
            503,
            "room_names_exhausted",
            "too many sessions were started for this caller and agent within one second; retry",
        )
