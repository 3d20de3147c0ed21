"""Clock times: `2:30` is half past two, never the ratio 2/30; two times are equal only as times of day."""

from __future__ import annotations

import re
from typing import NamedTuple

_CLOCK_RE = re.compile(
    r"(?P<h>\d{1,2})(?:\{?:\}?(?P<m>\d{2})(?:\{?:\}?(?P<s>\d{2}))?)?"
    r"\s*(?P<half>[ap]\.?\s*m\.?|[AP]\.?\s*M\.?)?",
)

_HOUR_ONLY_HALF_RE = re.compile(r"[ap]\.\s*m\.?|[AP]\.?\s*M\.?")


class Clock(NamedTuple):
    """A time of day as written: hour, minute, second, `am`/`pm` if given, and if the hour was 0-padded."""

    hour: int
    minute: int
    second: int
    half: str | None
    padded: bool = False

    def on_24h_clock(self) -> tuple[int, int, int] | None:
        """(h, m, s) on the 24-hour clock; None when a bare hour 1-12 (not zero-padded) could be AM or PM."""
        if self.half is None:
            return (self.hour, self.minute, self.second) if self.padded or not 1 <= self.hour <= 12 else None
        return (self.hour % 12 + (12 if self.half == "pm" else 0), self.minute, self.second)


def parse_clock(text: str) -> Clock | None:
    """`2:30`, `02:30:15`, `2:30 PM`, `8 a.m.` as a clock time; None otherwise (`3:4` stays a ratio)."""
    m = _CLOCK_RE.fullmatch(text.strip())
    if m is None or (m.group("m") is None and not _HOUR_ONLY_HALF_RE.fullmatch(m.group("half") or "")):
        return None  # `5 pm` without a colon is more likely picometres than 5 PM
    hour, minute, second = int(m.group("h")), int(m.group("m") or 0), int(m.group("s") or 0)
    half = None if m.group("half") is None else m.group("half")[0].lower() + "m"
    if minute > 59 or second > 59 or hour > (12 if half else 23) or (half and hour == 0):
        return None
    return Clock(hour, minute, second, half, m.group("h").startswith("0"))


def same_clock(a: Clock, b: Clock) -> tuple[bool, str]:
    """Equal times of day; a time with AM/PM against a bare 1-12 hour is ambiguous, so not equal."""
    if a.half == b.half:
        return a[:3] == b[:3], "clock times"
    ta, tb = a.on_24h_clock(), b.on_24h_clock()
    if ta is None or tb is None:
        return False, "clock times: one has AM/PM and the other could be either half of the day"
    return ta == tb, "clock times on the 24-hour clock"
