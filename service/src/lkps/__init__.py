"""LiveKit Platform Service: the only holder of the LiveKit API key and secret."""

__version__ = "0.1.0"
