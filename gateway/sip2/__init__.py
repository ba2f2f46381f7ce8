"""SIP2 (3M SIP 2.00) for the gateway: the message codec (pysip2's models), one connection, a pool of them."""

from gateway.sip2.client import (CheckinAnswer, CheckoutAnswer, ItemAnswer, PatronAnswer, Sip2Client, Sip2Error,
                                 Sip2Lost, Sip2Unavailable, StatusAnswer)
from gateway.sip2.codec import Sip2ChecksumError, Sip2FormatError
from gateway.sip2.pool import Sip2Pool

__all__ = ["CheckinAnswer", "CheckoutAnswer", "ItemAnswer", "PatronAnswer", "Sip2ChecksumError", "Sip2Client",
           "Sip2Error", "Sip2FormatError", "Sip2Lost", "Sip2Pool", "Sip2Unavailable", "StatusAnswer"]
