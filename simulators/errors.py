"""The one error type of the simulators: a message a tester can act on."""

from __future__ import annotations


class SimError(Exception):
    """A simulator command that cannot be carried out, e.g. taking a book from a closed door."""
