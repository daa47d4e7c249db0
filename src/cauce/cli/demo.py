"""``cauce demo``."""

from __future__ import annotations

import typer


def demo(
    story: str = typer.Argument(
        "classic", help="classic (data to a retrained model) or genai (RAG, evaluation)."
    ),
    fast: bool = typer.Option(False, "--fast", help="The classic story on less data (for tests)."),
    as_json: bool = typer.Option(
        False,
        "--json",
        help="Print the results of every stage as one JSON document; the story goes to stderr.",
    ),
) -> None:
    """Run a demo story in the current workspace: classic or genai.

    classic: data to a served, monitored, retrained model. genai: documents to an index, two
    prompt variants of a RAG flow answered by the local LLM, evaluated side by side, the better
    one labelled production, then served, monitored and refreshed.

    Example:
        cauce demo --fast
        cauce demo genai
    """
    from cauce.errors import InvalidInput

    if story not in ("classic", "genai"):
        raise InvalidInput(f"there is no {story!r} demo: use classic or genai")
    if story == "genai":
        if fast:
            # Its time is the local model's answers, not the size of its data: there is no
            # smaller story to tell.
            raise InvalidInput(
                "--fast is for the classic story; the genai story has one size",
                hint="run cauce demo genai: about 5 minutes on 2 CPUs",
            )
        from cauce.demo.genai import run as run_genai

        if not as_json:
            run_genai()
            return
        from cauce.cli.output import err_console, print_json

        print_json(run_genai(console=err_console))
        return
    from cauce.demo.story import run

    if not as_json:
        run(fast=fast)
        return
    from cauce.cli.output import err_console, print_json

    print_json(run(fast=fast, console=err_console))
