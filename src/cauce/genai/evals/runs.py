"""Evaluation runs: evaluators over a dataset version (or a flow's answers to it), per-row
scores stored as a dataset version, their means tracked as metrics.

Evaluators by name (see docs/evaluators.md for each definition):

| name | takes |
|---|---|
| ``exact_match``, ``f1``, ``rouge_l``, ``bleu``, ``similarity`` | answer, reference |
| ``groundedness_proxy`` | answer, contexts |
| ``context_similarity`` | question, contexts |
| ``precision@K``, ``recall@K``, ``ndcg@K``, ``mrr`` (or ``mrr@K``) | retrieved, relevant |
| ``groundedness`` (judge) | question, contexts, answer |
| ``relevance``, ``coherence`` (judge) | question, answer |
| ``{"rubric": NAME, "text": ..., "inputs": [...]}`` (judge) | the inputs it names |

``judge_params`` (``{"max_tokens": 64}``) are sent with each judge call over the judge
prompt's own (temperature 0, max_tokens 300).

Each input is read from a column: ``mapping`` names it, else the first of the usual names
present (``answer``, ``outputs.answer``, ``output``; ``reference``, ``ground_truth``,
``expected``, ``expectations.expected_response``; ``question``, ``inputs.question``,
``query``; ``contexts``, ``context``, ``outputs.contexts``; ``retrieved``,
``outputs.retrieved``; ``relevant``). Judges call a
connection's chat model; their answers are cached in the store by (judge model, judge prompt
and version, parameters, inputs), so a re-run reproduces every score without a call.

With ``flow``, the flow first answers every line (a batch run); the evaluation reads the
dataset's columns and the lines' side by side. Lines that failed are not scored; the share
that failed is the metric ``flow.error_rate``.

Example::

    result = cauce.evals.run("qa@1", ["f1", "rouge_l", "relevance"], flow="rag-answer",
                             judge="local")
    result.metrics["f1"], result.scores.ref
"""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cauce.errors import InvalidInput
from cauce.operations import operation
from cauce.workspace import Workspace, current

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from cauce.data.assets import DatasetVersion
    from cauce.genai.evals.judge import JudgePrompt

__all__ = [
    "Evaluation",
    "Evaluator",
    "compare",
    "evaluator",
    "judge_answer",
    "keep_judge_answer",
    "run",
    "score",
]

COLUMNS: dict[str, tuple[str, ...]] = {
    "answer": ("answer", "outputs.answer", "output", "response"),
    "reference": (
        "reference",
        "ground_truth",
        "expected",
        "reference_answer",
        "expectations.expected_response",  # a trace's expectation, as to_dataset names it
    ),
    "question": ("question", "inputs.question", "query"),
    "contexts": ("contexts", "context", "outputs.contexts"),
    "retrieved": ("retrieved", "outputs.retrieved", "retrieved_ids"),
    "relevant": ("relevant", "relevant_ids"),
}
_AT_K = re.compile(r"^(precision|recall|ndcg|mrr)(?:@|_at_)(\d+)$")
_JUDGE_INPUTS = {"query": "question", "context": "contexts", "response": "answer"}


@dataclass(frozen=True)
class Evaluator:
    """An evaluator: its metric name, the inputs it reads, and how it scores a column of
    rows (offline) or the judge prompt it sends (LLM judge)."""

    name: str
    inputs: tuple[str, ...]
    score: Callable[[dict[str, list[Any]]], np.ndarray] | None = None
    judge: JudgePrompt | None = None


def evaluator(spec: str | dict[str, Any] | Evaluator) -> Evaluator:
    """The evaluator a name (``f1``, ``precision@5``, ``relevance``) or a rubric names."""
    from cauce.genai.evals import judge as judges
    from cauce.genai.evals import metrics, retrieval, semantic

    if isinstance(spec, Evaluator):
        return spec
    if isinstance(spec, dict):
        unknown = sorted(set(spec) - {"rubric", "text", "inputs", "version"})
        if "rubric" not in spec or "text" not in spec or unknown:
            raise InvalidInput(
                "a custom evaluator is {rubric: NAME, text: RUBRIC, inputs: [...], version: N}"
            )
        inputs = tuple(spec.get("inputs", ("question", "answer")))
        variables = tuple(_judge_variable(i) for i in inputs)
        prompt = judges.rubric_prompt(
            str(spec["rubric"]),
            str(spec["text"]),
            variables=variables,
            version=spec.get("version", 1),
        )
        return Evaluator(f"rubric_{spec['rubric']}", inputs, judge=prompt)
    if not isinstance(spec, str):
        raise InvalidInput(f"an evaluator is a name or a rubric mapping, not {spec!r}")
    simple: dict[str, Callable[[dict[str, list[Any]]], Any]] = {
        "exact_match": lambda c: metrics.exact_match(c["answer"], c["reference"]),
        "f1": lambda c: metrics.token_f1(c["answer"], c["reference"]),
        "rouge_l": lambda c: metrics.rouge_l(c["answer"], c["reference"]),
        "bleu": lambda c: metrics.sentence_bleu(c["answer"], c["reference"]),
        "similarity": lambda c: semantic.embedding_similarity(c["answer"], c["reference"]),
    }
    if spec in simple:
        return Evaluator(spec, ("answer", "reference"), score=simple[spec])
    if spec == "context_similarity":  # a retrieval score: how near the best chunk came
        return Evaluator(
            spec,
            ("question", "contexts"),
            score=lambda c: semantic.embedding_similarity(c["question"], c["contexts"]),
        )
    if spec == "groundedness_proxy":
        return Evaluator(
            spec,
            ("answer", "contexts"),
            score=lambda c: semantic.groundedness_proxy(c["answer"], c["contexts"]),
        )
    found = {"groundedness": judges.GROUNDEDNESS, "relevance": judges.RELEVANCE}
    found["coherence"] = judges.COHERENCE
    if spec in found:
        prompt = found[spec]
        return Evaluator(spec, tuple(_JUDGE_INPUTS[v] for v in prompt.variables), judge=prompt)
    at_k = _AT_K.match(spec)
    if spec == "mrr" or at_k:
        kind, k = (at_k.group(1), int(at_k.group(2))) if at_k else ("mrr", None)
        functions = {
            "precision": retrieval.precision_at_k,
            "recall": retrieval.recall_at_k,
            "ndcg": retrieval.ndcg_at_k,
        }
        if kind == "mrr":
            score = lambda c: retrieval.mrr(c["retrieved"], c["relevant"], k)  # noqa: E731
        else:
            function, at = functions[kind], int(k or 0)
            score = lambda c: function(c["retrieved"], c["relevant"], at)  # noqa: E731
        name = kind if k is None else f"{kind}_at_{k}"
        return Evaluator(name, ("retrieved", "relevant"), score=score)
    raise InvalidInput(
        f"unknown evaluator {spec!r}",
        hint="exact_match, f1, rouge_l, bleu, similarity, groundedness_proxy, precision@K, "
        "recall@K, ndcg@K, mrr, groundedness, relevance, coherence, or a rubric",
    )


def _judge_variable(name: str) -> str:
    reverse = {v: k for k, v in _JUDGE_INPUTS.items()}
    return reverse.get(name, name)


@dataclass(frozen=True)
class Evaluation:
    """An evaluation run: its tracked run, the per-row scores and the means."""

    run_id: str
    data: str
    scores: DatasetVersion
    metrics: dict[str, float]
    evaluators: list[str]
    flow: str | None = None
    variant: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able view."""
        return {
            "run_id": self.run_id,
            "data": self.data,
            "scores": self.scores.ref,
            "metrics": self.metrics,
            "evaluators": self.evaluators,
            "flow": self.flow,
            "variant": self.variant,
        }


def run(
    data: str,
    evaluators: Sequence[str | dict[str, Any] | Evaluator],
    *,
    mapping: dict[str, str] | None = None,
    flow: Any = None,
    variant: str | dict[str, str] | None = None,
    judge: str | None = None,
    judge_model: str | None = None,
    judge_params: dict[str, Any] | None = None,
    name: str | None = None,
    concurrency: int = 4,
    timeout: str | float = "60s",
    tags: dict[str, str] | None = None,
    parent_run_id: str | None = None,
    indexes: dict[str, int] | None = None,
    workspace: Workspace | None = None,
) -> Evaluation:
    """Evaluate a dataset version (``name@version``), or ``flow``'s answers to it; with
    ``parent_run_id`` the evaluation run (and the flow's batch run) are its children;
    ``indexes`` pins the index versions the flow searches."""
    from cauce.data.assets import get_version
    from cauce.data.assets import load as load_data
    from cauce.tracking import runs

    ws = workspace or current()
    chosen, names, needs_judge = _chosen(evaluators, judge)
    version = get_version(data, workspace=ws)
    frame = load_data(version.ref, workspace=ws)
    batch = None
    if flow is not None:
        from cauce.genai import batches

        batch = batches.run(
            flow,
            version.ref,
            variant=variant,
            concurrency=concurrency,
            timeout=timeout,
            parent_run_id=parent_run_id,
            indexes=indexes,
            workspace=ws,
        )
        lines = load_data(batch.lines.ref, workspace=ws)
        frame = frame.reset_index(drop=True).join(
            lines.drop(columns=[c for c in lines.columns if c in frame.columns])
        )
    columns = _columns(frame, chosen, mapping)
    scored = frame["status"].eq("ok").to_numpy() if batch is not None else None
    chat, judge_id = _judge(judge, judge_model, ws) if needs_judge else (None, None)
    judging = (chat, judge_id, judge_params)
    run_tags = {**(batch.tags if batch is not None else {}), **(tags or {})}
    params: dict[str, Any] = {
        "data": version.ref,
        "evaluators": ",".join(names),
        "judge": judge_id or "none",
    }
    if batch is not None:
        params.update(
            flow=batch.flow,
            flow_version=batch.flow_version,
            variant=batch.variant or "default",
            batch_run=batch.run_id,
        )
    label = re.sub(r"[^\w\-. ]", "-", name or (batch.flow if batch is not None else version.name))
    # The run starts before the scoring, so that its duration is the scoring's (a judge's
    # calls, mostly) and a scoring that fails leaves a FAILED run with the error.
    run_id = runs.create_run(
        "evals",
        f"eval {label}",
        tags={"cauce.evaluation": label, **run_tags},
        parent_run_id=parent_run_id,
        workspace=ws,
    ).run_id
    try:
        table, metrics = _score(frame, columns, chosen, scored, judging, concurrency, ws)
        if batch is not None:
            # The batch's totals beside the scores: lines, errors, latency, tokens, cost.
            metrics.update({f"flow.{key}": value for key, value in batch.metrics.items()})
        stored = _record(ws, run_id, label, params, metrics, table, version, batch)
    except BaseException as exc:
        runs.end_run(run_id, "FAILED", error=str(exc)[:1000], workspace=ws)
        raise
    runs.end_run(run_id, "FINISHED", workspace=ws)
    if "trace_id" in table.columns:
        _annotate_traces(ws, table, chosen)
    return Evaluation(
        run_id=run_id,
        data=version.ref,
        scores=stored,
        metrics=metrics,
        evaluators=names,
        flow=batch.flow if batch is not None else None,
        variant=batch.variant if batch is not None else None,
    )


def score(
    frame: pd.DataFrame,
    evaluators: Sequence[str | dict[str, Any] | Evaluator],
    *,
    mapping: dict[str, str] | None = None,
    judge: str | None = None,
    judge_model: str | None = None,
    judge_params: dict[str, Any] | None = None,
    concurrency: int = 4,
    workspace: Workspace | None = None,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Score every row of a table as :func:`run` does, recording nothing: the per-row table
    (``score.NAME`` and, for judges, ``label.``, ``reason.``, ``error.``) and the means."""
    ws = workspace or current()
    chosen, _, needs_judge = _chosen(evaluators, judge)
    columns = _columns(frame, chosen, mapping)
    chat, judge_id = _judge(judge, judge_model, ws) if needs_judge else (None, None)
    judging = (chat, judge_id, judge_params)
    return _score(frame.reset_index(drop=True), columns, chosen, None, judging, concurrency, ws)


def _chosen(
    evaluators: Sequence[str | dict[str, Any] | Evaluator], judge: str | None
) -> tuple[list[Evaluator], list[str], list[str]]:
    """The evaluators, their names, and those that need the judge (which must be given)."""
    chosen = [evaluator(e) for e in evaluators]
    if not chosen:
        raise InvalidInput("name at least one evaluator")
    names = [e.name for e in chosen]
    if len(set(names)) != len(names):
        raise InvalidInput(f"an evaluator is named twice in {names}")
    needs_judge = [e.name for e in chosen if e.judge is not None]
    if needs_judge and judge is None:
        raise InvalidInput(
            f"{', '.join(needs_judge)} need a judge: give the connection of the judge model"
        )
    return chosen, names, needs_judge


def compare(
    data: str,
    evaluators: Sequence[str | dict[str, Any] | Evaluator],
    *,
    flow: Any,
    variants: Sequence[str | dict[str, str] | None],
    **options: Any,
) -> list[Evaluation]:
    """Evaluate each variant of a flow on the same dataset version: one comparison run
    (experiment ``evals``) whose children are the variants' evaluation and batch runs."""
    from cauce.genai.batches import comparison, variant_text
    from cauce.genai.flows import load

    if not variants:
        raise InvalidInput("name at least one variant to compare")
    ws = options.pop("workspace", None) or current()
    loaded = flow if not isinstance(flow, str) else load(flow, workspace=ws)
    names = [variant_text(v) or "default" for v in variants]
    with comparison(ws, "evals", f"{loaded.name} compare", loaded.name, data, names) as parent:
        return [
            run(
                data,
                evaluators,
                flow=loaded,
                variant=v,
                parent_run_id=parent,
                workspace=ws,
                **options,
            )
            for v in variants
        ]


# -- columns ------------------------------------------------------------------------------------


def _columns(
    frame: pd.DataFrame, chosen: list[Evaluator], mapping: dict[str, str] | None
) -> dict[str, str]:
    """Each input the evaluators read → the column it is read from."""
    mapping = dict(mapping or {})
    wanted = sorted({i for e in chosen for i in e.inputs})
    found: dict[str, str] = {}
    for name in wanted:
        column = mapping.pop(name, None)
        if column is None:
            column = next((c for c in COLUMNS.get(name, (name,)) if c in frame.columns), None)
        if column is None or column not in frame.columns:
            users = [e.name for e in chosen if name in e.inputs]
            raise InvalidInput(
                f"{', '.join(users)} read {name!r}, and no column holds it",
                hint=f"map it: {name}=COLUMN (columns: {', '.join(map(str, frame.columns))})",
            )
        found[name] = column
    if mapping:
        raise InvalidInput(f"no evaluator reads {', '.join(sorted(mapping))}")
    return found


def _values(name: str, cells: list[Any]) -> list[Any]:
    """A column's cells as an evaluator reads them: text, or lists for contexts and ids."""
    if name in ("contexts", "retrieved", "relevant"):
        return [_listed(name, c) for c in cells]
    return ["" if _missing(c) else str(c) for c in cells]


def _missing(cell: Any) -> bool:
    """None, NaN or pandas' NA."""
    import pandas as pd

    return not isinstance(cell, (list, dict)) and bool(pd.isna(cell))


def _listed(name: str, cell: Any) -> Any:
    if isinstance(cell, str) and cell.strip()[:1] in ("[", "{"):
        with contextlib.suppress(ValueError):
            cell = json.loads(cell)
    if not hasattr(cell, "tolist") and _missing(cell):
        return [] if name != "contexts" else ""
    if hasattr(cell, "tolist"):
        cell = cell.tolist()
    if isinstance(cell, list) and name == "contexts":
        return [c.get("text", "") if isinstance(c, dict) else str(c) for c in cell]
    if isinstance(cell, list) and name == "retrieved":
        return [c.get("id") if isinstance(c, dict) else c for c in cell]
    return cell


# -- scoring ------------------------------------------------------------------------------------


def _score(
    frame: pd.DataFrame,
    columns: dict[str, str],
    chosen: list[Evaluator],
    scored: np.ndarray | None,
    judging: tuple[Any, str | None, dict[str, Any] | None],
    concurrency: int,
    ws: Workspace,
) -> tuple[pd.DataFrame, dict[str, float]]:
    import numpy as np
    import pandas as pd

    rows = len(frame)
    keep = np.ones(rows, dtype=bool) if scored is None else scored
    index = np.flatnonzero(keep)
    values = {n: _values(n, frame[c].tolist()) for n, c in columns.items()}
    picked = {n: [v[i] for i in index] for n, v in values.items()}
    table = pd.DataFrame({"row": np.arange(rows)})
    if "trace_id" in frame.columns:
        table["trace_id"] = frame["trace_id"].astype("string")
    for name, column in columns.items():
        table[name] = frame[column].map(
            lambda c: c if isinstance(c, str) or c is None else json.dumps(c, default=str)
        )
    metrics: dict[str, float] = {"rows": float(rows), "rows_scored": float(len(index))}
    for chosen_one in chosen:
        score = np.full(rows, np.nan)
        if chosen_one.judge is None:
            assert chosen_one.score is not None
            if len(index):
                score[index] = np.asarray(chosen_one.score(picked), dtype=np.float64)
        else:
            results = _judged(chosen_one, picked, judging, concurrency, ws)
            label = np.full(rows, None, dtype=object)
            reason = np.full(rows, None, dtype=object)
            error = np.full(rows, None, dtype=object)
            for position, result in zip(index, results, strict=True):
                score[position] = np.nan if result.score is None else result.score
                label[position], reason[position] = result.label, result.reason
                error[position] = result.error
            table[f"label.{chosen_one.name}"] = pd.array(label, dtype="string")
            table[f"reason.{chosen_one.name}"] = pd.array(reason, dtype="string")
            table[f"error.{chosen_one.name}"] = pd.array(error, dtype="string")
            judged = [r for r in results if r.score is not None]
            metrics[f"{chosen_one.name}.pass_rate"] = (
                sum(r.label == "pass" for r in judged) / len(judged) if judged else float("nan")
            )
            metrics[f"{chosen_one.name}.error_rate"] = (
                sum(r.error is not None for r in results) / len(results) if results else 0.0
            )
        table[f"score.{chosen_one.name}"] = score
        finite = score[~np.isnan(score)]
        metrics[chosen_one.name] = float(finite.mean()) if len(finite) else float("nan")
    return table, metrics


def _judged(
    chosen: Evaluator,
    picked: dict[str, list[Any]],
    judging: tuple[Any, str | None, dict[str, Any] | None],
    concurrency: int,
    ws: Workspace,
) -> list[Any]:
    from cauce.genai.evals.judge import Judge

    chat, judge_id, params = judging
    assert chosen.judge is not None and judge_id is not None
    judge = Judge(chosen.judge, chat, model=judge_id, cache=StoreCache(ws), params=params)
    count = len(next(iter(picked.values()))) if picked else 0
    rows = []
    for i in range(count):
        row = {}
        for variable in chosen.judge.variables:
            value = picked[_JUDGE_INPUTS.get(variable, variable)][i]
            row[variable] = "\n\n".join(value) if isinstance(value, list) else value
        rows.append(row)
    return judge.evaluate_batch(rows, concurrency=concurrency)


def _judge(connection: str | None, model: str | None, ws: Workspace) -> tuple[Any, str]:
    """A ``chat(messages, **params) -> text`` over the judge's connection, and the judge
    model's id (``connection/model``) for the cache key."""
    from cauce.genai import connections

    assert connection is not None
    client = connections.client(connection, workspace=ws)
    chosen = model or client.spec.models.chat
    if not chosen:
        raise InvalidInput(f"name the judge model: connection {connection!r} has no chat model")

    def chat(messages: list[dict[str, str]], **params: Any) -> str:
        return client.chat(messages, model=chosen, **params).text

    return chat, f"{connection}/{chosen}"


class StoreCache:
    """Judge answers kept in the workspace's store (table ``judge_answers``), through the
    server for a workspace on one."""

    def __init__(self, ws: Workspace):
        self.ws = ws

    def get(self, key: str) -> str | None:
        """The answer stored under ``key``, or None."""
        return judge_answer(key, workspace=self.ws)

    def put(self, key: str, answer: str) -> None:
        """Keep an answer (the first one kept for a key stays)."""
        keep_judge_answer(key, answer, workspace=self.ws)


@operation("GET /judge-answers/{key}")
def judge_answer(key: str, *, workspace: Workspace | None = None) -> str | None:
    """The judge's answer kept under ``key`` (the sha256 of model, prompt, inputs and
    parameters), or None."""
    from sqlalchemy import select

    from cauce.store.schema import judge_answers

    ws = workspace or current()
    with ws.store.read() as conn:
        found = conn.execute(
            select(judge_answers.c.answer).where(judge_answers.c.key == key)
        ).scalar()
    return None if found is None else str(found)


@operation("PUT /judge-answers/{key}")
def keep_judge_answer(key: str, answer: str, *, workspace: Workspace | None = None) -> None:
    """Keep a judge's answer under ``key``; the first one kept for a key stays."""
    from cauce.store import insert_ignore, now_ms
    from cauce.store.schema import judge_answers

    if not isinstance(key, str) or len(key) != 64:
        raise InvalidInput("key: a sha256 (64 hex characters)", details={"field": "key"})
    if not isinstance(answer, str):
        raise InvalidInput("answer: text", details={"field": "answer"})
    ws = workspace or current()
    with ws.store.write() as conn:
        insert_ignore(conn, judge_answers, {"key": key, "answer": answer, "created_at": now_ms()})


# -- recording ----------------------------------------------------------------------------------


def _record(
    ws: Workspace,
    run_id: str,
    label: str,
    params: dict[str, Any],
    metrics: dict[str, float],
    table: pd.DataFrame,
    data: DatasetVersion,
    batch: Any,
) -> DatasetVersion:
    """An evaluation run's params, inputs and means, and its per-row scores as a dataset."""
    import math

    from cauce.data.assets import register
    from cauce.genai.batches import link_run
    from cauce.tracking import runs

    runs.log_params(run_id, params, workspace=ws)
    runs.log_input(run_id, data, "evaluation", workspace=ws)
    if batch is not None:
        runs.log_input(run_id, batch.lines, "answers", workspace=ws)
    runs.log_metrics(run_id, {k: v for k, v in metrics.items() if not math.isnan(v)}, workspace=ws)
    stored = register(
        f"evals.{label}",
        table,
        description=f"per-row scores of evaluation run {run_id}",
        allow_schema_change=True,
        workspace=ws,
    )
    link_run(run_id, produced=[stored.id], workspace=ws)
    return stored


def _annotate_traces(ws: Workspace, table: pd.DataFrame, chosen: list[Evaluator]) -> None:
    """Each score as a ``gen_ai.evaluation.result`` event on its line's root span."""
    from cauce.genai import tracing

    events: list[tuple[str, str, float | None, str | None, str | None]] = []
    for record in table.to_dict("records"):
        trace_id = record.get("trace_id")
        if not isinstance(trace_id, str):
            continue
        for chosen_one in chosen:
            score = record.get(f"score.{chosen_one.name}")
            if score is None or score != score:
                continue
            label = record.get(f"label.{chosen_one.name}")
            reason = record.get(f"reason.{chosen_one.name}")
            events.append((trace_id, chosen_one.name, float(score), _text(label), _text(reason)))
    tracing.record_root_evaluations(events, workspace=ws)


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None
