"""Python nodes for the flow tests, importable by name from a CLI subprocess too."""

from __future__ import annotations

import threading
import time

ATTEMPTS: dict[str, int] = {}
_lock = threading.Lock()


def shout(text: str) -> str:
    """A Python node: fails on 'boom', sleeps on 'slow', fails once on 'flaky'."""
    if "boom" in text:
        raise ValueError("boom is not a question")
    if "slow" in text:
        time.sleep(3)
    if "flaky" in text:
        with _lock:
            ATTEMPTS[text] = ATTEMPTS.get(text, 0) + 1
            if ATTEMPTS[text] == 1:
                raise RuntimeError("flaky the first time")
    return text.upper()


def word_count(answer: str) -> dict[str, int]:
    return {"words": len(answer.split())}


def no_shouting(text: str) -> str | None:
    """A custom safety hook: two or more words in capitals are shouting."""
    loud = [w for w in text.split() if len(w) > 1 and w.isupper()]
    return "shouting" if len(loud) >= 2 else None
