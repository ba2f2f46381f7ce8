"""SIP2 (3M SIP 2.00) for the gateway: typed messages and their codec, one connection, a pool of them.

Our own codec (codec.py; why not PyPI's pysip2 is in its docstring), client.py (Sip2Client: login, SC status,
resends, timeouts), pool.py (Sip2Pool: backoff, keep-alive). Errors: Sip2Unavailable (nothing was sent),
Sip2Lost (the outcome at the ILS is unknown), Sip2FormatError (bytes that are not SIP2).
"""

from gateway.sip2.client import Sip2Client
from gateway.sip2.codec import (MAX_LINE_BYTES, Frame, checksum, decode, decode_frame, encode, next_line,
                                parse_sip_date, sip_date)
from gateway.sip2.errors import (Sip2ChecksumError, Sip2Error, Sip2FormatError, Sip2LoginRefused, Sip2Lost,
                                 Sip2Unavailable)
from gateway.sip2.messages import (BORROWER_FIELD, CheckinRequest, CheckinResponse, CheckoutRequest,
                                   CheckoutResponse, EndPatronSessionRequest, EndSessionResponse,
                                   ItemInformationRequest, ItemInformationResponse, LoginRequest, LoginResponse,
                                   PatronInformationRequest, PatronInformationResponse, PatronStatusRequest,
                                   PatronStatusResponse, RequestAcsResend, RequestScResend, ScStatusRequest,
                                   ScStatusResponse)
from gateway.sip2.pool import Sip2Pool

__all__ = [
    "BORROWER_FIELD", "MAX_LINE_BYTES", "CheckinRequest", "CheckinResponse", "CheckoutRequest", "CheckoutResponse",
    "EndPatronSessionRequest", "EndSessionResponse", "Frame", "ItemInformationRequest", "ItemInformationResponse",
    "LoginRequest", "LoginResponse", "PatronInformationRequest", "PatronInformationResponse", "PatronStatusRequest",
    "PatronStatusResponse", "RequestAcsResend", "RequestScResend", "ScStatusRequest", "ScStatusResponse",
    "Sip2ChecksumError", "Sip2Client", "Sip2Error", "Sip2FormatError", "Sip2LoginRefused", "Sip2Lost", "Sip2Pool",
    "Sip2Unavailable", "checksum", "decode", "decode_frame", "encode", "next_line", "parse_sip_date", "sip_date",
]
