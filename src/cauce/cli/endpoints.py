"""``cauce endpoints``: scoring addresses, their traffic split and mirror."""

from __future__ import annotations

from pathlib import Path

import typer

from cauce.cli.output import JSON_OPTION_HELP, console, print_json, table, when
from cauce.errors import InvalidInput

app = typer.Typer(
    help="Endpoints: serve them, split and mirror their traffic, call them, export them.",
    no_args_is_help=True,
)
keys_app = typer.Typer(
    help="API keys of GenAI endpoints (auth: api_key): create, list, revoke.",
    no_args_is_help=True,
)
app.add_typer(keys_app, name="keys")


def _split(pairs: list[str], what: str) -> dict[str, int]:
    """``blue=90 green=10`` as ``{"blue": 90, "green": 10}``."""
    split: dict[str, int] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name or not value.strip().lstrip("-").isdigit():
            raise InvalidInput(f"{what} must be given as DEPLOYMENT=PERCENT, got {pair!r}")
        split[name] = int(value)
    return split


def _split_text(split: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}%" for k, v in split.items()) or "—"


@app.command("list")
def list_(as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP)) -> None:
    """List endpoints with their deployments and traffic.

    Example:
        cauce endpoints list
    """
    from cauce.serving.endpoints import list_endpoints

    found = list_endpoints()
    if as_json:
        print_json([e.to_dict() for e in found])
        return
    table(
        "Endpoints",
        ["Name", "Deployments", "Traffic", "Mirror", "Updated"],
        [
            [
                e.name,
                ", ".join(d.name for d in e.deployments),
                _split_text(e.traffic),
                _split_text(e.mirror),
                when(e.updated_at),
            ]
            for e in found
        ],
        empty="No endpoints yet: apply an Endpoint with its Deployments; or run cauce demo.",
    )


@app.command("show")
def show(
    name: str = typer.Argument(..., help="Endpoint name."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Show an endpoint: its deployments, the model version each serves, traffic and mirror.

    Example:
        cauce endpoints show churn
    """
    from cauce.serving.endpoints import get_endpoint

    endpoint = get_endpoint(name)
    if as_json:
        print_json(endpoint.to_dict())
        return
    console.print(
        f"endpoint [bold]{endpoint.name}[/]  traffic: {_split_text(endpoint.traffic)}  "
        f"mirror: {_split_text(endpoint.mirror)}"
    )
    table(
        None,
        ["Deployment", "Serves", "Workers", "Batching", "Collect", "Traffic", "Updated"],
        [
            [
                d.name,
                d.target if d.model_uri in (None, d.target) else f"{d.target} ({d.model_uri})",
                d.workers,
                "off"
                if not d.batching
                else f"{d.batching['max_batch_size']} rows / {d.batching['max_latency_ms']:g} ms",
                "off" if not d.collect else f"sampling {d.collect['sampling']:g}",
                f"{endpoint.traffic.get(d.name, 0)}%",
                when(d.updated_at),
            ]
            for d in endpoint.deployments
        ],
    )


@app.command("serve")
def serve(
    name: str = typer.Argument(..., help="Endpoint name."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8080, "--port", help="Port to listen on."),
    no_deployments: bool = typer.Option(
        False, "--no-deployments", help="Run only the router; deployments are served elsewhere."
    ),
    deployment_url: list[str] = typer.Option(
        [],
        "--deployment-url",
        help="NAME=http://HOST:PORT of a deployment (with --no-deployments).",
    ),
    no_collect: bool = typer.Option(False, "--no-collect", help="Switch the data collector off."),
) -> None:
    """Serve an endpoint: the router and every deployment's workers, until Ctrl-C.

    Example:
        cauce endpoints serve churn --port 8080
    """
    from cauce.serving.local import serve_endpoint
    from cauce.workspace import current

    urls = None
    if no_deployments or deployment_url:
        urls = {}
        for pair in deployment_url:
            deployment, sep, url = pair.partition("=")
            if not sep or not url.startswith("http://"):
                raise InvalidInput(f"--deployment-url must be NAME=http://HOST:PORT, got {pair!r}")
            urls[deployment] = url

    def announce() -> None:
        console.print(f"serving endpoint {name} at http://{host}:{port} (Ctrl-C stops)")

    serve_endpoint(
        current(),
        name,
        host=host,
        port=port,
        deployment_urls=urls,
        collect=not no_collect,
        announce=announce,
    )


@app.command("traffic")
def traffic(
    name: str = typer.Argument(..., help="Endpoint name."),
    split: list[str] = typer.Argument(None, help="DEPLOYMENT=PERCENT pairs summing to 100."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Set the live traffic split (percentages summing to 100); without pairs, show its history.

    Example:
        cauce endpoints traffic churn blue=90 green=10
    """
    from cauce.serving.endpoints import set_traffic, traffic_changes

    if split:
        endpoint = set_traffic(name, _split(split, "traffic"))
        console.print(f"{name}: traffic {_split_text(endpoint.traffic)}")
        return
    history = traffic_changes(name)
    if as_json:
        print_json(history)
        return
    table(
        f"Traffic of {name}",
        ["When", "Traffic", "Mirror", "Reason", "By"],
        [
            [
                when(h["at"]),
                _split_text(h["traffic"]),
                _split_text(h["mirror"]),
                h["reason"],
                h["actor"],
            ]
            for h in history
        ],
    )


@app.command("mirror")
def mirror(
    name: str = typer.Argument(..., help="Endpoint name."),
    split: list[str] = typer.Argument(None, help="DEPLOYMENT=PERCENT (one deployment)."),
    off: bool = typer.Option(False, "--off", help="Stop mirroring."),
) -> None:
    """Mirror a percentage of live requests to a deployment with no live traffic.

    Example:
        cauce endpoints mirror churn green=20
    """
    from cauce.serving.endpoints import set_mirror

    if not off and not split:
        raise InvalidInput("give DEPLOYMENT=PERCENT, or --off to stop mirroring")
    endpoint = set_mirror(name, {} if off else _split(split, "mirror"))
    console.print(f"{name}: mirror {_split_text(endpoint.mirror)}")


@app.command("invoke")
def invoke(
    name: str = typer.Argument(..., help="Endpoint name."),
    data: str = typer.Option(
        ..., "--data", "-d", help="Request body (MLflow or v2 JSON, or CSV), or @FILE."
    ),
    url: str = typer.Option("http://127.0.0.1:8080", "--url", help="Where the endpoint is served."),
    deployment: str = typer.Option(None, "--deployment", help="Send to this deployment only."),
    content_type: str = typer.Option("application/json", "--content-type", help="Body's type."),
    v2: bool = typer.Option(False, "--v2", help="Use the Open Inference v2 infer path."),
) -> None:
    """Send one scoring request to a served endpoint and print the answer.

    Example:
        cauce endpoints invoke churn -d '{"dataframe_records": [{"tenure": 3}]}'
    """
    import httpx

    body = Path(data[1:]).read_bytes() if data.startswith("@") else data.encode()
    headers = {"content-type": content_type}
    if deployment:
        headers["cauce-deployment"] = deployment
    path = f"/v2/models/{name}/infer" if v2 else "/invocations"
    try:
        reply = httpx.post(url.rstrip("/") + path, content=body, headers=headers, timeout=60)
    except httpx.HTTPError as exc:
        raise InvalidInput(
            f"cannot reach endpoint {name} at {url}: {exc}",
            hint=f"serve it with cauce endpoints serve {name}, or pass --url where it is served",
        ) from None
    if reply.status_code >= 400:
        try:
            error = reply.json()["error"]  # v2 paths: the message itself; else an object
            message = error if isinstance(error, str) else error["message"]
        except (ValueError, KeyError, TypeError):
            message = reply.text[:300]
        raise InvalidInput(f"endpoint {name} answered {reply.status_code}: {message}")
    served = reply.headers.get("cauce-endpoint")
    if served is not None and served != name:  # another endpoint's model answered
        raise InvalidInput(
            f"the server at {url} serves endpoint {served}, not {name}",
            hint=f"pass --url where {name} is served (cauce endpoints serve {name} prints it)",
        )
    served_by = reply.headers.get("cauce-deployment", "?")
    version = reply.headers.get("cauce-model-version", "?")
    console.print(f"[dim]{served_by} ({version}) {reply.headers.get('x-request-id', '')}[/]")
    print(reply.text)


@app.command("export")
def export(
    name: str = typer.Argument(..., help="Endpoint name."),
    format: str = typer.Option("kubernetes", "--format", help="kubernetes or kserve."),
    output: Path = typer.Option(..., "--output", "-o", help="YAML file to write."),
) -> None:
    """Write the manifests that run the endpoint in Kubernetes (or as a KServe service).

    Example:
        cauce endpoints export churn --format kubernetes -o churn.yaml
    """
    from cauce.serving.export import export as export_manifests

    result = export_manifests(name, format=format, output=output)
    console.print(f"wrote {output}")
    for warning in getattr(result, "warnings", []) or []:
        console.print(f"[yellow]warning:[/] {warning}")


@app.command("delete")
def delete(name: str = typer.Argument(..., help="Endpoint name.")) -> None:
    """Delete an endpoint that has no deployments left.

    Example:
        cauce endpoints delete churn
    """
    from cauce.serving.endpoints import delete_endpoint

    delete_endpoint(name)
    console.print(f"deleted endpoint {name}")


@keys_app.command("create")
def keys_create(
    endpoint: str = typer.Argument(..., help="Endpoint name."),
    name: str = typer.Argument(..., help="Key name (who or what uses it)."),
    requests_per_minute: int | None = typer.Option(None, "--requests-per-minute", min=1),
    tokens_per_minute: int | None = typer.Option(None, "--tokens-per-minute", min=1),
    token_budget: int | None = typer.Option(
        None, "--token-budget", min=1, help="Tokens per budget period."
    ),
    budget_period: str = typer.Option("month", "--budget-period", help="day or month (UTC)."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Create an API key; it is printed once and only its sha256 is kept.

    Example:
        cauce endpoints keys create assistant team-a --requests-per-minute 60 --token-budget 1000000
    """
    from cauce.serving.keys import create_key

    limits = {
        "requests_per_minute": requests_per_minute,
        "tokens_per_minute": tokens_per_minute,
        "token_budget": token_budget,
        "budget_period": budget_period,
    }
    stored, key = create_key(
        endpoint, name, limits={k: v for k, v in limits.items() if v is not None}
    )
    if as_json:
        print_json({**stored.to_dict(), "key": key})
        return
    console.print(f"key {name} of endpoint {endpoint} (shown once, keep it now):")
    console.print(key, markup=False, highlight=False)


@keys_app.command("list")
def keys_list(
    endpoint: str = typer.Argument(..., help="Endpoint name."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """List an endpoint's keys with their limits and this period's spending.

    Example:
        cauce endpoints keys list assistant
    """
    from cauce.serving.keys import list_keys

    found = list_keys(endpoint)
    if as_json:
        print_json([k.to_dict() for k in found])
        return
    table(
        f"Keys of {endpoint}",
        ["Name", "Prefix", "Limits", "Spent (period)", "Created", "Revoked"],
        [
            [
                k.name,
                k.prefix + "…",
                ", ".join(f"{n}={v}" for n, v in k.limits.items()) or "—",
                "—"
                if not k.spent
                else f"{k.spent['input_tokens'] + k.spent['output_tokens']} tokens, "
                f"{k.spent['requests']} requests ({k.spent['period']})",
                when(k.created_at),
                when(k.revoked_at) if k.revoked_at else "—",
            ]
            for k in found
        ],
    )


@keys_app.command("revoke")
def keys_revoke(
    endpoint: str = typer.Argument(..., help="Endpoint name."),
    name: str = typer.Argument(..., help="Key name."),
) -> None:
    """Revoke a key: a running endpoint refuses it within a second.

    Example:
        cauce endpoints keys revoke assistant team-a
    """
    from cauce.serving.keys import revoke_key

    revoke_key(endpoint, name)
    console.print(f"revoked key {name} of endpoint {endpoint}")
