"""What the service does, as if speed were free: the agent registry, LiveKit tokens, room names, sessions and
their lifecycle, the audit's records. No HTTP and no SQL here."""
