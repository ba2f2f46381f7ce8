"""The library's central gateway (DESIGN.md §10): the bookcases' events -> journal -> the ILS over SIP2, acks back."""

__version__ = "0.1.0"
