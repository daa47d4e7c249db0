"""Text-overlap evaluators: exact match, token F1, ROUGE-L and BLEU, over whole columns.

Every evaluator takes a column of answers and a column of references of the same length (a
reference may be one text or a list of texts; a row's score is then its best over them) and
returns one score per row as a float64 NumPy array, except :func:`corpus_bleu`, one number for
the whole column. Each is written to give the same numbers as its reference implementation,
which the tests compare it with:

============== =========================================== =====================================
evaluator      range                                       reference
============== =========================================== =====================================
exact_match    0 or 1                                      SQuAD v1.1 ``exact_match_score``
token_f1       0..1                                        SQuAD v1.1 ``f1_score``
rouge_l        0..1                                        ``rouge_score`` ``rougeL`` F-measure
sentence_bleu  0..100                                      ``sacrebleu.sentence_bleu``
corpus_bleu    0..100                                      ``sacrebleu.corpus_bleu``
============== =========================================== =====================================

Example::

    from cauce.genai.evals import metrics
    metrics.token_f1(["Paris is the capital"], ["The capital is Paris."])   # array([1.])
"""

from __future__ import annotations

import math
import re
import string
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from cauce.errors import InvalidInput

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Scores = npt.NDArray[np.float64]

__all__ = [
    "bleu_tokens",
    "corpus_bleu",
    "exact_match",
    "lcs_length",
    "normalize_answer",
    "reference_lists",
    "rouge_l",
    "rouge_tokens",
    "sentence_bleu",
    "texts",
    "token_f1",
]

References = Iterable[str | Sequence[str]]


# -- columns ----------------------------------------------------------------------------------


def texts(name: str, values: Iterable[Any]) -> list[str]:
    """``values`` as a list of texts; InvalidInput naming ``name`` and the row otherwise."""
    out = list(values)
    for i, value in enumerate(out):
        if not isinstance(value, str):
            raise InvalidInput(
                f"{name}[{i}] is {type(value).__name__}, not text",
                hint="give every row a string (an empty answer is '')",
            )
    return out


def reference_lists(name: str, values: References, rows: int) -> list[list[str]]:
    """Each row's references as a non-empty list of texts; ``rows`` rows or InvalidInput."""
    out: list[list[str]] = []
    for i, value in enumerate(values):
        refs = [value] if isinstance(value, str) else list(value)
        if not refs or not all(isinstance(r, str) for r in refs):
            raise InvalidInput(f"{name}[{i}] must be a text or a non-empty list of texts")
        out.append(refs)
    if len(out) != rows:
        raise InvalidInput(f"{rows} answers but {len(out)} {name}: give one row for each answer")
    return out


def _array(values: Sequence[float]) -> Scores:
    import numpy as np

    return np.asarray(values, dtype=np.float64)


def _best_per_row(
    answers: Iterable[Any],
    references: References,
    score: Callable[[str, list[str]], float],
) -> Scores:
    hyps = texts("answers", answers)
    refs = reference_lists("references", references, len(hyps))
    return _array([score(h, r) for h, r in zip(hyps, refs, strict=True)])


# -- SQuAD: exact match and token F1 ----------------------------------------------------------

_PUNCTUATION = str.maketrans("", "", string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """SQuAD v1.1's normalisation: lower case, no ASCII punctuation, no a/an/the, single spaces."""
    return " ".join(_ARTICLES.sub(" ", text.lower().translate(_PUNCTUATION)).split())


def exact_match(
    answers: Iterable[str], references: References, *, normalize: bool = True
) -> Scores:
    """1.0 where the answer equals a reference after :func:`normalize_answer`, else 0.0.

    With ``normalize=False`` the texts are compared exactly as given.
    """
    if normalize:
        memo = _memo(normalize_answer)
        return _best_per_row(
            answers, references, lambda h, refs: float(any(memo(h) == memo(r) for r in refs))
        )
    return _best_per_row(answers, references, lambda h, refs: float(h in refs))


def token_f1(answers: Iterable[str], references: References) -> Scores:
    """SQuAD v1.1 token F1: the harmonic mean of token precision and recall after normalising.

    Tokens are the whitespace-separated words of :func:`normalize_answer`; the overlap counts
    each token as often as it occurs in both (multiset intersection). No token in common gives
    0, also when both texts are empty (SQuAD v1.1's rule; v2.0 would give 1 there).
    """
    memo = _memo(lambda text: Counter(normalize_answer(text).split()))

    def f1(answer: str, refs: list[str]) -> float:
        predicted = memo(answer)
        best = 0.0
        for ref in refs:
            truth = memo(ref)
            same = sum((predicted & truth).values())
            if same == 0:
                continue
            precision = 1.0 * same / predicted.total()
            recall = 1.0 * same / truth.total()
            best = max(best, (2 * precision * recall) / (precision + recall))
        return best

    return _best_per_row(answers, references, f1)


def _memo(fn: Callable[[str], Any]) -> Callable[[str], Any]:
    """``fn`` remembered per text for one call: answers and references often repeat."""
    seen: dict[str, Any] = {}

    def call(text: str) -> Any:
        if text not in seen:
            seen[text] = fn(text)
        return seen[text]

    return call


# -- ROUGE-L ----------------------------------------------------------------------------------

_NON_ALPHANUM = re.compile(r"[^a-z0-9]+")
_VALID_TOKEN = re.compile(r"^[a-z0-9]+$")


def rouge_tokens(text: str, stem: bool = False) -> list[str]:
    """``rouge_score``'s tokens: lower case, runs of anything but a-z and 0-9 split words.

    With ``stem``, words longer than 3 characters go through NLTK's Porter stemmer, as
    ``rouge_score.rouge_scorer.RougeScorer(use_stemmer=True)`` does.
    """
    tokens = _NON_ALPHANUM.sub(" ", text.lower()).split()
    if stem:
        stemmed = _porter()
        tokens = [s for s in map(stemmed, tokens) if s]
    return tokens


@lru_cache(maxsize=1)
def _porter() -> Callable[[str], str]:
    """A word's token after rouge_score's stemming step ("" when it drops it), remembered."""
    try:
        from nltk.stem import porter
    except ImportError:  # pragma: no cover - nltk comes with the genai extra
        raise InvalidInput(
            "ROUGE-L with stem=True needs NLTK's Porter stemmer",
            hint="pip install 'cauce[genai]'",
        ) from None
    stemmer = porter.PorterStemmer()

    @lru_cache(maxsize=65536)
    def stemmed(word: str) -> str:
        token = stemmer.stem(word) if len(word) > 3 else word
        return token if _VALID_TOKEN.match(token) else ""

    return stemmed


def rouge_l(answers: Iterable[str], references: References, *, stem: bool = False) -> Scores:
    """ROUGE-L F-measure: from the longest common subsequence (LCS) of the token lists.

    P = LCS / answer tokens, R = LCS / reference tokens, F = 2PR / (P + R); 0 when either
    side has no token. Tokens are :func:`rouge_tokens`. Equal to
    ``RougeScorer(["rougeL"], use_stemmer=stem).score(reference, answer)["rougeL"].fmeasure``
    (and ``score_multi`` over several references: the best F).
    """
    memo = _memo(lambda text: rouge_tokens(text, stem))

    def score(answer: str, refs: list[str]) -> float:
        predicted = memo(answer)
        best = 0.0
        for ref in refs:
            target = memo(ref)
            if not predicted or not target:
                continue
            lcs = lcs_length(target, predicted)
            precision = lcs / len(predicted)
            recall = lcs / len(target)
            if precision + recall > 0:
                best = max(best, 2 * precision * recall / (precision + recall))
        return best

    return _best_per_row(answers, references, score)


def lcs_length(a: Sequence[str], b: Sequence[str]) -> int:
    """Length of the longest common subsequence of two token lists (bit-parallel, Hyyrö 2004).

    One bit per token of ``a``; each token of ``b`` updates the bit vector with one addition,
    so the cost is len(b) integer operations instead of len(a) x len(b) table cells.
    """
    masks: dict[str, int] = {}
    for i, token in enumerate(a):
        masks[token] = masks.get(token, 0) | (1 << i)
    full = (1 << len(a)) - 1
    v = full
    for token in b:
        m = masks.get(token)
        if m:
            u = v & m
            v = (v + u) | (v - u)
    return len(a) - (v & full).bit_count()


# -- BLEU -------------------------------------------------------------------------------------

MAX_ORDER = 4
SMOOTHING = {"exp": None, "none": None, "floor": 0.1, "add-k": 1.0}

# sacrebleu's ``13a`` tokenizer (mteval-v13a, as used by WMT), rule for rule. Its first rule,
# r"([\{-\~\[-\` -\&\(-\+\:-\@\/])" -> r" \1 ", pads single characters; str.replace does it
# per character present (a regex with a template costs a Python call per match). The class also
# holds the space, whose padding only adds whitespace, which the final split drops.
_13A_PAD = '!"#$%&()*+/:;<=>?@[\\]^_`{|}~'
# The other three rules, with callables: CPython expands a template like r"\1 \2 " in Python
# for every match, slower than a small function.
_13A_PERIOD_COMMA: list[tuple[re.Pattern[str], Callable[[re.Match[str]], str]]] = [
    (re.compile(r"([^0-9])([\.,])"), lambda m: f"{m[1]} {m[2]} "),
    (re.compile(r"([\.,])([^0-9])"), lambda m: f" {m[1]} {m[2]}"),
]
_13A_DASH = re.compile(r"([0-9])(-)")


def _prepare_13a(line: str) -> str:
    """13a's language-independent part: markup and line breaks, then a space at both ends."""
    line = line.replace("<skipped>", "").replace("-\n", "").replace("\n", " ")
    if "&" in line:
        line = (
            line.replace("&quot;", '"')
            .replace("&amp;", "&")
            .replace("&lt;", "<")
            .replace("&gt;", ">")
        )
    return f" {line} "


def _split_13a(text: str) -> str:
    """13a's regular-expression rules over ``text`` (one prepared line, or several)."""
    for char in _13A_PAD:
        if char in text:
            text = text.replace(char, f" {char} ")
    if "." in text or "," in text:
        for pattern, replacement in _13A_PERIOD_COMMA:
            text = pattern.sub(replacement, text)
    if "-" in text:
        text = _13A_DASH.sub(lambda m: f"{m[1]} {m[2]} ", text)
    return text


@lru_cache(maxsize=65536)
def _tokenize_13a(line: str) -> tuple[str, ...]:
    return tuple(_split_13a(_prepare_13a(line)).split())


_TOKEN_OR_BREAK = re.compile(r"\S+|\n")


def _encode_13a_column(lines: list[str]) -> tuple[Any, Any, int]:
    """The 13a tokens of many lines as integer ids: (all ids, tokens per line, vocabulary size).

    As :func:`_tokenize_13a_column`, but the joined text is cut into tokens and line breaks in
    one pass and the ids are counted per line with NumPy, with no list per line.
    """
    import numpy as np

    if not lines:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64), 1
    joined = _split_13a("\n".join(_prepare_13a(line) for line in lines))
    flat = _TOKEN_OR_BREAK.findall(joined)
    vocab = {token: i for i, token in enumerate(dict.fromkeys(flat))}
    ids = np.fromiter(map(vocab.__getitem__, flat), dtype=np.int64, count=len(flat))
    is_break = ids == vocab.get("\n", -1)
    line = np.cumsum(is_break)[~is_break]  # each token's line
    return ids[~is_break], np.bincount(line, minlength=len(lines)), len(vocab)


def _tokenize_13a_column(lines: list[str]) -> list[list[str]]:
    """The 13a tokens of many lines with one pass of each rule over them all.

    The prepared lines hold no line break and begin and end with a space, so joined by line
    breaks no rule can match across two of them (each rule needs a digit, a period, a comma or
    a dash next to the other character): the result is the same as line by line, without the
    per-call cost of eight replace-or-substitute steps per line.
    """
    if not lines:
        return []
    joined = _split_13a("\n".join(_prepare_13a(line) for line in lines))
    return [part.split() for part in joined.split("\n")]


def bleu_tokens(text: str, lowercase: bool = False) -> list[str]:
    """sacrebleu's ``13a`` tokens of ``text`` (trailing whitespace dropped first, as it does)."""
    text = text.rstrip()
    return list(_tokenize_13a(text.lower() if lowercase else text))


_KEY_LIMIT = 2**62  # n-gram and (row, n-gram) ids stay below it, in int64


def _bleu_stats(hyps: list[str], refs: list[list[str]], lowercase: bool) -> list[list[int]]:
    """Per row: [answer length, closest reference length, matches per order, n-grams per order].

    sacrebleu's statistics, computed for the whole column at once: tokens become integer ids,
    an n-gram's id is the id of its (n-1)-gram prefix paired with its last token, and the
    clipped matches of every row are counted with sorted-array operations instead of a
    Counter per text.
    """
    import numpy as np

    rows = len(hyps)
    flat_refs = [r for row in refs for r in row]
    text_index: dict[str, int] = {}
    for text in [*hyps, *flat_refs]:
        text_index.setdefault(text, len(text_index))
    # sacrebleu strips trailing whitespace (and lower-cases, when asked) before tokenising
    prepared = [(t.lower() if lowercase else t).rstrip() for t in text_index]
    text_tokens, text_lengths, width = _encode_13a_column(prepared)
    text_starts = np.cumsum(text_lengths) - text_lengths

    # segments: the hypotheses (0..rows-1), then every reference; each a text's tokens
    seg_text = np.fromiter(
        map(text_index.__getitem__, [*hyps, *flat_refs]),
        dtype=np.int64,
        count=rows + len(flat_refs),
    )
    lengths = text_lengths[seg_text]
    segment = np.repeat(np.arange(len(seg_text)), lengths)
    seg_starts = np.cumsum(lengths) - lengths
    position = np.arange(int(lengths.sum())) - np.repeat(seg_starts, lengths)
    tokens = text_tokens[np.repeat(text_starts[seg_text], lengths) + position]
    # each segment's owning row
    owner = np.concatenate([np.arange(rows), np.repeat(np.arange(rows), [len(r) for r in refs])])
    is_hyp = segment < rows

    # [answer length, closest reference length, matches per order, n-grams per order]
    stats = np.zeros((rows, 2 + 2 * MAX_ORDER), dtype=np.int64)
    stats[:, 0] = lengths[:rows]
    single_reference = all(len(row) == 1 for row in refs)
    if single_reference:
        stats[:, 1] = lengths[rows:]
    else:
        ref_lens = lengths[rows:].tolist()
        next_ref = 0
        for row, refs_of_row in enumerate(refs):  # the closest reference length; ties: shorter
            hyp_len = int(stats[row, 0])
            best = -1
            for length in ref_lens[next_ref : next_ref + len(refs_of_row)]:
                diff, gap = abs(hyp_len - length), abs(hyp_len - best)
                if best < 0 or diff < gap or (diff == gap and length < best):
                    best = length
            next_ref += len(refs_of_row)
            stats[row, 1] = best

    gram = tokens  # order-1 ids: the token ids; -1 where no n-gram starts
    room = lengths[segment] - position  # tokens from here to the end of the segment
    for n in range(1, MAX_ORDER + 1):
        if n > 1:
            # the n-gram starting at i: the (n-1)-gram at i and the token at i + n - 1
            index = np.nonzero(room >= n)[0]
            pairs = gram[index] * width + tokens[index + n - 1]
            if len(pairs) and (int(pairs.max()) + 1) * max(rows, width) >= _KEY_LIMIT:
                pairs = np.unique(pairs, return_inverse=True)[1]  # compact ids: no overflow
            gram = np.full(len(tokens), -1, dtype=np.int64)
            gram[index] = pairs
        valid = gram >= 0
        count = int(gram.max()) + 1 if valid.any() else 1
        key = owner[segment] * count + gram  # (row, n-gram) as one integer
        if single_reference:
            correct = _matches_one_reference(key[valid], is_hyp[valid], count, rows)
        else:
            hyp_keys, hyp_counts = np.unique(key[valid & is_hyp], return_counts=True)
            ref_keys, ref_counts = _max_count_per_key(
                key[valid & ~is_hyp], segment[valid & ~is_hyp]
            )
            at = np.minimum(np.searchsorted(ref_keys, hyp_keys), max(len(ref_keys) - 1, 0))
            found = ref_keys[at] == hyp_keys if len(ref_keys) else np.zeros(len(hyp_keys), bool)
            matches = np.minimum(hyp_counts[found], ref_counts[at[found]])
            correct = np.bincount(hyp_keys[found] // count, weights=matches, minlength=rows)
        stats[:, 1 + n] = correct.astype(np.int64)
        stats[:, 1 + MAX_ORDER + n] = np.maximum(stats[:, 0] - n + 1, 0)
    out: list[list[int]] = stats.tolist()
    return out


def _matches_one_reference(keys: Any, from_answer: Any, count: int, rows: int) -> Any:
    """Clipped matches per row when each row has one reference: one sort of all the keys."""
    import numpy as np

    if len(keys) == 0:
        return np.zeros(rows)
    order = np.argsort(keys)
    k, answer = keys[order], from_answer[order]
    starts = np.flatnonzero(np.r_[True, k[1:] != k[:-1]])
    run = np.cumsum(np.r_[True, k[1:] != k[:-1]]) - 1  # which (row, n-gram) each key is
    in_answer = np.bincount(run, weights=answer, minlength=len(starts))
    in_reference = np.diff(np.r_[starts, len(k)]) - in_answer
    matches = np.minimum(in_answer, in_reference)
    return np.bincount(k[starts] // count, weights=matches, minlength=rows)


def _max_count_per_key(keys: Any, segments: Any) -> tuple[Any, Any]:
    """Unique ``keys`` (row, n-gram) and the highest count any one reference segment gives."""
    import numpy as np

    if len(keys) == 0:
        return keys, np.zeros(0, dtype=np.int64)
    order = np.lexsort((segments, keys))  # by key, then by segment
    k, s = keys[order], segments[order]
    runs = np.flatnonzero(np.r_[True, (k[1:] != k[:-1]) | (s[1:] != s[:-1])])
    counts = np.diff(np.r_[runs, len(k)])  # occurrences of each (key, segment)
    run_keys = k[runs]
    firsts = np.flatnonzero(np.r_[True, run_keys[1:] != run_keys[:-1]])
    return run_keys[firsts], np.maximum.reduceat(counts, firsts)


def _bleu(stats: list[int], smooth: str, smooth_value: float | None, effective: bool) -> float:
    """BLEU (0..100) from summed statistics: sacrebleu's ``BLEU.compute_bleu``, step for step."""
    sys_len, ref_len = stats[0], stats[1]
    correct: list[float] = list(stats[2 : 2 + MAX_ORDER])
    total: list[float] = list(stats[2 + MAX_ORDER :])
    value = SMOOTHING[smooth] if smooth_value is None else smooth_value
    bp = 1.0
    if sys_len < ref_len:
        bp = math.exp(1 - ref_len / sys_len) if sys_len > 0 else 0.0
    precisions = [0.0] * MAX_ORDER
    if not any(correct):
        return 0.0
    smooth_mteval = 1.0
    order = MAX_ORDER
    for n in range(1, MAX_ORDER + 1):
        if smooth == "add-k" and n > 1:
            assert value is not None
            correct[n - 1] += value
            total[n - 1] += value
        if total[n - 1] == 0:
            break
        if effective:
            order = n
        if correct[n - 1] == 0:
            if smooth == "exp":
                smooth_mteval *= 2
                precisions[n - 1] = 100.0 / (smooth_mteval * total[n - 1])
            elif smooth == "floor":
                assert value is not None
                precisions[n - 1] = 100.0 * value / total[n - 1]
        else:
            precisions[n - 1] = 100.0 * correct[n - 1] / total[n - 1]
    logs = [math.log(p) if p != 0.0 else -9999999999 for p in precisions[:order]]
    return bp * math.exp(sum(logs) / order)


def _check_smoothing(smooth: str) -> None:
    if smooth not in SMOOTHING:
        raise InvalidInput(f"smooth must be one of {sorted(SMOOTHING)}, not {smooth!r}")


def sentence_bleu(
    answers: Iterable[str],
    references: References,
    *,
    smooth: str = "exp",
    smooth_value: float | None = None,
    lowercase: bool = False,
    effective_order: bool = True,
) -> Scores:
    """BLEU of each answer on its own (0..100), as ``sacrebleu.sentence_bleu`` computes it.

    The geometric mean of the clipped 1- to 4-gram precisions of the ``13a`` tokens times the
    brevity penalty exp(1 - r/c) when the answer (c tokens) is shorter than the closest
    reference (r). Orders with no n-gram in the answer are left out (effective order, as
    sacrebleu's ``use_effective_order=True`` default; with ``effective_order=False`` they
    count as 0 and such a short answer scores 0); an order with no match is smoothed by
    ``smooth`` (sacrebleu's default ``exp``: the k-th such order counts as 1 / 2^k matches).
    No match at all gives 0.
    """
    _check_smoothing(smooth)
    hyps = texts("answers", answers)
    refs = reference_lists("references", references, len(hyps))
    return _array(
        [
            _bleu(row, smooth, smooth_value, effective_order)
            for row in _bleu_stats(hyps, refs, lowercase)
        ]
    )


def corpus_bleu(
    answers: Iterable[str],
    references: References,
    *,
    smooth: str = "exp",
    smooth_value: float | None = None,
    lowercase: bool = False,
) -> float:
    """BLEU of the whole column (0..100), as ``sacrebleu.corpus_bleu`` computes it.

    The n-gram matches and lengths of every row are summed first, then BLEU is taken once
    over the sums (with all four orders, as sacrebleu does by default): not the mean of the
    rows' sentence BLEU.
    """
    _check_smoothing(smooth)
    hyps = texts("answers", answers)
    refs = reference_lists("references", references, len(hyps))
    if not hyps:
        raise InvalidInput("corpus BLEU needs at least one answer")
    sums = [0] * (2 + 2 * MAX_ORDER)
    for row in _bleu_stats(hyps, refs, lowercase):
        for i, value in enumerate(row):
            sums[i] += value
    return _bleu(sums, smooth, smooth_value, effective=False)
