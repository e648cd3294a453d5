"""What the audit records: each agent token issued, each revocation, each session requested, and what the
relay saw: worker connections (registered or refused) and job assignments."""

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


class WorkerConnection(NamedTuple):
    """A worker's connection to the relay: registered with LiveKit (as ``worker_id``), or refused and why."""

    id: str
    entra_app_id: str  # the agent its token was issued to
    worker_identity: str
    registration_id: str  # the agent_registrations row of its token
    announced_agent_name: str  # the name its RegisterWorkerRequest announced
    outcome: str  # "registered" or "refused"
    reason: str | None
    worker_id: str | None
    opened_at: dt.datetime


class WorkerClosed(NamedTuple):
    """A relayed worker connection's end: when, the close code, and why."""

    id: str  # the WorkerConnection's
    closed_at: dt.datetime
    close_code: int
    close_reason: str


class JobAssigned(NamedTuple):
    """A job LiveKit assigned to a worker, as the relay passed it on: who really served the session."""

    id: str
    job_id: str
    room_name: str
    worker_id: str
    entra_app_id: str
    worker_identity: str
    registration_id: str
    connection_id: str
    assigned_at: dt.datetime


RelayRecord = WorkerConnection | WorkerClosed | JobAssigned
AuditRecord = Registration | Revocation | SessionFacts | RelayRecord
