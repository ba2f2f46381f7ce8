"""The bookcase id rule, shared by the config, the fleet's message schemas and the gateway.

An id names a bookcase in MQTT topics, file names, log lines and (on the SD image) the hostname: letters and
digits, with '-', '_' or '.' between them, at most 64 characters, never two dots together ("MH-0001").
"""

from __future__ import annotations

import re

BOOKCASE_ID_PATTERN = r"^(?!.*\.\.)[A-Za-z0-9](?:[A-Za-z0-9_.-]{0,62}[A-Za-z0-9])?$"
BOOKCASE_ID = re.compile(BOOKCASE_ID_PATTERN)
BOOKCASE_ID_RULE = ("letters and digits, with '-', '_' or '.' between them (not at either end, never '..'), "
                    "at most 64 characters")


def valid_bookcase_id(text: object) -> bool:
    # fullmatch: Python's "$" also matches before a final newline ("MH-0001\n"); the schema's validator turns
    # "$" into "\Z" for the same reason, so both read the pattern the same way.
    return isinstance(text, str) and BOOKCASE_ID.fullmatch(text) is not None
