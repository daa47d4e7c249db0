"""``cauce deployments``: the model versions served behind endpoints."""

from __future__ import annotations

import typer

from cauce.cli.output import JSON_OPTION_HELP, console, print_json, table, when

app = typer.Typer(
    help="Deployments: what each serves, their logs; serve or delete one.", no_args_is_help=True
)


@app.command("list")
def list_(
    endpoint: str = typer.Argument(None, help="Only this endpoint's deployments."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """List deployments with the model version each serves and its share of traffic.

    Example:
        cauce deployments list churn
    """
    from cauce.serving.endpoints import get_endpoint, list_endpoints

    endpoints = [get_endpoint(endpoint)] if endpoint else list_endpoints()
    found = [(e, d) for e in endpoints for d in e.deployments]
    if as_json:
        print_json([d.to_dict() for _, d in found])
        return
    table(
        "Deployments",
        ["Endpoint", "Deployment", "Serves", "Workers", "Traffic", "Mirror", "Updated"],
        [
            [
                e.name,
                d.name,
                d.target,
                d.workers,
                f"{e.traffic.get(d.name, 0)}%",
                f"{e.mirror.get(d.name, 0)}%",
                when(d.updated_at),
            ]
            for e, d in found
        ],
        empty=f"Endpoint {endpoint} has no deployments."
        if endpoint
        else "No deployments yet: apply an Endpoint with its Deployments.",
    )


@app.command("show")
def show(
    endpoint: str = typer.Argument(..., help="Endpoint name."),
    name: str = typer.Argument(..., help="Deployment name."),
    as_json: bool = typer.Option(False, "--json", help=JSON_OPTION_HELP),
) -> None:
    """Show one deployment: its spec, model version and signature.

    Example:
        cauce deployments show churn blue
    """
    from cauce.serving.endpoints import get_deployment

    deployment = get_deployment(endpoint, name)
    if as_json:
        print_json(deployment.to_dict())
        return
    applied = deployment.spec.get(deployment.target_kind)
    through = (
        f" through connection {deployment.connection}" if deployment.target_kind == "prompt" else ""
    )
    console.print(
        f"deployment [bold]{endpoint}/{name}[/] serves {deployment.target}"
        f"{f' (applied as {applied})' if applied and applied != deployment.target else ''}"
        f"{through} with {deployment.workers} worker(s)"
    )
    inputs = (deployment.signature or {}).get("inputs") or {}
    if inputs.get("type") == "dataframe":
        table(
            "Input signature",
            ["Column", "Type", "Required"],
            [[c["name"], c["type"], c.get("required", True)] for c in inputs["columns"]],
        )


@app.command("logs")
def logs(
    endpoint: str = typer.Argument(..., help="Endpoint name."),
    name: str = typer.Argument(..., help="Deployment name."),
    tail: int = typer.Option(50, "--tail", "-n", help="Lines from the end."),
) -> None:
    """Print the end of a deployment's log (worker output, restarts) from local serving.

    Example:
        cauce deployments logs churn blue --tail 100
    """
    from cauce.errors import NotFound
    from cauce.serving.endpoints import get_deployment
    from cauce.workspace import current

    get_deployment(endpoint, name)
    path = current().settings.state_dir / "logs" / "endpoints" / endpoint / f"{name}.log"
    if not path.is_file():
        raise NotFound(
            f"deployment {endpoint}/{name} has no log yet", hint=f"cauce endpoints serve {endpoint}"
        )
    lines = path.read_text(errors="replace").splitlines()
    for line in lines[-tail:] if tail > 0 else lines:
        print(line)


@app.command("serve")
def serve(
    endpoint: str = typer.Argument(..., help="Endpoint name."),
    name: str = typer.Argument(..., help="Deployment name."),
    host: str = typer.Option("127.0.0.1", "--host", help="Address to listen on."),
    port: int = typer.Option(8080, "--port", help="Port to listen on."),
) -> None:
    """Serve one deployment alone (its workers behind one port), as a Kubernetes pod does.

    Example:
        cauce deployments serve churn blue --port 9001
    """
    from cauce.serving.workers import serve_deployment

    def announce() -> None:
        console.print(
            f"serving deployment {endpoint}/{name} at http://{host}:{port} (Ctrl-C stops)"
        )

    serve_deployment(endpoint, name, host=host, port=port, announce=announce)


@app.command("delete")
def delete(
    endpoint: str = typer.Argument(..., help="Endpoint name."),
    name: str = typer.Argument(..., help="Deployment name."),
) -> None:
    """Delete a deployment that takes no live or mirrored traffic.

    Example:
        cauce deployments delete churn green
    """
    from cauce.serving.endpoints import delete_deployment

    delete_deployment(endpoint, name)
    console.print(f"deleted deployment {endpoint}/{name}")
