"""LLM judges: prompts, reading the judge's answer, pass/fail labels, errors and the cache.

The judge model here is a small rule-based ``chat`` callable (word overlap between the context
and the response, answered as JSON): real code that reads the messages it is sent, so the whole
path — prompt, call, answer, parse, label, cache — runs. It says nothing about any model's
quality; the local LLM is wired to judges elsewhere.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from typing import Any

import pytest

from cauce.errors import InvalidInput
from cauce.genai.evals import judge as J

# -- reading answers --------------------------------------------------------------------------

READABLE = [
    ('{"score": 4, "reason": "Supported by the context."}', 4, "Supported by the context."),
    ('```json\n{"score": 2, "reason": "Mostly invented."}\n```', 2, "Mostly invented."),
    ('Verdict:\n{"Score": "5", "explanation": "All there."} Hope it helps.', 5, "All there."),
    ('{"groundedness": {"rating": 3.0, "reasoning": "Half of it."}}', 3, "Half of it."),
    ("Score: 4", 4, "Score: 4"),
    ("**Score:** 1\nReason: unrelated to the context", 1, "unrelated to the context"),
    ("The response is fine. Rating = 5.", 5, "The response is fine. Rating = 5."),
    ("I would give it a score of 3 because it is partial.", 3, None),
    ("4/5 - good but misses the date", 4, None),
    ("It deserves 2 out of 5.", 2, None),
    ("<score>4</score><reason>close to the source</reason>", 4, "close to the source"),
    ("<S0>thinking</S0><S1>Grounded.</S1><S2>5</S2>", 5, "Grounded."),
    ("3", 3, ""),
    (" **4**. ", 4, ""),
    ('Score: 4\n{"note": "no score here"}', 4, None),
    ("Score: 4/5", 4, None),
    ("**Rating** - 2", 2, None),
]


@pytest.mark.parametrize(("answer", "score", "reason"), READABLE)
def test_scores_are_read_from_every_usual_form(answer: str, score: int, reason: str | None) -> None:
    judgment = J.parse_judgment(answer)
    assert judgment.score == score
    if reason is not None:
        assert judgment.reason == reason


UNREADABLE = [
    ("", "empty"),
    ("   \n ", "empty"),
    ("The response is well grounded.", "no score"),
    ("Score: 7", "outside the 1-5 scale"),
    ('{"score": 0, "reason": "x"}', "outside the 1-5 scale"),
    ('{"score": 3.5}', "not a whole number"),
    ('{"score": "high"}', "not a number"),
    ('{"score": true}', "not a number"),
    ('{"score": 2} and then {"score": 4}', "different scores"),
    ("Score: 2. On reflection, score: 4.", "different scores"),
    ('{"reason": "forgot the score"}', "no score"),
    ("10/5", "outside the 1-5 scale"),
    ("Score: 8/10", "not on the 1-5 scale"),
    ("Rating: 4 out of 10", "not on the 1-5 scale"),
    ("score -1", "outside the 1-5 scale"),
]


@pytest.mark.parametrize(("answer", "message"), UNREADABLE)
def test_an_unreadable_answer_is_an_error_never_a_guess(answer: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        J.parse_judgment(answer)


# -- prompts ----------------------------------------------------------------------------------


def test_prompts_fill_their_slots_once_and_check_their_variables() -> None:
    messages = J.GROUNDEDNESS.messages(
        {"query": "Q?", "context": ["first passage", "second"], "response": "say {{query}}"}
    )
    assert [m["role"] for m in messages] == ["system", "user"]
    assert "first passage\n\nsecond" in messages[1]["content"]
    assert "say {{query}}" in messages[1]["content"]  # a value is text, never a template
    assert "{{" not in messages[0]["content"]
    with pytest.raises(InvalidInput, match=r"missing \['context'\]"):
        J.GROUNDEDNESS.messages({"query": "q", "response": "r"})
    with pytest.raises(InvalidInput, match=r"not a variable: \['extra'\]"):
        J.RELEVANCE.messages({"query": "q", "response": "r", "extra": "x"})
    with pytest.raises(InvalidInput, match="text or a list of texts"):
        J.COHERENCE.messages({"query": "q", "response": 3})
    with pytest.raises(InvalidInput, match="slots"):
        J.JudgePrompt("p", 1, "system {{a}}", "user {{b}}", variables=("a",))


def test_a_custom_rubric_becomes_a_prompt_of_its_own() -> None:
    prompt = J.rubric_prompt(
        "politeness", "1: rude. 5: courteous throughout.", variables=["response"], version=2
    )
    assert (prompt.id, prompt.version, prompt.variables) == ("rubric.politeness", 2, ("response",))
    [system, user] = prompt.messages({"response": "Thanks!"})
    assert "1: rude. 5: courteous throughout." in system["content"]
    assert user["content"] == "RESPONSE:\nThanks!"
    with pytest.raises(InvalidInput):
        J.rubric_prompt("x", "  ")


# -- a small real judge -----------------------------------------------------------------------


class OverlapJudge:
    """A rule-based judge model: the share of the response's words found in the context,
    mapped to 1-5 and answered as JSON. Counts its calls; can be told to answer badly."""

    def __init__(self, answer_override: str | None = None) -> None:
        self.calls = 0
        self.params: list[dict[str, Any]] = []
        self.override = answer_override
        self.lock = threading.Lock()

    def __call__(self, messages: list[dict[str, str]], **params: Any) -> str:
        with self.lock:
            self.calls += 1
            self.params.append(params)
        if self.override is not None:
            return self.override
        user = messages[-1]["content"]
        context = re.search(r"CONTEXT:\n(.*?)\n\nRESPONSE:", user, re.S)
        response = user.split("RESPONSE:\n", 1)[1]
        words = set(re.findall(r"\w+", response.lower()))
        known = set(re.findall(r"\w+", context.group(1).lower())) if context else set()
        share = len(words & known) / len(words) if words else 0.0
        score = 1 + round(4 * share)
        return json.dumps({"score": score, "reason": f"{share:.0%} of the words are in context"})


ROWS = [
    {"query": "Capital?", "context": "Paris is the capital of France.", "response": "Paris"},
    {"query": "Capital?", "context": "Paris is the capital of France.", "response": "Lyon"},
    {
        "query": "Capital?",
        "context": "Paris is the capital of France.",
        "response": "Paris is big, old and rich",
    },
]


def test_the_judge_scores_labels_and_keeps_the_raw_answer() -> None:
    chat = OverlapJudge()
    judge = J.Judge(J.GROUNDEDNESS, chat, model="overlap-v1")
    results = judge.evaluate_batch(ROWS)
    assert [r.score for r in results] == [5, 1, 2]
    assert [r.label for r in results] == ["pass", "fail", "fail"]
    assert results[0].reason == "100% of the words are in context"
    assert json.loads(results[0].raw or "")["score"] == 5
    assert all(r.error is None and r.threshold == 3 and not r.cached for r in results)
    assert chat.params[0] == {"temperature": 0.0, "max_tokens": 300}
    assert results[0].to_dict()["evaluator"] == "judge.groundedness"


@pytest.mark.parametrize(
    ("threshold", "labels"),
    [
        (3, ["fail", "fail", "pass", "pass", "pass"]),
        (5, ["fail", "fail", "fail", "fail", "pass"]),
        (1, ["pass"] * 5),
    ],
)
def test_pass_means_a_score_at_or_above_the_threshold(threshold: int, labels: list[str]) -> None:
    got = []
    for score in range(1, 6):
        judge = J.Judge(
            J.RELEVANCE, OverlapJudge(f"Score: {score}"), model="m", threshold=threshold
        )
        got.append(judge.evaluate({"query": "q", "response": "r"}).label)
    assert got == labels


@pytest.mark.parametrize("threshold", [0, 6, 2.5, True])
def test_a_threshold_off_the_scale_is_refused(threshold: Any) -> None:
    with pytest.raises(InvalidInput, match="threshold"):
        J.Judge(J.RELEVANCE, OverlapJudge(), model="m", threshold=threshold)


def test_an_unreadable_answer_is_a_recorded_error_with_no_score() -> None:
    judge = J.Judge(J.COHERENCE, OverlapJudge("I cannot judge this."), model="m")
    result = judge.evaluate({"query": "q", "response": "r"})
    assert (result.score, result.label) == (None, None)
    assert result.error is not None and "no score" in result.error
    assert result.raw == "I cannot judge this."
    judge = J.Judge(J.COHERENCE, OverlapJudge('{"score": 9}'), model="m")
    assert "outside the 1-5 scale" in (judge.evaluate({"query": "q", "response": "r"}).error or "")


def test_a_failed_call_fails_its_row_alone_and_is_not_cached() -> None:
    calls = 0

    def flaky(messages: list[dict[str, str]], **params: Any) -> str:
        nonlocal calls
        calls += 1
        if "Lyon" in messages[-1]["content"] and calls < 4:
            raise TimeoutError("judge server did not answer in 30 s")
        return '{"score": 4, "reason": "ok"}'

    cache = J.MemoryCache()
    judge = J.Judge(J.GROUNDEDNESS, flaky, model="m", cache=cache)
    first = judge.evaluate_batch(ROWS)
    assert [r.score for r in first] == [4, None, 4]
    assert first[1].error == "judge call failed: TimeoutError: judge server did not answer in 30 s"
    assert first[1].raw is None and len(cache) == 2
    second = judge.evaluate_batch(ROWS)  # only the failed row is asked again
    assert calls == 4 and [r.score for r in second] == [4, 4, 4]
    assert [r.cached for r in second] == [True, False, True]


def test_a_rerun_with_the_cache_reproduces_every_result_without_calling_chat() -> None:
    cache = J.MemoryCache()
    rows = [*ROWS, {"query": "q", "context": "c", "response": "r"}]
    first_chat = OverlapJudge()
    first = J.Judge(J.GROUNDEDNESS, first_chat, model="overlap-v1", cache=cache).evaluate_batch(
        rows
    )
    assert first_chat.calls == 4 and len(cache) == 4

    again = OverlapJudge("this answer must never be read")
    second = J.Judge(J.GROUNDEDNESS, again, model="overlap-v1", cache=cache).evaluate_batch(rows)
    assert again.calls == 0
    strip = [{k: v for k, v in r.to_dict().items() if k != "cached"} for r in first]
    assert [{k: v for k, v in r.to_dict().items() if k != "cached"} for r in second] == strip
    assert all(r.cached for r in second)

    # an unreadable answer is cached too: the re-run reproduces the same error
    bad_cache = J.MemoryCache()
    J.Judge(J.RELEVANCE, OverlapJudge("no idea"), model="m", cache=bad_cache).evaluate(
        {"query": "q", "response": "r"}
    )
    replay = J.Judge(J.RELEVANCE, OverlapJudge("Score: 5"), model="m", cache=bad_cache)
    result = replay.evaluate({"query": "q", "response": "r"})
    assert result.score is None and result.cached and "no score" in (result.error or "")


def test_the_cache_key_covers_model_prompt_version_params_and_inputs() -> None:
    inputs = {"query": "q", "response": "r"}
    key = J.cache_key("m", "judge.relevance", 1, inputs, {"temperature": 0.0})
    payload = {
        "inputs": {"query": "q", "response": "r"},
        "model": "m",
        "params": {"temperature": 0.0},
        "prompt": {"id": "judge.relevance", "version": 1},
    }
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert key == hashlib.sha256(canonical.encode()).hexdigest()
    assert key == J.cache_key(
        "m", "judge.relevance", 1, {"response": "r", "query": "q"}, {"temperature": 0.0}
    )
    others = {
        J.cache_key("m2", "judge.relevance", 1, inputs, {"temperature": 0.0}),
        J.cache_key("m", "judge.coherence", 1, inputs, {"temperature": 0.0}),
        J.cache_key("m", "judge.relevance", 2, inputs, {"temperature": 0.0}),
        J.cache_key("m", "judge.relevance", 1, inputs, {"temperature": 1.0}),
        J.cache_key("m", "judge.relevance", 1, {**inputs, "response": "r "}, {"temperature": 0}),
    }
    assert key not in others and len(others) == 5
    judge = J.Judge(J.RELEVANCE, OverlapJudge(), model="m", params={"max_tokens": 50})
    assert judge.key(inputs) == J.cache_key(
        "m", "judge.relevance", 1, inputs, {"temperature": 0.0, "max_tokens": 50}
    )
    with pytest.raises(InvalidInput, match="plain JSON"):
        J.cache_key("m", "p", 1, {"x": float("nan")})


def test_concurrent_judging_keeps_row_order() -> None:
    rows = [
        {"query": "q", "context": "a b c d", "response": " ".join("abcdxyzw"[: i % 8 + 1])}
        for i in range(40)
    ]
    sequential = J.Judge(J.GROUNDEDNESS, OverlapJudge(), model="m").evaluate_batch(rows)
    chat = OverlapJudge()
    parallel = J.Judge(J.GROUNDEDNESS, chat, model="m").evaluate_batch(rows, concurrency=4)
    assert [r.score for r in parallel] == [r.score for r in sequential]
    assert chat.calls == 40


def test_a_bad_row_is_refused_before_any_call_is_paid_for() -> None:
    chat = OverlapJudge()
    judge = J.Judge(J.RELEVANCE, chat, model="m")
    with pytest.raises(InvalidInput, match="missing"):
        judge.evaluate_batch([{"query": "q", "response": "r"}, {"query": "q"}])
    assert chat.calls == 0
