"""What the audit records: each agent token issued, each revocation, each session requested."""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

from .sessions import SessionFacts


class Registration(NamedTuple):
    """One agent token issued: a row in ``agent_registrations``, and the agent's row in ``agents``."""

    id: str  # also in the token's worker identity, so either leads to the other
    entra_app_id: str
    worker_identity: str
    requested_by: str | None
    client_id: str | None
    requester_email: str | None
    identity_mode: str
    enforce_client_authz: bool
    issued_at: dt.datetime  # the token's nbf (whole seconds)
    expires_at: dt.datetime  # the token's exp
    # When the service registered the agent, to the microsecond: orders it against revocations.
    registered_at: dt.datetime


class Revocation(NamedTuple):
    """A registration refused for a missing app role: the agent's earlier registrations are revoked."""

    entra_app_id: str
    revoked_at: dt.datetime


AuditRecord = Registration | Revocation | SessionFacts
