"""Offline evaluators against their reference implementations, over many generated cases.

References: SQuAD v1.1's official ``evaluate-v1.1.py`` (written out below from its published
definition), Google's ``rouge-score``, ``sacrebleu`` and ``sklearn.metrics.ndcg_score``; the
embedding evaluators against sentence-transformers' own encode and ``util.cos_sim``.
"""

from __future__ import annotations

import json
import math
import random
import re
import string
from collections import Counter
from typing import Any

import numpy as np
import pytest

from cauce.errors import InvalidInput
from cauce.genai.evals import metrics, retrieval, semantic
from optional import need

rouge_scorer = need("rouge_score.rouge_scorer", "dev")
sacrebleu = need("sacrebleu", "dev")

# Words chosen to hit every rule: articles, case, punctuation, numbers with . , and -, HTML
# entities, non-ASCII letters, words the Porter stemmer changes, repeated words.
WORDS = """the The a an An THE cat cats sat on mat . , ! ? ; : ' " ( ) - -- running runs ran
connection connected generously Paris capital France 3.5 1,000 2-3 10-20 U.S. e.g.
&amp; &quot; <skipped> café naïve Zürich über 東京 emoji🙂 x-ray don't it's $5 50% a.m."""
VOCAB = WORDS.split()


def generated_texts(rng: random.Random, count: int) -> list[str]:
    """``count`` texts of 0-30 words from VOCAB, some glued, some with newlines or spaces."""
    out = []
    for _ in range(count):
        words = [rng.choice(VOCAB) for _ in range(rng.choice([0, 1, 2, 5, 12, 30]))]
        joiner = rng.choice([" ", " ", " ", "", "  ", "\n"])
        text = joiner.join(words)
        if rng.random() < 0.1:
            text = "  " + text + " \n"
        out.append(text)
    return out


def pairs(seed: int, count: int = 1500) -> tuple[list[str], list[str]]:
    """Answers and references: a third are copies or near-copies of their reference."""
    rng = random.Random(seed)
    refs = generated_texts(rng, count)
    answers = generated_texts(rng, count)
    for i in range(0, count, 3):
        words = refs[i].split()
        rng.shuffle(words) if rng.random() < 0.5 else None
        answers[i] = " ".join(words[: rng.randint(0, len(words))]) if words else refs[i]
    answers += ["", "", "only words", "...", "The"]
    refs += ["", "nothing shared", "", "...", "a"]
    return answers, refs


# -- SQuAD v1.1, as published (evaluate-v1.1.py) ----------------------------------------------


def squad_normalize_answer(s: str) -> str:
    def remove_articles(text: str) -> str:
        return re.sub(r"\b(a|an|the)\b", " ", text)

    def white_space_fix(text: str) -> str:
        return " ".join(text.split())

    def remove_punc(text: str) -> str:
        exclude = set(string.punctuation)
        return "".join(ch for ch in text if ch not in exclude)

    def lower(text: str) -> str:
        return text.lower()

    return white_space_fix(remove_articles(remove_punc(lower(s))))


def squad_f1_score(prediction: str, ground_truth: str) -> float:
    prediction_tokens = squad_normalize_answer(prediction).split()
    ground_truth_tokens = squad_normalize_answer(ground_truth).split()
    common = Counter(prediction_tokens) & Counter(ground_truth_tokens)
    num_same = sum(common.values())
    if num_same == 0:
        return 0
    precision = 1.0 * num_same / len(prediction_tokens)
    recall = 1.0 * num_same / len(ground_truth_tokens)
    return (2 * precision * recall) / (precision + recall)


def squad_exact_match_score(prediction: str, ground_truth: str) -> bool:
    return squad_normalize_answer(prediction) == squad_normalize_answer(ground_truth)


def squad_max_over_ground_truths(metric_fn: Any, prediction: str, ground_truths: list[str]) -> Any:
    return max(metric_fn(prediction, gt) for gt in ground_truths)


def test_normalisation_exact_match_and_f1_equal_squad_v1_1() -> None:
    answers, refs = pairs(seed=1)
    assert [metrics.normalize_answer(t) for t in answers] == [
        squad_normalize_answer(t) for t in answers
    ]
    f1 = metrics.token_f1(answers, refs)
    em = metrics.exact_match(answers, refs)
    assert f1.dtype == np.float64 and f1.shape == (len(answers),)
    assert f1.tolist() == [squad_f1_score(a, r) for a, r in zip(answers, refs, strict=True)]
    assert em.tolist() == [
        float(squad_exact_match_score(a, r)) for a, r in zip(answers, refs, strict=True)
    ]
    # the generated data covers the whole range, not only zeros
    assert 0 < (f1 == 1).sum() < len(f1) and ((f1 > 0) & (f1 < 1)).any()


def test_several_references_take_the_best_as_squad_does() -> None:
    rng = random.Random(2)
    answers = generated_texts(rng, 400)
    refs = [generated_texts(rng, rng.randint(1, 4)) for _ in answers]
    for i in range(0, 400, 4):
        refs[i][-1] = answers[i]
    f1 = metrics.token_f1(answers, refs)
    em = metrics.exact_match(answers, refs)
    assert f1.tolist() == [
        squad_max_over_ground_truths(squad_f1_score, a, r)
        for a, r in zip(answers, refs, strict=True)
    ]
    assert em.tolist() == [
        float(squad_max_over_ground_truths(squad_exact_match_score, a, r))
        for a, r in zip(answers, refs, strict=True)
    ]


def test_exact_match_edge_cases() -> None:
    assert metrics.exact_match(["The  Cat!"], ["cat"]).tolist() == [1.0]
    assert metrics.exact_match(["The  Cat!"], ["cat"], normalize=False).tolist() == [0.0]
    assert metrics.exact_match(["cat"], [["dog", "cat"]], normalize=False).tolist() == [1.0]
    # SQuAD v1.1: both empty after normalising is an exact match but an F1 of 0
    assert metrics.exact_match([""], ["the"]).tolist() == [1.0]
    assert metrics.token_f1([""], [""]).tolist() == [0.0]
    assert metrics.token_f1(["red fox"], ["blue whale"]).tolist() == [0.0]


# -- ROUGE-L ----------------------------------------------------------------------------------


@pytest.mark.parametrize("stem", [False, True])
def test_rouge_l_equals_rouge_score(stem: bool) -> None:
    answers, refs = pairs(seed=3)
    scorer = rouge_scorer.RougeScorer(["rougeL"], use_stemmer=stem)
    expected = [scorer.score(r, a)["rougeL"].fmeasure for a, r in zip(answers, refs, strict=True)]
    got = metrics.rouge_l(answers, refs, stem=stem)
    assert got.tolist() == expected
    assert ((got > 0) & (got < 1)).sum() > 100
    assert [metrics.rouge_tokens(t, stem) for t in answers] == [
        scorer._tokenizer.tokenize(t) for t in answers
    ]


def test_rouge_l_several_references_equal_score_multi() -> None:
    rng = random.Random(4)
    answers = generated_texts(rng, 300)
    refs = [generated_texts(rng, rng.randint(1, 3)) for _ in answers]
    scorer = rouge_scorer.RougeScorer(["rougeL"])
    expected = [
        scorer.score_multi(r, a)["rougeL"].fmeasure for a, r in zip(answers, refs, strict=True)
    ]
    assert metrics.rouge_l(answers, refs).tolist() == expected


def test_lcs_length_equals_the_dynamic_programming_table() -> None:
    rng = random.Random(5)
    for _ in range(500):
        a = [rng.choice("abcde") for _ in range(rng.randint(0, 70))]
        b = [rng.choice("abcdef") for _ in range(rng.randint(0, 70))]
        table = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
        for i in range(1, len(a) + 1):
            for j in range(1, len(b) + 1):
                table[i][j] = (
                    table[i - 1][j - 1] + 1
                    if a[i - 1] == b[j - 1]
                    else max(table[i - 1][j], table[i][j - 1])
                )
        assert metrics.lcs_length(a, b) == table[-1][-1]


# -- BLEU -------------------------------------------------------------------------------------


def test_13a_tokens_equal_sacrebleu() -> None:
    from sacrebleu.tokenizers.tokenizer_13a import Tokenizer13a

    tokenizer = Tokenizer13a()
    rng = random.Random(6)
    # en and em dashes; separators and spaces that str.split() also splits on
    alphabet = string.printable + "éü\u2013\u2014…€🙂東\x1c\x1f\u00a0\u2028\u3000\x85"
    lines = ["".join(rng.choice(alphabet) for _ in range(rng.randint(0, 80))) for _ in range(5000)]
    lines += generated_texts(rng, 1000)
    for line in lines:
        assert metrics.bleu_tokens(line) == tokenizer(line.rstrip()).split(), repr(line)
    # the column tokenisers (one pass over all lines) give the same tokens line by line
    expected = [tokenizer(line.rstrip()).split() for line in lines]
    stripped = [line.rstrip() for line in lines]
    assert metrics._tokenize_13a_column(stripped) == expected
    ids, lengths, size = metrics._encode_13a_column(stripped)
    assert lengths.tolist() == [len(tokens) for tokens in expected]
    vocabulary = list(dict.fromkeys(t for tokens in expected for t in tokens))
    assert size >= len(vocabulary)
    assert len(set(ids.tolist())) == len(vocabulary)
    names: dict[int, str] = {}
    flat = [t for tokens in expected for t in tokens]
    for i, token in zip(ids.tolist(), flat, strict=True):
        assert names.setdefault(i, token) == token  # one id, one token


@pytest.mark.parametrize("key_limit", [2**62, 1000])
def test_sentence_bleu_equals_sacrebleu(key_limit: int, monkeypatch: pytest.MonkeyPatch) -> None:
    # a low limit makes every order renumber its n-grams (the path for large vocabularies)
    monkeypatch.setattr(metrics, "_KEY_LIMIT", key_limit)
    answers, refs = pairs(seed=7)
    expected = [sacrebleu.sentence_bleu(a, [r]).score for a, r in zip(answers, refs, strict=True)]
    got = metrics.sentence_bleu(answers, refs)
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
    assert ((got > 0) & (got < 99.9)).sum() > 100 and np.isclose(got, 100).any()


@pytest.mark.parametrize(
    ("smooth", "value", "lowercase", "effective"),
    [
        ("none", None, False, True),
        ("floor", None, True, True),
        ("floor", 0.3, False, False),
        ("add-k", 2.0, False, True),
        ("exp", None, False, False),
    ],
)
def test_sentence_bleu_smoothing_case_and_order_options_equal_sacrebleu(
    smooth: str, value: float | None, lowercase: bool, effective: bool
) -> None:
    answers, refs = pairs(seed=8, count=600)
    expected = [
        sacrebleu.sentence_bleu(
            a,
            [r],
            smooth_method=smooth,
            smooth_value=value,
            lowercase=lowercase,
            use_effective_order=effective,
        ).score
        for a, r in zip(answers, refs, strict=True)
    ]
    got = metrics.sentence_bleu(
        answers,
        refs,
        smooth=smooth,
        smooth_value=value,
        lowercase=lowercase,
        effective_order=effective,
    )
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)


def test_bleu_with_several_references_equals_sacrebleu() -> None:
    rng = random.Random(9)
    answers = generated_texts(rng, 400)
    refs = [generated_texts(rng, rng.randint(1, 3)) for _ in answers]
    expected = [sacrebleu.sentence_bleu(a, r).score for a, r in zip(answers, refs, strict=True)]
    np.testing.assert_allclose(metrics.sentence_bleu(answers, refs), expected, rtol=1e-12)
    # corpus BLEU takes reference streams; a row with fewer references pads with None
    streams = [[r[i] if i < len(r) else None for r in refs] for i in range(3)]
    assert metrics.corpus_bleu(answers, refs) == pytest.approx(
        sacrebleu.corpus_bleu(answers, streams).score, rel=1e-12
    )


def test_corpus_bleu_equals_sacrebleu() -> None:
    for seed in (10, 11, 12):
        answers, refs = pairs(seed=seed, count=800)
        expected = sacrebleu.corpus_bleu(answers, [refs]).score
        assert metrics.corpus_bleu(answers, refs) == pytest.approx(expected, rel=1e-12)
    text = ["the cat sat on the mat", "a dog ran"]
    assert metrics.corpus_bleu(text, text) == pytest.approx(100.0)
    assert metrics.corpus_bleu(["x y z"], ["a b c"]) == 0.0
    assert metrics.corpus_bleu([""], ["a b c"]) == sacrebleu.corpus_bleu([""], [["a b c"]]).score


# -- input checks -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "evaluator",
    [metrics.exact_match, metrics.token_f1, metrics.rouge_l, metrics.sentence_bleu],
)
def test_bad_columns_are_refused_naming_the_row(evaluator: Any) -> None:
    with pytest.raises(InvalidInput, match=r"2 answers but 1 references"):
        evaluator(["a", "b"], ["a"])
    with pytest.raises(InvalidInput, match=r"answers\[1\] is NoneType"):
        evaluator(["a", None], ["a", "b"])
    with pytest.raises(InvalidInput, match=r"references\[0\]"):
        evaluator(["a"], [[]])
    assert evaluator([], []).tolist() == []


def test_bleu_refuses_an_unknown_smoothing_and_an_empty_corpus() -> None:
    with pytest.raises(InvalidInput, match="smooth must be one of"):
        metrics.sentence_bleu(["a"], ["a"], smooth="laplace")
    with pytest.raises(InvalidInput, match="at least one answer"):
        metrics.corpus_bleu([], [])


# -- retrieval --------------------------------------------------------------------------------


def generated_queries(seed: int, count: int = 600) -> tuple[list[list[str]], list[dict[str, int]]]:
    """Ranked lists (0-15 ids, some repeated) and graded labels (0-3; some all zero)."""
    rng = random.Random(seed)
    pool = [f"d{i}" for i in range(30)]
    retrieved, labels = [], []
    for q in range(count):
        ranked = [rng.choice(pool) for _ in range(rng.randint(0, 15))]
        labelled = rng.sample(pool, rng.randint(0, 10))
        grades = {doc: rng.choice([0, 1, 1, 2, 3]) for doc in labelled}
        if q % 10 == 0:
            grades = dict.fromkeys(labelled, 0)  # all-zero relevance
        retrieved.append(ranked)
        labels.append(grades)
    return retrieved, labels


def first_occurrences(ranked: list[str]) -> list[str | None]:
    """The list with every repeat of an id replaced by None (it earns nothing)."""
    seen: set[str] = set()
    out: list[str | None] = []
    for doc in ranked:
        out.append(None if doc in seen else doc)
        seen.add(doc)
    return out


def sklearn_ndcg(ranked: list[str], grades: dict[str, int], k: int) -> float:
    """sklearn's ndcg_score for one query: retrieved ids in rank order, then ``k + 1`` zero-grade
    fillers, then the labelled ids not retrieved (so they count only in the ideal ranking)."""
    from sklearn.metrics import ndcg_score

    shown = first_occurrences(ranked)
    y_true = [grades.get(d, 0) if d is not None else 0 for d in shown]
    y_true += [0] * (k + 1)
    y_true += [g for d, g in grades.items() if d not in ranked]
    y_score = list(range(len(y_true), 0, -1))
    return float(ndcg_score([y_true], [y_score], k=k))


@pytest.mark.parametrize("k", [1, 3, 10, 20])
def test_ndcg_equals_sklearn_ndcg_score(k: int) -> None:
    retrieved, labels = generated_queries(seed=13)
    got = retrieval.ndcg_at_k(retrieved, labels, k=k)
    expected = [sklearn_ndcg(r, g, k) for r, g in zip(retrieved, labels, strict=True)]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-15)
    assert ((got > 0) & (got < 1)).sum() > 20 and (got == 1).any()


def test_ndcg_of_a_full_candidate_list_equals_sklearn_on_the_batch() -> None:
    """The usual sklearn call: every labelled document scored, the mean over queries."""
    from sklearn.metrics import ndcg_score

    rng = np.random.default_rng(14)
    y_true = rng.integers(0, 4, size=(200, 12))
    y_score = rng.permutation(np.tile(np.arange(12.0), (200, 1)), axis=1)
    ranked = [[f"d{j}" for j in np.argsort(-row, kind="stable")] for row in y_score]
    labels = [{f"d{j}": int(g) for j, g in enumerate(row)} for row in y_true]
    for k in (1, 5, 12, 30):
        assert retrieval.ndcg_at_k(ranked, labels, k=k).mean() == pytest.approx(
            ndcg_score(y_true, y_score, k=k), rel=1e-12
        )


@pytest.mark.parametrize("k", [1, 5, 20])
def test_precision_recall_and_mrr_follow_their_definitions(k: int) -> None:
    retrieved, labels = generated_queries(seed=15)
    precision, recall, rr = [], [], []
    for ranked, grades in zip(retrieved, labels, strict=True):
        top = [d for d in first_occurrences(ranked)[:k] if d is not None]
        hits = [d for d in top if grades.get(d, 0) > 0]
        relevant = [d for d, g in grades.items() if g > 0]
        precision.append(len(hits) / k)
        recall.append(len(hits) / len(relevant) if relevant else 0.0)
        rank = next((i for i, d in enumerate(top) if grades.get(d, 0) > 0), None)
        rr.append(0.0 if rank is None else 1 / (first_occurrences(ranked).index(top[rank]) + 1))
    assert retrieval.precision_at_k(retrieved, labels, k).tolist() == pytest.approx(precision)
    assert retrieval.recall_at_k(retrieved, labels, k).tolist() == pytest.approx(recall)
    assert retrieval.mrr(retrieved, labels, k).tolist() == pytest.approx(rr)


def test_retrieval_edge_cases() -> None:
    # k larger than the list: precision still divides by k; the rest count what is there
    assert retrieval.precision_at_k([["a", "b"]], [{"a"}], k=10).tolist() == [0.1]
    assert retrieval.recall_at_k([["a", "b"]], [{"a", "c"}], k=10).tolist() == [0.5]
    assert retrieval.ndcg_at_k([["a"]], [{"a": 3}], k=10).tolist() == [1.0]
    # all-zero relevance and no retrieved ids: 0 everywhere
    for evaluator in (retrieval.precision_at_k, retrieval.recall_at_k, retrieval.ndcg_at_k):
        assert evaluator([["a", "b"], []], [{"a": 0, "b": 0}, {"a": 2}], k=3).tolist() == [0, 0]
    assert retrieval.mrr([["x", "a", "a"]], [{"a": 1}]).tolist() == [0.5]
    assert retrieval.mrr([["x", "a"]], [{"a": 1}], k=1).tolist() == [0.0]
    # a repeated id counts once
    assert retrieval.precision_at_k([["a", "a"]], [{"a"}], k=2).tolist() == [0.5]


def test_retrieval_refuses_bad_input() -> None:
    with pytest.raises(InvalidInput, match="k must be a whole number"):
        retrieval.precision_at_k([["a"]], [{"a"}], k=0)
    with pytest.raises(InvalidInput, match=r"relevance\[0\]\['a'\] is -1"):
        retrieval.ndcg_at_k([["a"]], [{"a": -1}], k=1)
    with pytest.raises(InvalidInput, match="2 retrieved lists but 1 relevance"):
        retrieval.recall_at_k([["a"], ["b"]], [{"a"}], k=1)
    with pytest.raises(InvalidInput, match=r"retrieved\[0\]"):
        retrieval.mrr(["abc"], [{"a"}])


# -- embeddings -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def minilm() -> Any:
    need("sentence_transformers", "genai")
    return semantic.minilm()


def test_embedding_similarity_equals_sentence_transformers_cosine(minilm: Any) -> None:
    from sentence_transformers import util

    answers = ["Paris is the capital of France.", "I like cats.", "", "The sky is blue."]
    refs = ["The capital of France is Paris.", "Stock markets fell today.", "", "The sky is blue."]
    got = semantic.embedding_similarity(answers, refs)
    expected = [
        float(util.cos_sim(minilm([a]), minilm([r]))[0, 0])
        for a, r in zip(answers, refs, strict=True)
    ]
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert got[0] > 0.9 and got[1] < 0.3 and got[3] == pytest.approx(1.0, abs=1e-5)
    best = semantic.embedding_similarity(["I like cats."], [["Stocks fell.", "I love cats."]])
    alone = semantic.embedding_similarity(["I like cats."], ["I love cats."])
    assert best[0] == pytest.approx(alone[0]) and best[0] > 0.8


def test_groundedness_proxy_counts_supported_claims(minilm: Any) -> None:
    contexts = [
        "The capital of France is Paris. Paris has about two million inhabitants.",
        "The Eiffel Tower was completed in 1889.",
    ]
    answers = [
        "Paris is the capital of France. About two million people live in Paris.",
        "Paris is the capital of France. The Eiffel Tower was completed in 1950.",
        "Bananas are yellow. Berlin is a large city.",
        "",
    ]
    scores = semantic.groundedness_proxy(answers, [contexts] * 4)
    assert scores[:3].tolist() == [1.0, 0.5, 0.0]
    assert math.isnan(scores[3])  # no claim: nothing to ground
    assert semantic.groundedness_proxy(["Paris is big."], [[]]).tolist() == [0.0]
    detail = semantic.claim_support(answers[1], contexts)
    assert [c.supported for c in detail] == [True, False]
    assert detail[1].context_sentence == "The Eiffel Tower was completed in 1889."
    assert detail[1].similarity > 0.6 and not detail[1].numbers_found


def test_split_claims() -> None:
    assert semantic.split_claims("One. Two!  Three?\nFour\n\n...") == [
        "One.",
        "Two!",
        "Three?",
        "Four",
    ]
    assert semantic.split_claims("  ") == []


def bag_of_letters(texts: list[str]) -> np.ndarray:
    """A real (if crude) embedding: letter counts. Lets the contract be tested without torch."""
    out = np.zeros((len(texts), 26))
    for i, text in enumerate(texts):
        for ch in text.lower():
            if "a" <= ch <= "z":
                out[i, ord(ch) - 97] += 1
    return out


def test_embedding_evaluators_take_any_embed_callable_and_embed_each_text_once() -> None:
    calls: list[list[str]] = []

    def embed(texts: list[str]) -> np.ndarray:
        calls.append(texts)
        return bag_of_letters(texts)

    got = semantic.embedding_similarity(["abc", "abc", "xyz"], ["abc", "cba", "abc"], embed=embed)
    assert got.tolist() == pytest.approx([1.0, 1.0, 0.0])
    assert calls == [["abc", "xyz", "cba"]]
    with pytest.raises(InvalidInput, match="embed returned shape"):
        semantic.embedding_similarity(["a"], ["b"], embed=lambda t: np.zeros((1, 3)))
    with pytest.raises(InvalidInput, match="min_overlap"):
        semantic.groundedness_proxy(["a"], ["b"], min_overlap=2, embed=embed)


def test_context_similarity_scores_how_near_the_retrieved_chunks_come(minilm: Any) -> None:
    import pandas as pd

    from cauce.genai.evals.runs import evaluator, score

    chosen = evaluator("context_similarity")
    assert chosen.inputs == ("question", "contexts")
    frame = pd.DataFrame(
        {
            "question": ["How do canary rollouts move traffic?"] * 2,
            "contexts": [
                json.dumps(["A canary rollout moves live traffic to a candidate in steps."]),
                json.dumps(["Invoices are sent on the first day of each month."]),
            ],
        }
    )
    table, means = score(frame, [chosen])
    near, far = table["score.context_similarity"]
    assert near > 0.5 > far and means["context_similarity"] == pytest.approx((near + far) / 2)
