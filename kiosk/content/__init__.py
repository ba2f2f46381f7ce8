"""The large screen's content: the library's signed manifest (items, schedule, asset hashes) and its schedule.

Pure data and rules, no I/O beyond reading bytes handed in: ``manifest`` parses and verifies a manifest,
``schedule`` says what plays when. Downloading lives in ``kiosk.sync.content``; playing in ``kiosk.ui``.
"""


class ContentError(Exception):
    """Content that is refused: unsigned, wrongly signed, malformed, or an asset that does not match its hash."""
