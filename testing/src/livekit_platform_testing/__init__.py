"""Local stand-ins for the systems an agent talks to (Entra ID, Graph, the LiveKit server, an OTLP collector).

They speak the real wire protocols on 127.0.0.1 only, so tests (and generated agent repos) reach them through
the real client libraries. Install with ``pip install "livekit-platform-sdk[testing]"``.
"""
