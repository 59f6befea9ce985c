"""Receipt numbers: unguessable, readable, self-checking."""

from __future__ import annotations

import pytest

from sessions.cases import ALPHABET, check_character, new_receipt_no, normalise_receipt_no
from sessions.errors import BadRequest


def test_receipt_numbers_are_well_formed_distinct_and_self_checking():
    numbers = {new_receipt_no() for _ in range(2000)}
    assert len(numbers) == 2000
    for number in list(numbers)[:200]:
        assert normalise_receipt_no(number) == number
        assert not set(number.replace("SC-", "").replace("-", "")) - set(ALPHABET)


def test_every_single_character_mistake_is_caught():
    number = new_receipt_no()
    payload = number[3:8] + number[9:14]
    check = number[-1]
    for i in range(len(payload)):
        for other in ALPHABET:
            if other != payload[i]:
                typo = payload[:i] + other + payload[i + 1 :]
                assert check_character(typo) != check


def test_most_swapped_neighbours_are_caught():
    caught = total = 0
    for _ in range(300):
        number = new_receipt_no()
        payload = number[3:8] + number[9:14]
        for i in range(len(payload) - 1):
            if payload[i] == payload[i + 1]:
                continue
            swapped = payload[:i] + payload[i + 1] + payload[i] + payload[i + 2 :]
            total += 1
            caught += check_character(swapped) != check_character(payload)
    assert caught / total > 0.95


def test_typed_forms_are_forgiven_but_wrong_numbers_are_not():
    number = new_receipt_no()
    typed = number.lower().replace("-", " ").replace("0", "o").replace("1", "l")
    assert normalise_receipt_no(typed) == number
    assert normalise_receipt_no(number.replace("-", "")) == number
    wrong = number[:-1] + ("0" if number[-1] != "0" else "1")
    with pytest.raises(BadRequest, match="typing mistake"):
        normalise_receipt_no(wrong)
    for junk in ("", "SC-123", "x" * 40, "SC-UUUUU-UUUUU-U"):
        with pytest.raises(BadRequest):
            normalise_receipt_no(junk)
