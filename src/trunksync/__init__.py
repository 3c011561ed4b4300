"""trunksync: declarative outbound SIP trunks (plan, apply, state)."""

__version__ = "0.1.0"
