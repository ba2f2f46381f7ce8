"""The simulated ILS: a SIP2 server over an in-memory library, for testers, tests, the demo and the fleet
simulator (`kiosk-sim ils`, controlled like the world with `kiosk-sim ctl DIR …`)."""

from simulators.ils.library import Item, Library, Patron, Transaction
from simulators.ils.server import Faults, IlsServer

__all__ = ["Faults", "IlsServer", "Item", "Library", "Patron", "Transaction"]
