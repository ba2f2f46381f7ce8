"""The SIP2 layer's errors: what went wrong, and whether the request may have reached the ILS."""

from __future__ import annotations


class Sip2Error(Exception):
    """Anything that went wrong talking SIP2."""


class Sip2FormatError(Sip2Error, ValueError):
    """Bytes that are not a SIP2 message (or a message that cannot be encoded); the text says what is wrong."""


class Sip2ChecksumError(Sip2FormatError):
    """A message whose AZ checksum does not match its bytes (line noise): ask for it again (96/97)."""


class Sip2Unavailable(Sip2Error):
    """The ILS cannot be reached or refused the login: the request was NOT sent, nothing happened at the ILS."""


class Sip2LoginRefused(Sip2Unavailable):
    """The ILS answered the login (93) with ok 0: wrong SIP2 user or password, or the account is not allowed."""


class Sip2Lost(Sip2Error):
    """The request was (or may have been) sent and no valid answer came: the outcome at the ILS is unknown.

    Dropped connection, timeout, or garbled answers after the allowed resends (97). Ask the ILS (item
    information) before repeating the request."""
