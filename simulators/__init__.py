"""Protocol-faithful fake devices of the city bookcase on pseudo-terminals, around a shared world."""

from simulators.errors import SimError

__all__ = ["SimError"]
