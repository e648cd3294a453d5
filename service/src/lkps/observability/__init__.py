"""What an operator sees: structured logs and OpenTelemetry traces."""
