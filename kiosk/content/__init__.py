"""The large screen's content: the library's signed manifest (items, schedule, asset hashes) and its schedule.

``manifest`` parses and verifies a manifest and ``schedule`` says what plays when (both pure); ``store`` is
the bookcase's content folder with its atomic swap; ``authoring``, ``server`` and ``cli`` are the library's
side (sign a folder, serve it). Downloading lives in ``kiosk.sync.content``; playing in ``kiosk.ui``.
See docs/content.md.
"""


class ContentError(Exception):
    """Content that is refused: unsigned, wrongly signed, malformed, or an asset that does not match its hash."""
