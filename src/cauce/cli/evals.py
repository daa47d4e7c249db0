"""``cauce evals``: evaluation runs over datasets and flows, and their comparison."""

from __future__ import annotations

import typer

from cauce.cli.output import JSON_OPTION_HELP, number, print_json, table

app = typer.Typer(
    help="Evaluations: evaluators over datasets and flows' answers.", no_args_is_help=True
)


@app.command("run")
def run(
    data: str = typer.Option(..., "--data", "-d", help="Dataset version, NAME[@VERSION]."),
    evaluators: list[str] = typer.Option(
        ..., "--evaluator", "-e", help="f1, rouge_l, bleu, similarity, relevance, precision@5…"
    ),
    flow: str = typer.Option(None, "--flow", "-f", help="Answer with this flow first."),
    variants: list[str] = typer.Option(
        [], "--variant", "-v", help="Flow variant(s) to evaluate, NODE=V ('default': as written)."
    ),
    mapping: list[str] = typer.Option([], "--map", "-m", help="INPUT=COLUMN, e.g. answer=output."),
    judge: str = typer.Option(None, "--judge", help="Connection of the judge model."),
    judge_model: str = typer.Option(
        None, "--judge-model", help="Judge model (default: the connection's chat model)."
    ),
    concurrency: int = typer.Option(
        4, "--concurrency", "-c", help="Lines and judge calls at once."
    ),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Evaluate a dataset version, or a flow's answers to it (one run per variant).

    Per-row scores are stored as a dataset version, their means tracked as metrics.

    Example:
        cauce evals run -d qa-golden -f rag-answer -v default -v generate=concise \\
            -e f1 -e relevance --judge local
    """
    from cauce.errors import InvalidInput
    from cauce.genai.evals.runs import run as run_evaluation

    pairs = {}
    for pair in mapping:
        name, sep, column = pair.partition("=")
        if not sep:
            raise InvalidInput(f"a mapping is written INPUT=COLUMN, not {pair!r}")
        pairs[name] = column
    if variants and flow is None:
        raise InvalidInput("--variant needs --flow")
    chosen: list[str | None] = [None if v == "default" else v for v in variants] or [None]
    results = [
        run_evaluation(
            data,
            evaluators,
            mapping=pairs or None,
            flow=flow,
            variant=variant,
            judge=judge,
            judge_model=judge_model,
            concurrency=concurrency,
        )
        for variant in (chosen if flow is not None else [None])
    ]
    if as_json:
        print_json([r.to_dict() for r in results])
        return
    _side_by_side(results)


@app.command("compare")
def compare(
    run_ids: list[str] = typer.Argument(..., help="Evaluation run ids (or their starts)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Show evaluation runs side by side: their data, flow, variant and every metric.

    Example:
        cauce evals compare 3f2a… 9c1b…
    """
    from cauce.cli.runs import full_run_id
    from cauce.tracking.runs import get_run

    runs = [get_run(full_run_id(r)) for r in run_ids]
    keys = sorted({k for r in runs for k in r.data.metrics})
    if as_json:
        print_json(
            [
                {"run_id": r.info.run_id, "params": r.data.params, "metrics": r.data.metrics}
                for r in runs
            ]
        )
        return
    rows = [[key, *[r.data.params.get(key) for r in runs]] for key in ("data", "flow", "variant")]
    rows += [[key, *[number(r.data.metrics.get(key)) for r in runs]] for key in keys]
    table("Evaluations", ["", *[r.info.run_id[:8] for r in runs]], rows)


def _side_by_side(results: list) -> None:  # type: ignore[type-arg]
    keys = sorted({k for r in results for k in r.metrics})
    columns = [f"{r.variant or 'default'} ({r.run_id[:8]})" for r in results]
    rows = [["scores", *[r.scores.ref for r in results]]]
    rows += [[key, *[number(r.metrics.get(key)) for r in results]] for key in keys]
    table(f"Evaluation of {results[0].data}", ["", *columns], rows)
