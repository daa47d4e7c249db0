"""``cauce llms``: the local LLM: register it, serve it OpenAI-compatible, chat with it."""

from __future__ import annotations

import typer

from cauce.cli.output import JSON_OPTION_HELP, console, print_json, table

app = typer.Typer(
    help="The local LLM (llama.cpp, offline): register, serve, chat.", no_args_is_help=True
)


@app.command("register")
def register(
    name: str = typer.Option("smollm2", "--name", help="The registered model's name."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Register the packaged SmolLM2-135M-Instruct (GGUF) as a model version with its card.

    Example:
        cauce llms register
    """
    from cauce.genai.llms import register_local_llm

    version = register_local_llm(name)
    if as_json:
        print_json(version.to_dict())
        return
    table(
        f"{version.uri}",
        ["Tag", "Value"],
        [[k, v] for k, v in sorted(version.tags.items())],
    )


@app.command("serve")
def serve(
    uri: str = typer.Argument("models:/smollm2", help="A registered GGUF model."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind."),
    port: int = typer.Option(8080, "--port", "-p", help="Port to bind."),
    slots: int = typer.Option(
        1, "--slots", help="Requests answered at once, each by a copy of the model in memory."
    ),
) -> None:
    """Serve a registered GGUF model at /v1/chat/completions (OpenAI's API) until Ctrl-C.

    Example:
        cauce llms serve models:/smollm2 --port 8080 --slots 2
    """
    from cauce.genai.llm_server import serve_model

    def announce() -> None:
        console.print(f"serving {uri} at http://{host}:{port}/v1 (Ctrl-C stops)")

    serve_model(uri, host=host, port=port, slots=slots, announce=announce)


@app.command("chat")
def chat(
    uri: str = typer.Argument(..., help="A registered GGUF model, models:/NAME[/VERSION]."),
    prompt: str = typer.Argument(..., help="The user message."),
    system: str = typer.Option(None, "--system", help="A system message."),
    max_tokens: int = typer.Option(128, "--max-tokens", help="Largest answer, in tokens."),
    temperature: float = typer.Option(0.0, "--temperature", help="0 is greedy."),
    seed: int = typer.Option(None, "--seed", help="Sampling seed (temperature above 0)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Ask a registered GGUF model one question, in this process.

    Example:
        cauce llms chat models:/smollm2 "Name a colour." --max-tokens 8
    """
    from cauce.registry.models import load

    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": prompt})
    with load(uri).unwrap() as llm:
        answer = llm.chat(messages, max_tokens=max_tokens, temperature=temperature, seed=seed)
    if as_json:
        print_json(
            {
                "text": answer.text,
                "finish_reason": answer.finish_reason,
                "usage": answer.usage.to_dict(),
            }
        )
        return
    typer.echo(answer.text)
