"""What the service decides: the agent registry, LiveKit tokens, room names, sessions and their lifecycle,
webhook events, the audit's records. No HTTP and no SQL here."""
