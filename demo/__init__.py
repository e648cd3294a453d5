"""The whole system on one machine: stand-ins, the platform service, a gateway and agents (``make demo``)."""
