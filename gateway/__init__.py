"""The library's central gateway (docs/design.md §10): bookcase events -> journal -> the ILS over SIP2 -> acks."""

__version__ = "0.1.0"
