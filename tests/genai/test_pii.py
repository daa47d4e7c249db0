"""PII detection: each type found when valid, left alone when only alike; stable placeholders;
the redactor as the tracing hook."""

from __future__ import annotations

import json

import pytest

from cauce import workspace as workspace_module
from cauce.genai import tracing
from cauce.genai.safety.pii import Redactor, detect, redact_text
from cauce.workspace import Workspace

FOUND = [
    ("EMAIL", "write to ana.garcia+ops@example.co.uk today", "ana.garcia+ops@example.co.uk"),
    ("CARD", "card 4111 1111 1111 1111 expires", "4111 1111 1111 1111"),
    ("CARD", "amex 3782-822463-10005 ok", "3782-822463-10005"),
    ("IBAN", "IBAN ES91 2100 0418 4502 0005 1332 please", "ES91 2100 0418 4502 0005 1332"),
    ("IBAN", "pay GB82WEST12345698765432 now", "GB82WEST12345698765432"),
    ("SSN", "SSN 123-45-6789 on file", "123-45-6789"),
    ("DNI", "DNI 12345678Z", "12345678Z"),
    ("NIE", "NIE X1234567L", "X1234567L"),
    ("PHONE", "call +34 612 345 678 now", "+34 612 345 678"),
    ("PHONE", "or (415) 555-2671", "(415) 555-2671"),
    ("IP", "from 192.168.10.25 at noon", "192.168.10.25"),
    ("IP", "v6 2001:db8::8a2e:370:7334 too", "2001:db8::8a2e:370:7334"),
]

ALIKE = [
    "order 4111 1111 1111 1112",  # fails Luhn
    "IBAN ES91 2100 0418 4502 0005 1333",  # bad checksum
    "SSN 000-12-3456",  # area 000 is never issued
    "DNI 12345678A",  # wrong control letter
    "version 1.2.3 and 999.1.1.1",  # no addresses
    "ticket 1111 1111 1111 1111",  # one repeated digit
    "call 555-01",  # too short to be a number
]


@pytest.mark.parametrize(("kind", "text", "value"), FOUND)
def test_each_type_is_found_when_it_validates(kind: str, text: str, value: str) -> None:
    assert [(e.type, e.text) for e in detect(text)] == [(kind, value)]


@pytest.mark.parametrize("text", ALIKE)
def test_look_alikes_that_do_not_validate_are_left(text: str) -> None:
    assert detect(text) == []


def test_placeholders_are_stable_per_value_across_texts() -> None:
    redactor = Redactor()
    first = redactor.redact("Ana <ana@example.com> and Bo <bo@example.com>")
    second = redactor.redact("again ANA@example.com, card 4111-1111-1111-1111")
    third = redactor.redact("card 4111 1111 1111 1111, IP 10.0.0.1")
    assert first == "Ana <[EMAIL_1]> and Bo <[EMAIL_2]>"
    assert second == "again [EMAIL_1], card [CARD_1]"
    assert third == "card [CARD_1], IP [IP_1]"
    assert redact_text("x@y.io and x@y.io") == "[EMAIL_1] and [EMAIL_1]"
    assert redactor.redact("nothing here") == "nothing here"


def test_overlapping_candidates_keep_the_stronger_type() -> None:
    [entity] = detect("IBAN DE89370400440532013000")
    assert entity.type == "IBAN"


def test_the_redactor_is_a_tracing_hook(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CAUCE_TRACE_REDACT", "cauce.genai.safety.pii:redact_text")
    workspace_module.reset()
    ws = workspace_module.current()
    with tracing.span("support", workspace=ws) as span:
        span.content("cauce.input", {"message": "I am 12345678Z, card 4111111111111111"})
    stored = tracing.get_trace(span.trace_id, workspace=ws).spans[0].attributes["cauce.input"]
    assert json.loads(stored) == {"message": "I am [DNI_1], card [CARD_1]"}
