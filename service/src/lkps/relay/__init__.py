"""The agent relay: agents' worker websockets end here, on every replica, and go on to LiveKit over the
service's own connection, so the platform enforces what LiveKit cannot (docs/threat-model.md): a worker's
agent name is the agent its token was issued to, and a revoked or expired agent is cut off while connected."""
