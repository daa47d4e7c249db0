"""PII detection measured on a labelled set generated in code: precision and recall per type.

The set (default 3,000 texts, seed 5) is generated here, never downloaded: support-ticket
sentences in English and Spanish holding 0 to 3 values each, every value of a known type and
valid for its type (cards with a Luhn check digit, IBANs with their mod-97 digits for ES, DE,
GB, FR and NL, DNI/NIE with their control letter, SSNs in issued ranges, phone numbers in US,
ES, GB, FR and DE formats, emails, IPv4/IPv6), and as many hard negatives: the same shapes made
invalid (a wrong check digit, an unissued SSN area, a wrong control letter), order numbers,
version strings, dates, amounts. The labels are the spans the generator wrote. Licence: the
project's (Apache-2.0); nothing in it comes from elsewhere.

A detected entity counts as a true positive when its type and span equal a label's (exact
match); everything else detected is a false positive, every label not found a false negative.
Targets (issue 12): recall >= 0.95 and precision >= 0.95 per type.

Example::

    python benchmarks/pii_eval.py --json .bench/pii.json
"""

from __future__ import annotations

import argparse
import json
import random
import string
import time
from pathlib import Path
from typing import Any

from peers import load_average, machine

TYPES = ("EMAIL", "PHONE", "CARD", "IBAN", "IP", "SSN", "DNI", "NIE")
DNI_LETTERS = "TRWAGMYFPDXBNJZSQVHLCKE"
IBAN_LENGTHS = {"ES": 24, "DE": 22, "GB": 22, "FR": 27, "NL": 18}
TEMPLATES = [
    "Hi, my {} stopped working yesterday, please help.",
    "Hola, mi {} no funciona desde ayer.",
    "Customer wrote: contact me at {} as soon as possible.",
    "El cliente dice: puede escribirme a {} mañana.",
    "Ticket updated; reference {} attached by the agent.",
    "Please refund to {} before Friday.",
    "Por favor, reembolse a {} antes del viernes.",
]


def luhn_digit(body: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(body)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            d = d - 9 if d > 9 else d
        total += d
    return str((10 - total % 10) % 10)


def card(rng: random.Random, valid: bool) -> str:
    prefix = rng.choice(["4", "51", "52", "37", "6011"])
    length = 15 if prefix == "37" else 16
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    digit = luhn_digit(body)
    if not valid:
        digit = str((int(digit) + rng.randint(1, 9)) % 10)
    number = body + digit
    if rng.random() < 0.5:
        return " ".join(number[i : i + 4] for i in range(0, len(number), 4))
    return number


def iban(rng: random.Random, valid: bool) -> str:
    country = rng.choice(sorted(IBAN_LENGTHS))
    bban = "".join(rng.choice(string.digits) for _ in range(IBAN_LENGTHS[country] - 4))
    if country in ("GB", "NL"):
        bank = "".join(rng.choice(string.ascii_uppercase) for _ in range(4))
        bban = bank + bban[4:]
    rearranged = bban + country + "00"
    numeric = "".join(str(int(c, 36)) for c in rearranged)
    check = 98 - int(numeric) % 97
    if not valid:
        check = (check + rng.randint(1, 90)) % 97 + 2
    text = f"{country}{check:02d}{bban}"
    if rng.random() < 0.5:
        return " ".join(text[i : i + 4] for i in range(0, len(text), 4))
    return text


def dni(rng: random.Random, valid: bool) -> str:
    number = rng.randint(10_000_000, 99_999_999)
    letter = DNI_LETTERS[number % 23]
    if not valid:
        letter = DNI_LETTERS[(number + rng.randint(1, 22)) % 23]
    return f"{number}{letter}"


def nie(rng: random.Random, valid: bool) -> str:
    first = rng.choice("XYZ")
    number = rng.randint(1_000_000, 9_999_999)
    letter = DNI_LETTERS[int(f"{'XYZ'.index(first)}{number}") % 23]
    if not valid:
        letter = DNI_LETTERS[(DNI_LETTERS.index(letter) + rng.randint(1, 22)) % 23]
    return f"{first}{number}{letter}"


def ssn(rng: random.Random, valid: bool) -> str:
    area = rng.randint(1, 665) if valid else rng.choice([0, 666, rng.randint(900, 999)])
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def phone(rng: random.Random) -> str:
    kind = rng.choice(["us", "us_intl", "es", "gb", "fr", "de"])
    exchange, line = rng.randint(200, 999), rng.randint(1000, 9999)
    if kind == "us":
        return f"({rng.choice(['415', '212', '617', '312'])}) {exchange}-{line}"
    if kind == "us_intl":
        return f"+1 {rng.choice(['415', '646', '206'])} {exchange} {line}"
    if kind == "es":
        return f"+34 6{rng.randint(10, 99)} {rng.randint(100, 999)} {rng.randint(100, 999)}"
    if kind == "gb":
        return f"+44 20 {rng.randint(7000, 8999)} {rng.randint(1000, 9999)}"
    if kind == "fr":
        pairs = " ".join(str(rng.randint(10, 99)) for _ in range(4))
        return f"+33 6 {pairs}"
    return f"+49 30 {rng.randint(1000000, 9999999)}"


def email(rng: random.Random) -> str:
    user = rng.choice(["ana", "luis.perez", "j.smith", "maria_g", "ops+billing"])
    domain = rng.choice(["example.com", "correo.es", "mail.example.co.uk", "empresa.org"])
    return f"{user}{rng.randint(1, 999)}@{domain}"


def ip(rng: random.Random) -> str:
    if rng.random() < 0.7:
        return ".".join(str(rng.randint(1, 254)) for _ in range(4))
    return "2001:db8:" + ":".join(f"{rng.randint(0, 65535):x}" for _ in range(3)) + "::1"


def negative(rng: random.Random) -> str:
    kind = rng.randrange(8)
    if kind == 0:
        return card(rng, False)
    if kind == 1:
        return iban(rng, False)
    if kind == 2:
        return dni(rng, False)
    if kind == 3:
        return nie(rng, False)
    if kind == 4:
        return ssn(rng, False)
    if kind == 5:
        return f"order #{rng.randint(10**9, 10**10)}"
    if kind == 6:
        return f"v{rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 99)}"
    day, month, year = rng.randint(1, 28), rng.randint(1, 12), rng.randint(10, 30)
    return f"{day:02d}/{month:02d}/20{year} for {rng.randint(1, 999)},{rng.randint(0, 99):02d} EUR"


GENERATORS = {
    "EMAIL": email,
    "PHONE": phone,
    "CARD": lambda r: card(r, True),
    "IBAN": lambda r: iban(r, True),
    "IP": ip,
    "SSN": lambda r: ssn(r, True),
    "DNI": lambda r: dni(r, True),
    "NIE": lambda r: nie(r, True),
}


def generate(count: int, seed: int) -> list[tuple[str, list[tuple[str, int, int]]]]:
    """``count`` texts with their labelled spans."""
    rng = random.Random(seed)
    rows = []
    for _ in range(count):
        pieces: list[tuple[str | None, str]] = []
        for _ in range(rng.randint(0, 3)):
            kind = rng.choice(TYPES)
            pieces.append((kind, GENERATORS[kind](rng)))
        for _ in range(rng.randint(0, 2)):
            pieces.append((None, negative(rng)))
        rng.shuffle(pieces)
        text, labels = "", []
        for kind, value in pieces:
            template = rng.choice(TEMPLATES)
            before, after = template.split("{}")
            start = len(text) + len(before)
            text += before + value + after + " "
            if kind is not None:
                labels.append((kind, start, start + len(value)))
        rows.append((text.strip() or "Nothing to see here.", labels))
    return rows


def run(count: int, seed: int) -> dict[str, Any]:
    """Detect on every generated text; precision and recall per type."""
    from cauce.genai.safety.pii import detect

    rows = generate(count, seed)
    counts = {t: {"tp": 0, "fp": 0, "fn": 0} for t in TYPES}
    mistakes: list[dict[str, Any]] = []
    started = time.perf_counter()
    for text, labels in rows:
        found = {(e.type, e.start, e.end) for e in detect(text)}
        expected = set(labels)
        for kind, start, end in found:
            key = "tp" if (kind, start, end) in expected else "fp"
            counts[kind][key] += 1
            if key == "fp" and len(mistakes) < 20:
                mistakes.append({"type": kind, "text": text[start:end], "kind": "false positive"})
        for kind, start, end in expected - found:
            counts[kind]["fn"] += 1
            if len(mistakes) < 20:
                mistakes.append({"type": kind, "text": text[start:end], "kind": "missed"})
    seconds = time.perf_counter() - started
    scores = {}
    for kind, c in counts.items():
        precision = c["tp"] / (c["tp"] + c["fp"]) if c["tp"] + c["fp"] else 1.0
        recall = c["tp"] / (c["tp"] + c["fn"]) if c["tp"] + c["fn"] else 1.0
        scores[kind] = {**c, "precision": precision, "recall": recall}
    return {
        "machine": machine(),
        "load": load_average(),
        "texts": count,
        "seed": seed,
        "labels": sum(len(labels) for _, labels in rows),
        "scores": scores,
        "ms_per_text": seconds * 1000 / count,
        "mistakes": mistakes,
    }


def main() -> None:
    """Run, print a table, write the figures."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--texts", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--json", help="write every figure here")
    args = parser.parse_args()
    result = run(args.texts, args.seed)
    print(f"{result['texts']} texts, {result['labels']} labelled values, seed {result['seed']}")
    print("type  | found | wrong | missed | precision | recall | target (>= 0.95 both)")
    for kind, s in result["scores"].items():
        met = s["precision"] >= 0.95 and s["recall"] >= 0.95
        print(
            f"{kind:<5} | {s['tp']:>5} | {s['fp']:>5} | {s['fn']:>6} | {s['precision']:>9.3f} | "
            f"{s['recall']:>6.3f} | {'PASS' if met else 'MISS'}"
        )
    print(f"{result['ms_per_text']:.2f} ms per text")
    for mistake in result["mistakes"][:10]:
        print(f"  {mistake['kind']}: {mistake['type']} {mistake['text']!r}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
