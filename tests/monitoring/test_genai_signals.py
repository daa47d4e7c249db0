"""GenAI signals over collector records: each operational metric against its count by hand,
the refusal detector on a labelled set in five languages, the seeded quality sample, evaluator
scores (offline, and a judge through a real loopback connection), and query drift."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import pytest
from tests.genai.upstream import Upstream

import cauce
from cauce.errors import InvalidInput
from cauce.genai.evals.sampling import sample
from cauce.genai.refusals import OPENING, refusal
from cauce.monitoring import genai, query_drift
from cauce.monitoring.monitors import parse_spec
from cauce.monitoring.specs import GenAIQuality, QueryDrift
from cauce.serving.collector import GENAI_COLUMNS
from cauce.workspace import Workspace
from genai_records import records, table


def by_metric(values: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {v["metric"]: v for v in values}


def operations() -> pd.DataFrame:
    """Eight requests whose every metric is counted by hand in the test below."""
    injection = [{"direction": "input", "filter": "injection", "action": "block", "triggered": 1}]
    pii = [{"direction": "output", "filter": "pii", "action": "flag", "triggered": True}]
    none = {"cost": None, "ttft_ms": None}
    return table(
        [
            {"input_tokens": 10, "output_tokens": 5, "cost": 0.001, "latency_ms": 100.0,
             "stream": True, "ttft_ms": 20.0},
            {"input_tokens": 20, "output_tokens": 15, "cost": 0.003, "latency_ms": 300.0,
             "stream": False, "ttft_ms": None},
            {"status": 500, "error": "upstream_error", "input_tokens": 30, "output_tokens": 0,
             "latency_ms": 50.0, "stream": True, "completion": "", **none},
            {"input_tokens": 40, "output_tokens": 10, "latency_ms": 200.0, "stream": True,
             "cost": None, "ttft_ms": 40.0, "abandoned": True, "finish_reason": None},
            {"status": 400, "error": "content_filter", "blocked": True, "flagged": True,
             "input_tokens": 5, "output_tokens": 0, "cost": 0.0, "latency_ms": 10.0,
             "stream": False, "completion": "", "safety": json.dumps(injection), "ttft_ms": None},
            {"finish_reason": "content_filter", "completion": "", "input_tokens": 10,
             "output_tokens": 0, "cost": 0.001, "latency_ms": 100.0, "stream": False,
             "ttft_ms": None},
            {"completion": "Lo siento, pero no puedo ayudarte con eso.", "flagged": True,
             "input_tokens": 10, "output_tokens": 10, "cost": 0.002, "latency_ms": 400.0,
             "stream": False, "safety": json.dumps(pii), "ttft_ms": None},
            {"operation": "embeddings", "query": "", "completion": "", "input_tokens": 8,
             "output_tokens": 0, "cost": 0.0001, "latency_ms": 30.0, "stream": False,
             "ttft_ms": None},
        ]
    )  # fmt: skip


def test_operational_metrics_equal_their_counts_by_hand() -> None:
    frame = operations()
    assert list(frame.columns) == list(GENAI_COLUMNS)  # the records as the collector writes them
    tokens = by_metric(genai.operational("genai_tokens", {"total_tokens": 150.0}, frame))
    answered = 6  # every status below 400, the embeddings request included
    assert tokens["input_tokens_per_request"]["value"] == pytest.approx(98 / answered)
    assert tokens["output_tokens_per_request"]["value"] == pytest.approx(40 / answered)
    assert (tokens["input_tokens"]["value"], tokens["output_tokens"]["value"]) == (133, 40)
    assert (
        tokens["total_tokens"]["value"] == 173 and tokens["total_tokens"]["outcome"] == "breached"
    )
    assert (
        tokens["input_tokens"]["outcome"] == "measured"
        and tokens["input_tokens"]["threshold"] is None
    )

    cost = by_metric(genai.operational("genai_cost", {"cost_per_request": 0.002}, frame))
    assert cost["cost"]["value"] == pytest.approx(0.0071)  # unpriced requests are not zero
    assert cost["cost_per_request"]["value"] == pytest.approx(0.0071 / 5)  # priced and answered
    assert cost["cost_per_request"]["outcome"] == "passed"
    assert cost["cost"]["details"].items() >= {"priced": 6, "unpriced": 2}.items()

    latency = by_metric(genai.operational("genai_latency", {"ttft_p95_ms": 30.0}, frame))
    answered_ms = [100, 300, 200, 100, 400, 30]
    for q in (50, 95, 99):
        assert latency[f"latency_p{q}_ms"]["value"] == pytest.approx(np.percentile(answered_ms, q))
        assert latency[f"ttft_p{q}_ms"]["value"] == pytest.approx(np.percentile([20, 40], q))
    assert latency["ttft_p95_ms"]["outcome"] == "breached"

    errors = by_metric(genai.operational("genai_errors", {"error_rate": 0.2}, frame))
    assert errors["error_rate"]["value"] == 0.25 and errors["error_rate"]["outcome"] == "breached"
    details = errors["error_rate"]["details"]
    assert details["codes"] == {"upstream_error": 1, "content_filter": 1}
    assert details["statuses"] == {"500": 1, "400": 1} and details["examples"] == ["r2", "r4"]
    assert errors["abandon_rate"]["value"] == pytest.approx(1 / 3)  # of the three streams

    [refusals] = genai.operational("genai_refusals", {"refusal_rate": 0.6}, frame)
    # Counted: chat requests answered or blocked (r0, r1, r3, r4, r5, r6); r2 failed, r7 embeds.
    assert refusals["value"] == 0.5 and refusals["outcome"] == "passed"
    assert refusals["details"] == {
        "requests": 6,
        "refusals": 3,
        "blocked": 1,
        "content_filter": 1,
        "phrase": 1,
        "languages": {"es": 1},
        "examples": ["r4", "r5", "r6"],
    }

    safety = by_metric(genai.operational("genai_safety", {"block_rate": 0.1}, frame))
    assert safety["flag_rate"]["value"] == 0.25 and safety["flag_rate"]["outcome"] == "measured"
    assert safety["block_rate"]["value"] == 0.125 and safety["block_rate"]["outcome"] == "breached"
    assert safety["flag_rate"]["details"]["filters"] == {
        "input injection block": 1,
        "output pii flag": 1,
    }


def test_metrics_the_records_cannot_give_are_not_computed_with_the_reason() -> None:
    frame = operations()
    no_cost = genai.operational("genai_cost", {}, frame.assign(cost=None))
    assert {v["outcome"] for v in no_cost} == {"not_computed"}
    assert no_cost[0]["details"]["reason"] == "no request in the window has a known price"
    no_streams = by_metric(genai.operational("genai_latency", {}, frame.assign(stream=False)))
    assert no_streams["ttft_p50_ms"]["details"]["reason"] == (
        "no answered stream with a time to first token in the window"
    )
    assert no_streams["latency_p50_ms"]["outcome"] == "measured"
    [lacking] = genai.operational("genai_refusals", {}, frame.drop(columns=["completion"]))
    assert lacking["details"]["reason"] == "the records have no column completion"


# -- refusals ---------------------------------------------------------------------------------

REFUSALS = {
    "en": [
        "I'm sorry, but I can't help with that.",
        "I cannot assist with this request.",
        "As an AI language model, I can't share personal opinions.",
        "I\u2019m not able to provide instructions for that.",
    ],
    "es": [
        "Lo siento, pero no puedo ayudarte con eso.",
        "No puedo proporcionar esa información.",
        "No estoy en condiciones de responder a esa pregunta.",
        "Lamento informarte que no puedo cumplir con esta solicitud.",
    ],
    "fr": [
        "Je suis désolé, mais je ne peux pas répondre à cette question.",
        "Je ne suis pas en mesure de vous aider avec cela.",
        "Il m'est impossible de fournir ces informations.",
        "Desole, je ne peux pas faire cela.",
    ],
    "de": [
        "Es tut mir leid, aber dabei kann ich nicht helfen.",
        "Ich kann Ihnen dabei leider nicht helfen.",
        "Ich bin nicht in der Lage, diese Anfrage zu beantworten.",
        "Diese Anfrage muss ich leider ablehnen. Ich muss das leider ablehnen.",
    ],
    "pt": [
        "Desculpe, mas não posso ajudar com isso.",
        "Não posso fornecer essa informação.",
        "Lamento, mas não consigo responder a essa pergunta.",
        "Nao estou em condicoes de atender a esse pedido.",
    ],
}
ANSWERS = {
    "en": [
        "Refunds are paid back within 5 business days.",
        "I can help with that: open Settings, then Billing.",
        "You cannot change the plan after 30 days, but support can.",
        "Sorry for the wait! Your invoice is attached.",
    ],
    "es": [
        "Sí, puedo ayudarte: el reembolso tarda 5 días.",
        "No hay coste adicional por cambiar de plan.",
        "Lo siento por la espera; la factura está en Ajustes.",
        "Puedes cambiar la tarjeta en Ajustes, Facturación.",
    ],
    "fr": [
        "Je peux vous aider : le remboursement prend 5 jours.",
        "Désolé pour l'attente, votre facture est prête.",
        "Vous ne pouvez pas payer en espèces, mais la carte fonctionne.",
        "La date de facturation se change une fois par mois.",
    ],
    "de": [
        "Ich kann Ihnen helfen: Die Erstattung dauert 5 Tage.",
        "Die Rechnung finden Sie unter Einstellungen.",
        "Es tut mir leid für die Wartezeit, hier ist Ihre Quittung.",
        "Sie können die Karte jederzeit ändern.",
    ],
    "pt": [
        "Posso ajudar: o reembolso leva 5 dias úteis.",
        "Não há custo adicional para mudar de plano.",
        "Desculpe a demora, a fatura já está disponível.",
        "Você não pode pagar em dinheiro, mas o cartão funciona.",
    ],
}


def test_refusals_are_told_from_answers_in_five_languages() -> None:
    for language, texts in REFUSALS.items():
        assert [refusal(t) for t in texts] == [language] * len(texts), language
    for language, texts in ANSWERS.items():
        assert [refusal(t) for t in texts] == [None] * len(texts), language
    # Only the opening counts: an answer that quotes a refusal further down is no refusal.
    quoted = "Here is the policy. " * (OPENING // 20 + 1) + "I'm sorry, but I can't help."
    assert refusal(quoted) is None and refusal("") is None and refusal(None) is None


# -- the quality sample -----------------------------------------------------------------------


def test_the_sample_is_seeded_stable_across_windows_and_capped() -> None:
    ids = [f"req-{i}" for i in range(2000)]
    picked = sample(ids, 0.2, 7, 10_000)
    assert picked == sample(ids, 0.2, 7, 10_000)  # a run reproduces
    assert 330 < len(picked) < 470 and picked == sorted(picked)
    assert sample(ids, 0.2, 8, 10_000) != picked  # another seed, another sample
    # A later window that shares requests keeps the same decision for each of them.
    later = ids[1000:] + [f"req-{i}" for i in range(2000, 2500)]
    chosen = {ids[p] for p in picked}
    again = {later[p] for p in sample(later, 0.2, 7, 10_000)}
    assert chosen & set(later) == again & set(ids)
    capped = sample(ids, 0.2, 7, 25)
    assert len(capped) == 25 and set(capped) <= set(picked)
    assert sample(ids, 1.0, 0, 10_000) == list(range(2000))


def test_groundedness_falls_when_the_contexts_stop_supporting_the_answers(
    workspace: Workspace,
) -> None:
    body = GenAIQuality(
        evaluators=["groundedness_proxy"], min={"groundedness_proxy": 0.6}, sample=0.5, seed=3
    )
    good = records(60, 0, 60_000, seed=1, error_every=10)
    [healthy] = genai.quality(workspace, body, good)
    [decayed] = genai.quality(workspace, body, records(60, 0, 60_000, seed=1, grounded=False))
    assert healthy["value"] == pytest.approx(1.0) and healthy["outcome"] == "passed"
    assert decayed["value"] == pytest.approx(0.0) and decayed["outcome"] == "breached"
    details = healthy["details"]
    assert details["eligible"] == 54  # failed requests are not scored
    expected = len(sample(good[good["status"] < 400]["correlation_id"].tolist(), 0.5, 3, 200))
    assert details["sampled"] == details["scored"] == expected
    assert len(decayed["details"]["lowest"]) == 5
    assert genai.quality(workspace, body, good) == [healthy]  # the same sample, the same numbers


def test_quality_without_enough_scorable_requests_is_not_computed(workspace: Workspace) -> None:
    body = GenAIQuality(evaluators=["groundedness_proxy"], min_samples=5, sample=1.0)
    frame = records(8, 0, 8_000).assign(contexts=None)  # no retrieval: nothing to ground on
    [result] = genai.quality(workspace, body, frame)
    assert result["outcome"] == "not_computed" and result["threshold"] is None
    assert result["details"]["reason"] == (
        "0 of 8 sampled requests can be scored by groundedness_proxy, fewer than min_samples 5"
    )


def test_references_arrive_as_a_dataset_joined_on_the_request_id(workspace: Workspace) -> None:
    frame = records(10, 0, 10_000, seed=2)
    answers = frame["completion"].tolist()
    labelled = pd.DataFrame(
        {"request_id": frame["correlation_id"][:6], "truth": answers[:3] + ["wrong"] * 3}
    )
    cauce.data.register("truths", labelled)
    body = GenAIQuality(
        evaluators=["exact_match"],
        sample=1.0,
        references={"dataset": "truths", "join_on": "request_id", "column": "truth"},
    )
    [result] = genai.quality(workspace, body, frame)
    assert result["value"] == 0.5 and result["details"]["scored"] == 6  # only labelled requests
    assert result["outcome"] == "measured"
    body = body.model_copy(
        update={"references": body.references.model_copy(update={"column": "x"})}
    )
    with pytest.raises(InvalidInput) as caught:
        genai.quality(workspace, body, frame)
    assert caught.value.details["field"] == "signals.genai_quality.references.column"


def test_a_judge_scores_the_sample_through_a_connection_and_a_rerun_calls_nothing(
    workspace: Workspace,
) -> None:
    server = Upstream()
    try:
        server.reply = lambda body: json.dumps(
            {"score": 2 if "arrived broken" in json.dumps(body) else 5, "reason": "judged"}
        )
        cauce.apply(
            {
                "kind": "Connection",
                "name": "judge",
                "base_url": server.url,
                "models": {"chat": "echo"},
                "max_retries": 0,
            }
        )
        body = GenAIQuality(
            evaluators=["relevance"], min={"relevance": 4}, sample=1.0, judge="judge"
        )
        frame = pd.concat(
            [records(6, 0, 6_000, seed=1), records(2, 0, 6_000, seed=2, topic="shipping")],
            ignore_index=True,
        )
        frame["query"] = frame["query"].where(frame.index < 6, "My router arrived broken")
        frame["correlation_id"] = [f"q{i}" for i in range(len(frame))]
        [result] = genai.quality(workspace, body, frame)
        calls = len(server.requests)
        assert calls == 8
        assert result["value"] == pytest.approx((6 * 5 + 2 * 2) / 8)
        assert result["outcome"] == "passed"
        assert result["details"]["pass_rate"] == 0.75 and result["details"]["judge_errors"] == 0
        assert [x["correlation_id"] for x in result["details"]["lowest"][:2]] == ["q6", "q7"]
        assert genai.quality(workspace, body, frame) == [result]
        assert len(server.requests) == calls  # every verdict read back from the store
    finally:
        server.close()


# -- query drift ------------------------------------------------------------------------------


def queries(frame: pd.DataFrame) -> list[str]:
    return frame["query"].tolist()


def test_query_drift_is_quiet_on_the_same_topic_and_breaches_on_a_new_one(
    workspace: Workspace,
) -> None:
    body = QueryDrift(method="both", components=3)
    reference = queries(records(150, 0, 1, seed=1))
    same = query_drift.compute(
        workspace, body, reference, queries(records(80, 0, 1, seed=2)), bins=10
    )
    moved = query_drift.compute(
        workspace, body, reference, queries(records(80, 0, 1, seed=3, topic="shipping")), bins=10
    )
    quiet, shifted = by_metric(same), by_metric(moved)
    assert quiet["drifted_share"]["outcome"] == "passed"
    assert quiet["domain_auc"]["value"] < 0.7 and quiet["domain_auc"]["outcome"] == "passed"
    assert shifted["drifted_share"]["outcome"] == "breached"
    assert shifted["domain_auc"]["value"] > 0.95 and shifted["domain_auc"]["outcome"] == "breached"
    components = [v for v in moved if v["feature"].startswith("pc")]
    assert [v["feature"] for v in components] == ["pc1", "pc2", "pc3"]
    assert all(v["metric"] == "ks" and v["value"] < 0.05 for v in components)
    assert components[0]["details"]["explained_variance"] > 0
    unlike = shifted["domain_auc"]["details"]["most_unlike_reference"]
    assert len(unlike) == 5 and all(u["score"] > 0.5 for u in unlike)
    # A run reproduces: same queries, same seed, same numbers.
    again = query_drift.compute(
        workspace, body, reference, queries(records(80, 0, 1, seed=3, topic="shipping")), bins=10
    )
    assert again == moved


def test_query_drift_without_queries_on_a_side_is_not_computed(workspace: Workspace) -> None:
    body = QueryDrift(method="both")
    [share, auc] = query_drift.compute(workspace, body, [], ["a question"], bins=10)
    assert share["details"]["reason"] == auc["details"]["reason"] == "the reference has no queries"
    few = query_drift.compute(
        workspace, QueryDrift(method="classifier"), ["one", "two", "three"], ["four"] * 3, bins=10
    )
    assert (
        few[0]["details"]["reason"]
        == "3 queries on the smaller side, fewer than the classifier's 10"
    )


def test_projection_is_deterministic_and_on_the_reference_directions() -> None:
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(50, 8)) * np.array([5, 3, 1, 1, 1, 1, 1, 1])
    current = reference[:10] + 100.0
    ref_points, cur_points, explained = query_drift.project(reference, current, 2)
    again = query_drift.project(reference, current, 2)
    np.testing.assert_array_equal(ref_points, again[0])
    assert ref_points.shape == (50, 2) and cur_points.shape == (10, 2)
    assert explained[0] > explained[1] and np.allclose(ref_points.mean(axis=0), 0)


# -- specs ------------------------------------------------------------------------------------


def monitor(signals: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    return {
        "kind": "Monitor",
        "name": "support-genai",
        "target": {"endpoint": "support"},
        "signals": signals,
        **fields,
    }


@pytest.mark.parametrize(
    ("document", "field", "words"),
    [
        (monitor([{"genai_errors": {"error_rate": 1.5}}]), "signals.0.genai_errors.error_rate",
         "less than or equal to 1"),
        (monitor([{"genai_latency": {"p95": 3}}]), "signals.0.genai_latency.p95", "unknown field"),
        (monitor([{"genai_quality": {"evaluators": ["relevance"]}}]), "signals.0.genai_quality",
         "relevance needs a judge"),
        (monitor([{"genai_quality": {"evaluators": ["f1"]}}]), "signals.0.genai_quality",
         "f1 needs references"),
        (monitor([{"genai_quality": {"evaluators": ["recall@5"]}}]), "signals.0.genai_quality",
         "reads relevant, retrieved, which GenAI records do not hold"),
        (monitor([{"genai_quality": {"evaluators": ["groundedness_proxy"],
                                     "min": {"relevance": 3}}}]),
         "signals.0.genai_quality", "min names relevance, which no evaluator computes"),
        (monitor([{"genai_quality": {"evaluators": ["nope"]}}]), "signals.0.genai_quality",
         "unknown evaluator 'nope'"),
        (monitor([{"query_drift": {}}]), "Monitor", "query_drift needs a reference"),
        (monitor([{"query_drift": {"metric": "chi_squared"}}], reference={"dataset": "q"}),
         "signals.0.query_drift", "categorical columns only"),
        (monitor([{"genai_errors": {}}, {"data_drift": {}}], reference={"dataset": "q"}),
         "Monitor", "data_drift and genai_errors: a monitor watches"),
        (monitor([{"genai_errors": {}}], reference={"model": "models:/m/1"}), "Monitor",
         "GenAI signals take a reference"),
        (monitor([{"data_drift": {}}], reference={"window": {"size": "1h", "offset": "1h"}}),
         "Monitor",
         "data_drift needs a reference"),
        (monitor([{"query_drift": {}}], target={"dataset": "records"},
                 reference={"window": {"size": "1h", "offset": "1h"}}),
         "Monitor", "a reference window needs target.timestamp"),
        (monitor([{"query_drift": {}}], reference={"window": {"size": "1d", "offset": "30m"}}),
         "Monitor", "the reference window overlaps the current one"),
        (monitor([{"genai_errors": {}}], reference={"dataset": "q", "window": {"size": "1h"}}),
         "reference", "exactly one of model, dataset or window"),
    ],
)  # fmt: skip
def test_bad_genai_specs_name_the_field(document: dict[str, Any], field: str, words: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        parse_spec(document)
    assert caught.value.details["field"] == field
    assert words in str(caught.value)


def test_a_component_alone_breaches_no_alert_without_its_drifted_share(
    workspace: Workspace,
) -> None:
    """As in data drift: a component's breach joins the alert only when the share does."""
    spec = parse_spec(
        monitor(
            [{"query_drift": {"components": 3, "threshold": 0.8, "drift_share": 0.5}}],
            reference={"dataset": "questions"},
        )
    )
    reference = queries(records(150, 0, 1, seed=1))
    values, breaches = genai.compute(workspace, spec, records(80, 0, 1, seed=2), lambda: reference)
    found = {v["feature"]: v for v in values}
    assert [found[f"pc{i}"]["outcome"] for i in (1, 2, 3)].count("breached") == 1
    assert found["*"]["value"] == pytest.approx(1 / 3) and found["*"]["outcome"] == "passed"
    assert breaches == []
    moved = records(80, 0, 1, seed=3, topic="shipping")
    values, breaches = genai.compute(workspace, spec, moved, lambda: reference)
    assert [b["feature"] for b in breaches] == ["*", "pc1", "pc2", "pc3"]


def test_each_deployments_value_is_in_the_details_when_there_are_several() -> None:
    blue = records(20, 0, 1, seed=1, deployment="blue", error_every=10)
    green = records(10, 0, 1, seed=2, deployment="green", error_every=2)
    values = by_metric(genai.operational("genai_errors", {}, pd.concat([blue, green])))
    assert values["error_rate"]["value"] == pytest.approx(7 / 30)
    assert values["error_rate"]["details"]["deployments"] == {"blue": 0.1, "green": 0.5}
    assert values["abandon_rate"]["details"]["deployments"] == {"blue": 0.0, "green": 0.0}
    alone = genai.operational("genai_errors", {}, blue)
    assert "deployments" not in alone[0]["details"]


def test_answers_from_the_cache_count_in_latency_not_in_per_request_means() -> None:
    """As the rollout analysis counts them: tokens, cost and time to first token per request
    are the model's; a cached answer cost nothing and was still waited for."""
    frame = table(
        [
            {"input_tokens": 10, "output_tokens": 20, "cost": 0.002, "latency_ms": 400.0,
             "stream": True, "ttft_ms": 100.0},
            {"cached": True, "input_tokens": 0, "output_tokens": 0, "cost": None,
             "latency_ms": 2.0, "stream": True, "ttft_ms": 1.0},
        ]
    )  # fmt: skip
    tokens = by_metric(genai.operational("genai_tokens", {}, frame))
    assert tokens["output_tokens_per_request"]["value"] == 20
    assert tokens["output_tokens"]["value"] == 20
    cost = by_metric(genai.operational("genai_cost", {}, frame))
    assert cost["cost_per_request"]["value"] == 0.002 and cost["cost"]["value"] == 0.002
    latency = by_metric(genai.operational("genai_latency", {}, frame))
    assert latency["ttft_p50_ms"]["value"] == 100.0
    assert latency["latency_p50_ms"]["value"] == pytest.approx(201.0)
