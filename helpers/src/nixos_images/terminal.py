"""Text from files and commands someone else controls, made safe to show on a terminal."""

from __future__ import annotations

import re

# C0 controls but tab, DEL, C1 controls, and the Unicode line and paragraph separators: what
# could move the cursor, clear the screen or start an escape sequence.
_UNPRINTABLE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029]")


def printable(text: str) -> str:
    """Text with every control character shown as U+FFFD; a tab becomes a space."""
    return _UNPRINTABLE.sub("\ufffd", text.replace("\t", " "))
