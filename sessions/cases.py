"""Applications ("cases") and their receipt numbers.

A case is lodged during a call and outlives it: the department decides later, and the
result is printed at any Citizen's Window kiosk by the receipt number. So the receipt
number is also the claim ticket: it must be unguessable (50 random bits) and easy to
read out and type (Crockford base32: no I, L, O or U), with a check character (Luhn
mod 32) that catches any single mistyped character and most swapped neighbours.
"""

from __future__ import annotations

import re
import secrets

from .errors import BadRequest

ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_VALUE = {c: i for i, c in enumerate(ALPHABET)}
_RECEIPT = re.compile(r"^SC-([0-9A-HJKMNP-TV-Z]{5})-([0-9A-HJKMNP-TV-Z]{5})-([0-9A-HJKMNP-TV-Z])$")


def check_character(payload: str) -> str:
    """Luhn mod 32 over ``payload`` (characters of :data:`ALPHABET`)."""
    factor, total, n = 2, 0, len(ALPHABET)
    for char in reversed(payload):
        addend = factor * _VALUE[char]
        factor = 1 if factor == 2 else 2
        total += addend // n + addend % n
    return ALPHABET[(n - total % n) % n]


def new_receipt_no() -> str:
    payload = "".join(secrets.choice(ALPHABET) for _ in range(10))
    return f"SC-{payload[:5]}-{payload[5:]}-{check_character(payload)}"


def normalise_receipt_no(text: str) -> str:
    """What a person typed → the canonical receipt number, or :class:`BadRequest`.
    Case, spaces and the look-alikes O/I/L are forgiven; a wrong check character is not."""
    compact = re.sub(r"[\s-]", "", text.upper()).translate(str.maketrans("OIL", "011"))
    if compact.startswith("SC"):
        compact = compact[2:]
    candidate = f"SC-{compact[:5]}-{compact[5:10]}-{compact[10:]}"
    match = _RECEIPT.match(candidate)
    if not match:
        raise BadRequest("a receipt number looks like SC-XXXXX-XXXXX-X")
    payload = match.group(1) + match.group(2)
    if check_character(payload) != match.group(3):
        raise BadRequest("this receipt number has a typing mistake (its check character)")
    return candidate
