"""Which live answers an evaluator scores: a seeded share, the same run after run."""

from __future__ import annotations

import hashlib

__all__ = ["sample"]


def sample(ids: list[str], share: float, seed: int, limit: int) -> list[int]:
    """Positions of the records to score: those whose hash of ``seed`` and id falls under
    ``share``, at most ``limit`` (the lowest hashes), in record order. The same request is in
    or out of every window that holds it, whoever draws."""

    def draw(record_id: str) -> float:
        digest = hashlib.sha256(f"{seed}:{record_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    draws = [(draw(i), position) for position, i in enumerate(ids)]
    picked = sorted(d for d in draws if d[0] < share)[:limit]
    return sorted(position for _, position in picked)
