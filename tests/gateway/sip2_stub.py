"""Until gateway.sip2 (the SIP2 engineer's) exists: its error classes, so the gateway core imports and unit-tests.

Installed by conftest.py only when ``import gateway.sip2`` fails; the tests then run against fakes.FakePool.
"""

from __future__ import annotations

import sys
import types


def install() -> bool:
    try:
        import gateway.sip2  # noqa: F401
        return False
    except ImportError:
        pass
    stub = types.ModuleType("gateway.sip2")

    class Sip2Error(Exception):
        pass

    class Sip2Unavailable(Sip2Error):
        pass

    class Sip2Lost(Sip2Error):
        pass

    class Sip2Client:
        pass

    class Sip2Pool:
        pass

    for cls in (Sip2Error, Sip2Unavailable, Sip2Lost, Sip2Client, Sip2Pool):
        cls.__module__ = "gateway.sip2"
        setattr(stub, cls.__name__, cls)
    sys.modules["gateway.sip2"] = stub
    import gateway
    gateway.sip2 = stub
    return True
