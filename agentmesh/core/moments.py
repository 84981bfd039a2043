"""Moments written by others (journal stamps, forge items' and cached responses' dates): parsed into aware
UTC datetimes, or None for anything that is not one. Pure.

A stamp says whatever its writer wrote: year 0, `9999-12-31T23:59:59-14:00` (in range as written, past
year 9999 in UTC), `1e20` or `NaN` must be no moment, never an exception in the reader that meets it.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta


def parse_ts(text: str) -> datetime | None:
    """ISO 8601 (`Z` allowed; no offset: UTC) as an aware UTC datetime; None when it is none or out of range."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        # an offset can carry year 9999 or 1 out of datetime's range: no moment, never a crash of every reader
        return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    except (TypeError, ValueError, OverflowError, AttributeError):
        return None


def shifted(moment: datetime, by: timedelta) -> datetime | None:
    """`moment + by`, or None past the ends of datetime's range (a stamp at year 1 or 9999)."""
    try:
        return moment + by
    except OverflowError:
        return None
