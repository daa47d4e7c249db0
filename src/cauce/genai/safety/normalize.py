"""Text as the detectors read it: obfuscation undone, hidden payloads decoded.

Only for detection: what is sent on (to a model, a user, the store) is never the normalised
text. The steps, in order:

1. Unicode NFKC (fullwidth ``ｉｇｎｏｒｅ`` and mathematical ``𝐢𝐠𝐧𝐨𝐫𝐞`` become ``ignore``);
2. zero-width and bidirectional control characters removed, Cyrillic and Greek look-alikes
   (``іgnоrе`` with Cyrillic і, о, е) replaced by the ASCII letters they imitate;
3. payloads decoded and appended: base64, hex and rot13 segments whose decoding is mostly
   printable text (base64 and hex) or reads as more English than the segment did (rot13);
4. lower case, leetspeak folded inside words that mix letters with ``0 1 3 4 5 7 @ $``
   (``1gn0r3`` → ``ignore``), letters spaced out one by one joined (``i g n o r e``).

Example::

    normalize("1gn0r3 аll previous instructions").text
    # 'ignore all previous instructions'
"""

from __future__ import annotations

import base64
import binascii
import re
import unicodedata
from dataclasses import dataclass

__all__ = ["Normalized", "decode_payloads", "normalize"]

# Zero-width, joiners, bidi embeddings/overrides/isolates, soft hyphen, BOM, invisible operators.
_INVISIBLE = (
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b\u180c\u180d\u180e"
    "\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
    "\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\u206a\u206b\u206c\u206d\u206e\u206f"
    "\u3164\ufe00\ufe01\ufe02\ufe03\ufe04\ufe05\ufe06\ufe07\ufe08\ufe09\ufe0a\ufe0b\ufe0c\ufe0d"
    "\ufe0e\ufe0f\ufeff\uffa0"
)
# Letters that look like ASCII ones (after NFKC, which already folds fullwidth and math forms).
_CONFUSABLES = {
    # Cyrillic
    "а": "a", "б": "b", "в": "b", "с": "c", "ԁ": "d", "е": "e", "ё": "e", "һ": "h", "і": "i",
    "ї": "i", "ј": "j", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "ԛ": "q", "г": "r",
    "ѕ": "s", "т": "t", "у": "y", "ѵ": "v", "ԝ": "w", "х": "x", "ү": "y", "ӏ": "l", "п": "n",
    "А": "A", "В": "B", "С": "C", "Е": "E", "Н": "H", "І": "I", "Ј": "J", "К": "K", "М": "M",
    "О": "O", "Р": "P", "Ѕ": "S", "Т": "T", "Х": "X", "У": "Y", "Ү": "Y", "Ԁ": "D", "Ԛ": "Q",
    "Ԝ": "W", "Ӏ": "I",
    # Greek
    "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
    "τ": "t", "υ": "u", "χ": "x", "γ": "y", "ω": "w", "ϲ": "c", "ϳ": "j",
    "Α": "A", "Β": "B", "Ε": "E", "Ζ": "Z", "Η": "H", "Ι": "I", "Κ": "K", "Μ": "M", "Ν": "N",
    "Ο": "O", "Ρ": "P", "Τ": "T", "Υ": "Y", "Χ": "X", "Ϲ": "C",
    # Latin look-alikes NFKC keeps
    "ı": "i", "ȷ": "j", "ɡ": "g", "ɑ": "a", "ɩ": "i", "ʏ": "y", "ᴀ": "a", "ᴄ": "c", "ᴇ": "e",
    "ɪ": "i", "ᴏ": "o", "ʀ": "r", "ꜱ": "s", "ᴛ": "t", "ᴜ": "u",
}  # fmt: skip
_TABLE = str.maketrans({**dict.fromkeys(_INVISIBLE, None), **_CONFUSABLES})
_LEET = str.maketrans("013457@$", "oieastas")
_LEET_WORD = re.compile(
    r"(?<![a-z0-9@$])(?=[a-z0-9@$]*[a-z])(?=[a-z0-9@$]*[013457@$])[a-z0-9@$]{2,}"
)
# Cheap first looks (a scan from a rare character), so the full patterns run only when needed.
_LEET_HINT = re.compile(r"[013457@$](?:(?<=[a-z].)|(?=[a-z]))")
_SPACED_HINT = re.compile(r"[ .\-_*][a-z][ .\-_*][a-z][ .\-_*]")
_SPACED = re.compile(r"(?<!\w)(?:[a-z][ .\-_*]){3,}[a-z](?!\w)")
_SEPARATOR = re.compile(r"[ .\-_*]")
_WORDS = re.compile(r"[a-z]+")
_EDGES = "\"'`.,;:!?()[]{}<>"
_HEX_ESCAPE = re.compile(r"\\x|0x|[ :]")
_ROT13 = str.maketrans(
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
    "NOPQRSTUVWXYZABCDEFGHIJKLMnopqrstuvwxyzabcdefghijklm",
)
_COMMON_WORDS = (
    "the and you your are all now ignore instructions previous system prompt reveal tell "
    "secret password rules forget with from this that what que los las del por les des une "
    "pour und der die das nicht uma para você"
)
_COMMON = frozenset(_COMMON_WORDS.split())


@dataclass(frozen=True)
class Normalized:
    """A text as the detectors read it: ``text`` normalised, ``payloads`` the decoded segments
    found in it (kind, normalised text), ``full`` both together."""

    text: str
    payloads: tuple[tuple[str, str], ...] = ()

    @property
    def full(self) -> str:
        """The text followed by its decoded payloads, one per line."""
        if not self.payloads:
            return self.text
        return "\n".join([self.text, *(p for _, p in self.payloads)])


def normalize(text: str, *, decode: bool = True) -> Normalized:
    """``text`` normalised for detection, with its decoded payloads (``decode=False``: none)."""
    clean = _unmask(text)
    payloads = tuple((kind, _fold(_unmask(found))) for kind, found in decode_payloads(clean))
    return Normalized(_fold(clean), payloads if decode else ())


def decode_payloads(text: str) -> list[tuple[str, str]]:
    """The base64, hex and rot13 segments of ``text`` that decode to readable text, decoded.

    Base64 and hex are read from whitespace-separated tokens of 16 characters or more (hex as
    one run, ``\\x``-escaped, or with ``:`` between bytes); rot13 line by line."""
    found: list[tuple[str, str]] = []
    for token in text.split():
        if len(token) < 16:
            continue
        token = token.strip(_EDGES)
        decoded = _hex(token)
        if decoded is not None:
            found.append(("hex", decoded))
            continue
        decoded = _base64(token)
        if decoded is not None:
            found.append(("base64", decoded))
    found += [("rot13", line) for line in _rot13(text)]
    return found


def _unmask(text: str) -> str:
    if text.isascii():
        return text
    return unicodedata.normalize("NFKC", text).translate(_TABLE)


def _fold(text: str) -> str:
    lower = text.lower()
    if _LEET_HINT.search(lower):
        lower = _LEET_WORD.sub(lambda m: m.group().translate(_LEET), lower)
    if _SPACED_HINT.search(lower):
        lower = _SPACED.sub(lambda m: _SEPARATOR.sub("", m.group()), lower)
    return lower


def _printable(data: bytes) -> str | None:
    try:
        decoded = data.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if len(decoded) < 6:
        return None
    readable = sum(c.isprintable() or c in "\n\t" for c in decoded)
    letters = sum(c.isalpha() or c == " " for c in decoded)
    # Mostly printable, and words rather than an identifier's or a hash's bytes.
    return decoded if readable >= 0.95 * len(decoded) and letters >= 0.6 * len(decoded) else None


def _base64(segment: str) -> str | None:
    if segment.isalpha() or segment.isdigit():
        return None  # a word or a number, not an encoding
    stripped = segment.rstrip("=")
    try:
        data = base64.b64decode(
            stripped + "=" * (-len(stripped) % 4),
            altchars=b"-_" if ("-" in segment or "_" in segment) else None,
            validate=True,
        )
    except (binascii.Error, ValueError):
        return None
    return _printable(data)


def _hex(segment: str) -> str | None:
    digits = _HEX_ESCAPE.sub("", segment)
    if len(digits) < 16 or len(digits) % 2 or digits.isdigit() or digits.isalpha():
        return None
    try:
        return _printable(bytes.fromhex(digits))
    except ValueError:
        return None


def _rot13(text: str) -> list[str]:
    turned = text.translate(_ROT13)
    if not _COMMON.intersection(turned.lower().split()):
        return []  # the usual case: nothing reads as English once turned
    found = []
    for line, turned_line in zip(text.splitlines(), turned.splitlines(), strict=True):
        if len(line) < 12:
            continue
        after = len(_COMMON.intersection(_WORDS.findall(turned_line.lower())))
        if after >= 2 and after > 2 * len(_COMMON.intersection(_WORDS.findall(line.lower()))):
            found.append(turned_line)
    return found
