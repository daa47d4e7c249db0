"""PII detection and redaction with stable placeholders.

Candidates are found by pattern and kept only when they validate: card numbers by the Luhn
check, IBANs by their ISO 7064 mod-97 checksum (not the national account checks), US SSNs by
the SSA's rules, Spanish DNI/NIE by their control letter (``python-stdnum``), phone numbers by
Google's libphonenumber (``phonenumbers``, a number valid for its region and written as it
writes them), IP addresses by :mod:`ipaddress`. An invalid look-alike (a 16-digit order number
that fails Luhn) is left as it is.

Redaction replaces each value with a placeholder numbered per type, the same value getting the
same placeholder in everything one :class:`Redactor` redacts (``[EMAIL_1]`` every time
``ana@example.com`` appears): redacted traces stay usable as data.

Example::

    redactor = Redactor()
    redactor.redact("Mail ana@example.com, card 4111 1111 1111 1111")
    # 'Mail [EMAIL_1], card [CARD_1]'
"""

from __future__ import annotations

import ipaddress
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["ENTITY_TYPES", "Entity", "Redactor", "detect", "redact_text"]

ENTITY_TYPES = ("EMAIL", "IBAN", "CARD", "SSN", "DNI", "NIE", "IP", "PHONE")

_EMAIL = re.compile(
    r"(?<![\w.+-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
)
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){11,30}\b")
_CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
_SSN = re.compile(r"(?<![\d-])\d{3}-\d{2}-\d{4}(?![\d-])")
_DNI = re.compile(r"(?<![\w-])\d{8}[- ]?[A-Za-z](?!\w)")
_NIE = re.compile(r"(?<![\w-])[XYZxyz][- ]?\d{7}[- ]?[A-Za-z](?!\w)")
_IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?: \d{1,2}:\d{2}(?::\d{2})?)?|\d{1,2}[/.]\d{1,2}[/.]\d{2,4}")
_NOT_DIGIT = re.compile(r"\D+")
_NUMBER = re.compile(r"\d[\d .:()/-]*\d")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")


@dataclass(frozen=True)
class Entity:
    """A piece of PII found in a text: its type and where it is."""

    type: str
    start: int
    end: int
    text: str


def detect(text: str, *, regions: Iterable[str] = ("US", "ES", "GB", "FR", "DE")) -> list[Entity]:
    """The PII in ``text``, in order; where two candidates overlap, the one found first wins:
    emails, the checked numbers (IBAN, card, SSN, DNI, NIE), IP addresses, then phone numbers
    (an IBAN's digits are not also a phone number).

    ``regions`` are the countries whose national phone formats are read (numbers written with
    a ``+`` country code are read whatever the region).
    """
    found: list[Entity] = []
    taken: list[tuple[int, int]] = []

    def keep(kind: str, start: int, end: int) -> None:
        if any(start < e and s < end for s, e in taken):
            return
        taken.append((start, end))
        found.append(Entity(kind, start, end, text[start:end]))

    # Each pattern runs only around the character every value of its types holds (an @, a
    # digit, a colon): on a long prompt that is a small part of the text.
    for start, end in _around(text, "@", 260):
        for match in _EMAIL.finditer(text, start, end):
            keep("EMAIL", match.start(), match.end())
    numbers = [m.span() for m in _NUMBER.finditer(text)]
    # Every checked value and address holds four digits or more; a phone number seven.
    # A value reaches at most ~40 characters past its longest run of digits (an IBAN's letters).
    digits = _around(text, [n for n in numbers if _count_digits(text, n) >= 4], 48)
    candidates = [
        n for n in numbers if _count_digits(text, n) >= 7 and not _DATE.fullmatch(text, n[0], n[1])
    ]
    phones = _around(text, candidates, 80)
    national = [n[0] for n in candidates if text[max(0, n[0] - 1) : n[0]] != "+"]
    for kind, pattern, valid in _CHECKED:
        for start, end in digits:
            for match in pattern.finditer(text, start, end):
                if valid(match.group()):
                    keep(kind, match.start(), match.end())
    for pattern, anchors in ((_IPV4, digits), (_IPV6, _around(text, ":", 45))):
        for start, end in anchors:
            for match in pattern.finditer(text, start, end):
                if _is_ip(match.group()):
                    keep("IP", match.start(), match.end())
    regions = tuple(regions)
    for start, end in phones:
        # Numbers written with their +country code read the same in every region: one will do.
        local = any(start <= at < end for at in national)
        for first, last in _phones(text[start:end], regions if local else regions[:1]):
            keep("PHONE", start + first, start + last)
    return sorted(found, key=lambda e: e.start)


def _count_digits(text: str, span: tuple[int, int]) -> int:
    return len(_NOT_DIGIT.sub("", text[span[0] : span[1]]))


def _around(text: str, anchor: str | list[tuple[int, int]], margin: int) -> list[tuple[int, int]]:
    """The spans of ``text`` within ``margin`` characters of an ``anchor`` (a string, or
    spans), merged."""
    if isinstance(anchor, str):
        at = text.find(anchor)
        positions = []
        while at >= 0:
            positions.append((at, at + 1))
            at = text.find(anchor, at + 1)
    else:
        positions = anchor
    spans: list[list[int]] = []
    for first, last in positions:
        start, end = max(0, first - margin), min(len(text), last + margin)
        if spans and start <= spans[-1][1]:
            spans[-1][1] = end
        else:
            spans.append([start, end])
    return [(s, e) for s, e in spans]


class Redactor:
    """Replaces PII with placeholders that stay the same for the same value across every text
    it redacts (thread-safe)."""

    def __init__(self) -> None:
        self.placeholders: dict[tuple[str, str], str] = {}
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def redact(self, text: str, *, types: Iterable[str] | None = None) -> str:
        """``text`` with each piece of PII (of ``types``; None: every type) replaced by its
        placeholder."""
        entities = detect(text)
        if types is not None:
            wanted = set(types)
            entities = [e for e in entities if e.type in wanted]
        return self.replace(text, entities)

    def replace(self, text: str, entities: Iterable[Entity]) -> str:
        """``text`` with the given entities (found in it, in order) replaced by placeholders."""
        entities = list(entities)
        if not entities:
            return text
        parts, last = [], 0
        for entity in entities:
            parts += [text[last : entity.start], self._placeholder(entity)]
            last = entity.end
        parts.append(text[last:])
        return "".join(parts)

    def _placeholder(self, entity: Entity) -> str:
        key = (entity.type, _canonical(entity))
        with self._lock:
            found = self.placeholders.get(key)
            if found is None:
                count = self._counts[entity.type] = self._counts.get(entity.type, 0) + 1
                found = self.placeholders[key] = f"[{entity.type}_{count}]"
            return found


def redact_text(text: str) -> str:
    """``text`` with its PII replaced by placeholders numbered within it: a ``module:function``
    for ``CAUCE_TRACE_REDACT`` (``cauce.genai.safety.pii:redact_text``)."""
    return Redactor().redact(text)


def _canonical(entity: Entity) -> str:
    """The same value written two ways is one value: spaces, dashes and case do not count."""
    if entity.type == "EMAIL":
        return entity.text.lower()
    if entity.type == "IP":
        return str(ipaddress.ip_address(entity.text))
    return re.sub(r"[\s().-]", "", entity.text).upper()


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _card(text: str) -> bool:
    from stdnum import luhn

    digits = _digits(text)
    # Card numbers start 2-6 (Mastercard, Visa, Amex, Discover…); one repeated digit is no card.
    return (
        13 <= len(digits) <= 19
        and digits[0] in "23456"
        and len(set(digits)) > 1
        and luhn.is_valid(digits)
    )


def _iban(text: str) -> bool:
    from stdnum import iban

    # The ISO 13616 mod-97 check; national account checks (Spain's CCC digits…) are not the
    # IBAN's, and a bank's own numbering is no concern of redaction.
    return bool(iban.is_valid(text, check_country=False))


def _ssn(text: str) -> bool:
    from stdnum.us import ssn

    return bool(ssn.is_valid(text))


def _dni(text: str) -> bool:
    from stdnum.es import dni

    return bool(dni.is_valid(text))


def _nie(text: str) -> bool:
    from stdnum.es import nie

    return bool(nie.is_valid(text))


_CHECKED = (
    ("IBAN", _IBAN, _iban),
    ("CARD", _CARD, _card),
    ("SSN", _SSN, _ssn),
    ("DNI", _DNI, _dni),
    ("NIE", _NIE, _nie),
)


def _phones(text: str, regions: tuple[str, ...]) -> list[tuple[int, int]]:
    import phonenumbers

    spans: set[tuple[int, int]] = set()
    for region in regions or ("US",):
        # Exact grouping: written as the region writes numbers (or as one run of digits), so
        # "666-99-4815" (an SSN's shape) or "140.132.87.244" (an address) is not a phone.
        for match in phonenumbers.PhoneNumberMatcher(
            text, region, leniency=phonenumbers.Leniency.EXACT_GROUPING
        ):
            # "#7384640824" is a reference number, whatever its digits would dial.
            if text[max(0, match.start - 2) : match.start].strip().endswith("#"):
                continue
            spans.add((match.start, match.end))
    return sorted(spans)


def _is_ip(text: str) -> bool:
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return False
    # "1.2.3" or "::" are versions and separators, not addresses someone owns.
    return not (address.version == 6 and text.count(":") < 2) and str(address) != "::"
