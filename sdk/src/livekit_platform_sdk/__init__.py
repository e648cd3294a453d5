"""Agent-side security wrapper around livekit-agents (Entra identity, platform-issued LiveKit tokens)."""

__version__ = "0.1.0"
