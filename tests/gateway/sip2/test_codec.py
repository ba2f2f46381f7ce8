"""The SIP2 codec against the published examples, byte for byte; round trips; GB18030; split and garbage input.

The vectors are the 3M "Standard Interchange Protocol Version 2.00" Developer's Guide's own examples, as
reproduced verbatim by open-source SIP2 implementations: atz/SIPServer (Evergreen's SIP server; t/0001_checksum.t
quotes "990 402.00AY1AZFCB4 — see page 26 of the 3M SIP2 Developers Guide", test.txt has 97AZFEF5 and
9910302.00AY3AZFCA2 and the request layouts without checksums), and the unit tests of DigitalPlatform dp2's SIP2
library (the 17, 09, 35, 63, 94, 18, 36 examples) and of node's sip2 package (10 from the guide; a 98 and a 12 of
a real server). We keep only examples whose printed checksum verifies, so each is known byte-exact (the guide's
printed 93, 11, 23, 24 and 64 examples do not: transcription slips, e.g. a lost "AA" or blanks).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from gateway.sip2 import codec
from gateway.sip2.codec import (MAX_LINE_BYTES, checksum, decode, decode_frame, encode, next_line, parse_sip_date,
                                sip_date)
from gateway.sip2.errors import Sip2ChecksumError, Sip2FormatError
from gateway.sip2.messages import (LAYOUTS, CheckinRequest, CheckinResponse, CheckoutRequest, CheckoutResponse,
                                   EndPatronSessionRequest, EndSessionResponse, ItemInformationRequest,
                                   ItemInformationResponse, LoginRequest, LoginResponse, PatronInformationRequest,
                                   PatronInformationResponse, PatronStatusRequest, PatronStatusResponse,
                                   RequestAcsResend, RequestScResend, ScStatusRequest, ScStatusResponse)

GUIDE = [
    # (bytes without CR, expected type, seq, fields to check)
    (b"9910302.00AY3AZFCA2", ScStatusRequest, 3,
     {"status_code": "1", "max_print_width": 30, "protocol_version": "2.00"}),
    (b"9900401.00AY1AZFCA5", ScStatusRequest, 1, {"status_code": "0", "max_print_width": 40,
                                                   "protocol_version": "1.00"}),
    (b"97AZFEF5", RequestAcsResend, None, {}),
    (b"941AY3AZFDFA", LoginResponse, 3, {"ok": True}),
    (b"1719980723    100000AOCertification Institute ID|ABItemBook|AY1AZEBEB", ItemInformationRequest, 1,
     {"transaction_date": "19980723    100000", "institution": "Certification Institute ID", "item_id": "ItemBook"}),
    (b"09N19980821    085721                  APCertification Terminal Location|AOCertification Institute ID|"
     b"ABCheckInBook|ACTPWord|BIN|AY2AZD6A5", CheckinRequest, 2,
     {"no_block": False, "return_date": " " * 18, "location": "Certification Terminal Location",
      "item_id": "CheckInBook", "terminal_password": "TPWord", "cancel": False}),
    (b"3519980723    094014AOCertification Institute ID|AAPatronID|AY3AZEBF2", EndPatronSessionRequest, 3,
     {"patron_id": "PatronID"}),
    (b"6300119980723    091905Y         AOInstitutionID|AAPatronID|BP00001|BQ00005|AY1AZEA83",
     PatronInformationRequest, 1, {"language": "001", "summary": "Y         ", "start_item": 1, "end_item": 5}),
    (b"1808000119980723    115615CF00000|ABItemBook|AJTitle For Item Book|CK003|AQPermanent Location for ItemBook,"
     b" Language 1|APCurrent Location ItemBook|CHFree-form text with new item property|AY0AZC05B",
     ItemInformationResponse, 0, {"circulation_status": "08", "security_marker": "00", "fee_type": "01",
                                  "hold_queue_length": "00000", "item_id": "ItemBook", "title": "Title For Item Book",
                                  "media_type": "003", "current_location": "Current Location ItemBook"}),
    (b"36Y19980723    110658AOInstitutionID for PatronID|AAPatronID|AFScreenMessage 0 for PatronID, Language 1|"
     b"AFScreen Message 1 for PatronID, Language 1|AFScreen Message 2 for PatronID, Language 1|AGPrint Line 0 for "
     b"PatronID, Language 1|AGPrint Line 1 for PatronID, Language 1|AGPrint Line 2 for PatronID, language 1|AY5AZ970F",
     EndSessionResponse, 5, {"end_session": True, "patron_id": "PatronID"}),
    (b"101YNN19980821    085721AOCertification Institute ID|ABCheckInBook|AQPermanent Location for CheckinBook, "
     b"Language 1|AJTitle For CheckinBook|AAGoodPatron1|CK001|CHCheckinBook Properties|CLsort bin A1|AFScreen Message"
     b" for CheckInBook|AGPrint Line for CheckInBook|AY2AZA3FF", CheckinResponse, 2,
     {"ok": True, "resensitize": True, "magnetic_media": False, "alert": False, "patron_id": "GoodPatron1",
      "title": "Title For CheckinBook", "sort_bin": "sort bin A1", "screen_message": "Screen Message for CheckInBook"}),
    (b"98YYYYNN10000520220721    2130422.00AONEX|BXYYYYYYYYYYYNYYYY|AY2AZEE74", ScStatusResponse, 2,
     {"online": True, "checkout_ok": True, "status_update_ok": False, "timeout_period": 100, "retries_allowed": 5,
      "institution": "NEX", "supported_messages": "YYYYYYYYYYYNYYYY"}),
    (b"121NNY20220721    223455AO|AA104000000105|AB000000000005792|AJ|AH20220801    235900|AFItem cannot be charged"
     b" : see help desk|AGItem can not be charged : see help desk|AY3AZCF7E", CheckoutResponse, 3,
     {"ok": True, "renewal_ok": False, "magnetic_media": False, "desensitize": True, "patron_id": "104000000105",
      "item_id": "000000000005792", "title": "", "due_date": "20220801    235900"}),
]

# Request layouts without checksums (atz/SIPServer test.txt): error detection off.
PLAIN = [
    (b"9300CNLoginUserID|COLoginPassword|CPLocationCode|", LoginRequest,
     {"user": "LoginUserID", "password": "LoginPassword", "location": "LocationCode"}),
    (b"11YN20060329    203000                  AOUWOLS|AAdjfiander|AB1565921879|AC|", CheckoutRequest,
     {"renewal_policy": True, "no_block": False, "nb_due_date": " " * 18, "patron_id": "djfiander",
      "item_id": "1565921879", "terminal_password": ""}),
    (b"2300120060101    084235AOUWOLS|AAdjfiander|ACterminal password|ADuser password|", PatronStatusRequest,
     {"language": "001", "patron_id": "djfiander", "patron_password": "user password"}),
    (b"09Y20060102    08423620060113    084235APUnder the bed|AOUWOLS|AB1565921879|ACterminal password|",
     CheckinRequest, {"no_block": True, "return_date": "20060113    084235", "location": "Under the bed"}),
]


@pytest.mark.parametrize("line,cls,seq,fields", GUIDE, ids=[v[0][:2].decode() + f"-{i}" for i, v in enumerate(GUIDE)])
def test_published_examples_decode_and_their_checksums_verify(line, cls, seq, fields):
    body, printed = line[:-4], line[-4:].decode()
    assert body.endswith(b"AZ") and checksum(body) == printed
    frame = decode_frame(line + b"\r")
    assert type(frame.message) is cls and frame.seq == seq and frame.checksummed
    for name, value in fields.items():
        assert getattr(frame.message, name) == value, name


@pytest.mark.parametrize("line,cls,seq,fields", GUIDE, ids=[v[0][:2].decode() + f"-{i}" for i, v in enumerate(GUIDE)])
def test_published_examples_encode_byte_for_byte(line, cls, seq, fields):
    frame = decode_frame(line)
    assert encode(frame.message, seq=seq or 0) == line + b"\r"


def test_the_guides_page_26_sc_status_with_a_blank_padded_print_width():
    """'990 402.00AY1AZFCB4': the print width ' 40' is blank-padded (pysip2 0.1.0 refuses this example)."""
    msg = decode(b"990 402.00AY1AZFCB4\r")
    assert isinstance(msg, ScStatusRequest) and msg.max_print_width == 40 and msg.status_code == "0"
    assert checksum(b"990 402.00AY1AZ") == "FCB4"


@pytest.mark.parametrize("line,cls,fields", PLAIN, ids=[v[0][:2].decode() for v in PLAIN])
def test_request_layouts_without_error_detection(line, cls, fields):
    frame = decode_frame(line + b"\r")
    assert type(frame.message) is cls and frame.seq is None and not frame.checksummed
    for name, value in fields.items():
        assert getattr(frame.message, name) == value, name
    assert encode(frame.message, error_detection=False) == line + b"\r"


def test_resend_messages_carry_a_checksum_but_no_sequence_number():
    assert encode(RequestAcsResend()) == b"97AZFEF5\r"
    assert encode(RequestScResend()) == b"96AZFEF6\r"
    assert encode(RequestAcsResend(), error_detection=False) == b"97\r"


def test_the_checksum_is_the_twos_complement_of_the_byte_sum():
    for data in (b"", b"AZ", b"990 402.00AY1AZ", bytes(range(256)) * 300):
        value = int(checksum(data), 16)
        assert (sum(data) + value) & 0xFFFF == 0 and checksum(data) == checksum(data).upper()


# ------------------------------------------------------------------ round trips of every message

NOW = "20261201    120000"
EVERY = [
    LoginRequest(user="citybook", password="pa55", location="MH-BOOKCASES"),
    ScStatusRequest(status_code="0", max_print_width=40),
    CheckoutRequest(no_block=True, transaction_date=NOW, institution="CN-310112", patron_id="3101120000018",
                    item_id="MH20200001", patron_password="1234", fee_acknowledged=True, cancel=False),
    CheckinRequest(no_block=True, transaction_date=NOW, return_date="20261130    180500", location="MH-BOOKCASES",
                   institution="CN-310112", item_id="MH20200001"),
    ItemInformationRequest(transaction_date=NOW, institution="CN-310112", item_id="MH20200001"),
    PatronStatusRequest(language="019", transaction_date=NOW, institution="CN-310112", patron_id="3101120000018"),
    PatronInformationRequest(language="019", transaction_date=NOW, summary="  Y       ", institution="CN-310112",
                             patron_id="3101120000018", start_item=1, end_item=20),
    EndPatronSessionRequest(transaction_date=NOW, institution="CN-310112", patron_id="3101120000018"),
    RequestAcsResend(),
    LoginResponse(ok=False),
    ScStatusResponse(timeout_period=50, retries_allowed=3, date_time_sync=NOW, institution="CN-310112",
                     library_name="闵行区图书馆", supported_messages="Y" * 16, screen_messages=("欢迎",)),
    CheckoutResponse(ok=True, renewal_ok=False, magnetic_media=None, desensitize=True, transaction_date=NOW,
                     institution="CN-310112", patron_id="3101120000018", item_id="MH20200001", title="繁花",
                     due_date="20261231    235959", screen_messages=("借书成功", "请按时归还")),
    CheckinResponse(ok=True, resensitize=True, magnetic_media=False, alert=True, transaction_date=NOW,
                    institution="CN-310112", item_id="MH20200001", permanent_location="MH-BOOKCASES", title="长恨歌",
                    patron_id="3101120000018", alert_type="01", screen_messages=("预约书",)),
    ItemInformationResponse(circulation_status="04", transaction_date=NOW, due_date="20261231    235959",
                            item_id="MH20200001", title="骆驼祥子", patron_id="3101120000018"),
    PatronStatusResponse(patron_status="YY" + " " * 12, language="019", transaction_date=NOW,
                         institution="CN-310112", patron_id="3101120000018", personal_name="读者0018",
                         valid_patron=True, fee_amount="0.00"),
    PatronInformationResponse(patron_status=" " * 5 + "Y" + " " * 8, transaction_date=NOW, hold_items_count=1,
                              overdue_items_count=0, charged_items_count=15, institution="CN-310112",
                              patron_id="3101120000034", personal_name="读者0034", charged_items_limit=15,
                              valid_patron=True, charged_items=("MH20200001", "MH20200002")),
    EndSessionResponse(end_session=True, transaction_date=NOW, institution="CN-310112", patron_id="3101120000018"),
    RequestScResend(),
]


def test_every_message_type_is_covered():
    assert {m.command for m in EVERY} == set(LAYOUTS) == {"93", "94", "99", "98", "11", "12", "09", "10", "17", "18",
                                                          "23", "24", "63", "64", "35", "36", "97", "96"}


@pytest.mark.parametrize("charset", ["utf-8", "gb18030"])
@pytest.mark.parametrize("detect", [True, False])
@pytest.mark.parametrize("msg", EVERY, ids=[m.command for m in EVERY])
def test_round_trip(msg, charset, detect):
    data = encode(msg, seq=7, charset=charset, error_detection=detect)
    assert data.endswith(b"\r") and data.count(b"\r") == 1
    frame = decode_frame(data, charset)
    assert frame.message == msg
    assert frame.checksummed == detect
    assert frame.seq == (7 if detect and msg.command not in ("96", "97") else None)


def test_chinese_text_is_checksummed_as_encoded_bytes():
    resp = CheckoutResponse(ok=True, transaction_date=NOW, item_id="MH20200001", title="繁花", due_date="")
    for charset in ("utf-8", "gb18030"):
        data = encode(resp, seq=1, charset=charset)
        body = data[:-5]
        assert "繁花".encode(charset) in data
        assert data[-5:-1].decode() == checksum(body) == f"{-sum(body) & 0xFFFF:04X}"
    assert encode(resp, seq=1, charset="utf-8")[-5:-1] != encode(resp, seq=1, charset="gb18030")[-5:-1]


def test_a_gb18030_character_holding_the_delimiter_byte_stays_whole():
    """東 is 0x96 0x7C in GB18030: its second byte is '|'. A byte-level split would cut the title there."""
    title = "東京物語"
    assert b"|" in title.encode("gb18030")
    data = encode(ItemInformationResponse(circulation_status="03", transaction_date=NOW, item_id="MH20209001",
                                          title=title, permanent_location="MH-BOOKCASES"), seq=4, charset="gb18030")
    msg = decode(data, "gb18030")
    assert msg.title == title and msg.permanent_location == "MH-BOOKCASES" and msg.item_id == "MH20209001"


def test_unknown_fields_are_kept_and_the_borrower_extension_is_read():
    line = encode(ItemInformationResponse(circulation_status="04", transaction_date=NOW, item_id="A1", title="t",
                                          patron_id="P9", extra=(("XX", "vendor"),)), seq=0)
    assert b"ZBP9|" in line and b"XXvendor|" in line
    msg = decode(line)
    assert msg.patron_id == "P9" and msg.extra_field("XX") == "vendor" and msg.extra_field("YY") is None


def test_fields_in_any_order_a_last_field_without_delimiter_and_a_stray_delimiter():
    body = b"12" + b"0NUN" + NOW.encode() + b"|AFPatron blocked|ABMH1|AAP1|AOinst|AHx"
    msg = decode(body + b"AY1AZ" + checksum(body + b"AY1AZ").encode() + b"\r")
    assert isinstance(msg, CheckoutResponse) and not msg.ok and msg.item_id == "MH1" and msg.patron_id == "P1"
    assert msg.due_date == "x" and msg.screen_message == "Patron blocked" and msg.title == ""


def test_refused_checkout_without_title_and_due_date_and_patron_flags_with_n():
    """What real ILSs send: a refused 12 without AJ/AH; flags written N instead of blank (pysip2 refuses both)."""
    msg = decode(b"120NUN" + NOW.encode() + b"AOX|AAP|ABI|AFPatron blocked|\r")
    assert not msg.ok and msg.title == "" and msg.due_date == ""
    status = decode(b"24YNNNNNNNNNNNNN001" + NOW.encode() + b"AOX|AAP|AEname|BLY|\r")
    assert status.flag(0) and not status.flag(1) and status.valid_patron is True


# ------------------------------------------------------------------ framing: split input

def _frames(chunks: list[bytes]) -> list[bytes]:
    buf, out = bytearray(), []
    for chunk in chunks:
        buf += chunk
        while True:
            consumed, line = next_line(buf)
            del buf[:consumed]
            if line is None:
                break
            out.append(line)
    return out


def test_messages_split_anywhere_are_reassembled():
    stream = b"".join(encode(m, seq=n % 10, charset="gb18030") for n, m in enumerate(EVERY))
    whole = _frames([stream])
    assert len(whole) == len(EVERY)
    for size in (1, 2, 3, 7, 64):
        assert _frames([stream[i:i + size] for i in range(0, len(stream), size)]) == whole
    assert [decode(line, "gb18030") for line in whole] == EVERY


def test_crlf_senders_and_blank_lines():
    data = encode(LoginResponse(ok=True), seq=0)
    lines = _frames([data.replace(b"\r", b"\r\n") * 2])
    assert [decode(line) for line in lines] == [LoginResponse(ok=True)] * 2


def test_a_line_without_end_is_refused_past_the_limit():
    buf = bytearray(b"18" + b"x" * 100)
    assert next_line(buf) == (0, None)
    with pytest.raises(Sip2FormatError, match="no end of message"):
        next_line(bytearray(b"x" * (MAX_LINE_BYTES + 1)))
    with pytest.raises(Sip2FormatError, match="no end of message"):
        next_line(bytearray(b"x" * (MAX_LINE_BYTES + 1) + b"\r"))


# ------------------------------------------------------------------ garbage

@pytest.mark.parametrize("line,words", [
    (b"", "empty"),
    (b"\r", "empty"),
    (b"XY1234\r", "unknown message type"),
    (b"\x00\xffNOT SIP2\r", "NUL"),
    (b"12\r", "truncated"),
    (b"121NNY2026\r", "truncated"),
    (b"12xNNY" + NOW.encode() + b"AOx|\r", "ok must be 0 or 1"),
    (b"18XX0001" + NOW.encode() + b"\r", "circulation_status must be digits"),
    (b"12" + "1NNY2026１２０1    120000".encode() + b"\r", "not ASCII"),
    (b"941AY3AZFDFB\r", "checksum FDFB does not match"),
    (b"94" + b"1" + b"!!bad|\r", "field identifier"),
    (b"18030001" + NOW.encode() + b"AB\xff\xfe|AJx|\r", "item_id .AB. is not valid utf-8"),
    (b"941\r941\r", "CR byte"),
    (b"94" + b"1" + b"AF" + b"x" * MAX_LINE_BYTES + b"|\r", "longer than the limit"),
])
def test_garbage_is_a_format_error_that_says_what_is_wrong(line, words):
    with pytest.raises(Sip2FormatError, match=words):
        decode(line)


def test_a_bad_checksum_is_its_own_error():
    good = encode(LoginResponse(ok=True), seq=3)
    bad = good[:-2] + (b"0" if good[-2:-1] != b"0" else b"1") + b"\r"
    with pytest.raises(Sip2ChecksumError):
        decode(bad)
    assert issubclass(Sip2ChecksumError, Sip2FormatError) and issubclass(Sip2FormatError, ValueError)


def test_broken_text_in_a_title_is_replaced_not_refused():
    msg = decode(b"18030001" + NOW.encode() + b"ABMH1|AJ\xe7\xb9\x81\xff|\r")
    assert msg.item_id == "MH1" and msg.title.startswith("繁") and "\ufffd" in msg.title


# ------------------------------------------------------------------ what cannot be sent

@pytest.mark.parametrize("msg,charset,words", [
    (CheckoutRequest(patron_id="P|1", item_id="I"), "utf-8", "patron_id .AA. must not contain"),
    (CheckoutRequest(patron_id="P", item_id="I\r"), "utf-8", "item_id .AB. must not contain"),
    (CheckoutResponse(title="繁花"), "ascii", "title .AJ. cannot be written in ascii"),
    (CheckoutResponse(title="书" * 100), "utf-8", "300 bytes in utf-8, longer than SIP2's 255"),
    (CheckoutRequest(transaction_date="2026-12-01"), "utf-8", "transaction_date must be 18 characters"),
    (CheckoutRequest(transaction_date="2026120x    120000"), "utf-8", "must be a date"),
    (ScStatusResponse(timeout_period=1000), "utf-8", "timeout_period must be 3 characters"),
    (PatronStatusResponse(patron_status="Y"), "utf-8", "patron_status must be 14 characters"),
    (CheckoutResponse(extra=(("A", "x"),)), "utf-8", "not a field identifier"),
])
def test_values_that_cannot_be_sent_are_named(msg, charset, words):
    with pytest.raises(Sip2FormatError, match=words):
        encode(msg, charset=charset)


def test_sequence_numbers_are_one_digit():
    with pytest.raises(Sip2FormatError, match="0-9"):
        encode(LoginResponse(ok=True), seq=10)
    assert encode(LoginResponse(ok=True), seq=10, error_detection=False) == b"941\r"


# ------------------------------------------------------------------ dates

def test_sip_dates():
    local = datetime(2026, 12, 1, 9, 5, 7).astimezone()
    assert sip_date(local) == "20261201    090507"
    assert sip_date(None) == " " * 18
    assert sip_date(datetime(2026, 12, 1, 1, 2, 3, tzinfo=timezone.utc), utc=True) == "20261201   Z010203"
    assert parse_sip_date("20261201    090507") == local
    assert parse_sip_date("20261201   Z010203") == datetime(2026, 12, 1, 1, 2, 3, tzinfo=timezone.utc)
    shanghai = timezone(timedelta(hours=8))
    assert parse_sip_date(sip_date(datetime(2026, 12, 1, 20, 0, tzinfo=shanghai))) == datetime(
        2026, 12, 1, 20, 0, tzinfo=shanghai)
    for text in ("", " " * 18, None, "2026-12-01", "20261301    090507", "00000000    000000"):
        assert parse_sip_date(text) is None


def test_redacted_for_the_log():
    line = encode(LoginRequest(user="citybook", password="s3cret", location="MH"), seq=0)
    shown = codec.redact(line)
    assert "s3cret" not in shown and "citybook" in shown and "CO***" in shown
    shown = codec.redact(encode(CheckoutRequest(patron_id="P", item_id="I", patron_password="1234",
                                                terminal_password="tp"), seq=0))
    assert "1234" not in shown and "|AC***" in shown and "|AD***" in shown
