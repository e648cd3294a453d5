"""Local stand-ins for the systems an agent and the platform talk to, one subpackage per real system.

``entra`` (Entra ID + Microsoft Graph + the managed-identity endpoint + a Kubernetes service-account issuer),
``livekit`` (the LiveKit server), ``otlp`` (an OTLP/HTTP collector) and ``platform`` (the LiveKit Platform
Service's register endpoint) speak the real wire protocols on 127.0.0.1 only, so tests reach them through the
real client libraries. ``tenant`` wires the Entra tenant the platform expects; ``pytest_plugin``
exposes all of them as fixtures. Importing this package imports none of them.
"""

__version__ = "0.2.0"
