"""The documented team set-up (deploy/): ``cauce server`` over PostgreSQL and S3-compatible
storage. The Kubernetes manifests are validated against Kubernetes 1.33's schemas in strict
mode; the docker-compose ``cauce`` service's command and environment are run here against a
real PostgreSQL database and an S3 server (moto), and a client works through it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import kubernetes_validate
import pytest
import yaml

from cauce.config import load_settings
from cauce.server.tokens import create_token
from cauce.tracking import artifacts, runs
from cauce.workspace import Workspace
from served import free_port

DEPLOY = Path(__file__).parents[2] / "deploy"
S3_BUCKET = "cauce-test"  # the bucket the root conftest's moto server holds


def _compose() -> dict[str, Any]:
    return dict(yaml.safe_load((DEPLOY / "docker-compose.yml").read_text()))


def _kubernetes() -> list[dict[str, Any]]:
    return [m for m in yaml.safe_load_all((DEPLOY / "kubernetes.yaml").read_text()) if m]


def test_the_kubernetes_manifests_are_valid_and_run_what_compose_runs() -> None:
    manifests = _kubernetes()
    for manifest in manifests:
        kubernetes_validate.validate(manifest, "1.33", strict=True)
    by_kind = {m["kind"]: m for m in manifests}
    assert set(by_kind) == {"Secret", "Deployment", "PersistentVolumeClaim", "Service"}
    container = by_kind["Deployment"]["spec"]["template"]["spec"]["containers"][0]
    compose = _compose()["services"]["cauce"]
    assert container["command"] == compose["command"]
    k8s_env = {e["name"] for e in container["env"]} | set(by_kind["Secret"]["stringData"])
    # The S3 endpoint is MinIO's in compose; on Kubernetes the bucket is the cloud's own.
    assert k8s_env == set(compose["environment"]) - {"CAUCE_S3_ENDPOINT_URL"}
    probe = container["readinessProbe"]["httpGet"]
    assert probe["path"] == "/health"
    service = by_kind["Service"]["spec"]
    assert service["selector"] == by_kind["Deployment"]["spec"]["selector"]["matchLabels"]


def _interpolate(value: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)(?::\?[^}]*)?\}", lambda m: variables[m.group(1)], value)


@pytest.mark.postgres
def test_the_compose_service_serves_a_team_on_postgres_and_s3(
    pg_url: str,
    s3_server: str,
    s3_prefix: str,
    s3_client: Any,
    tmp_path: Path,
) -> None:
    service = _compose()["services"]["cauce"]
    variables = {"CAUCE_DB_PASSWORD": "pw", "CAUCE_S3_KEY": "testing", "CAUCE_S3_SECRET": "testing"}
    env = {k: _interpolate(str(v), variables) for k, v in service["environment"].items()}
    assert env["CAUCE_DB_URL"].split("://")[0] == pg_url.split("://")[0]
    _, _, prefix = env["CAUCE_ARTIFACTS"].removeprefix("s3://").partition("/")
    # The test's database, bucket and S3 server in place of the compose network's.
    env.update(
        CAUCE_HOME=str(tmp_path / "home"),
        CAUCE_DB_URL=pg_url,
        CAUCE_ARTIFACTS=f"s3://{S3_BUCKET}/{s3_prefix}/{prefix}",
        CAUCE_S3_ENDPOINT_URL=s3_server,
        CAUCE_SERVER_SIGNED_URLS="true",
    )
    (tmp_path / "home" / ".cauce").mkdir(parents=True)
    home = Workspace(load_settings(env=env))
    home.store.upgrade()
    _, token = create_token("alice", "editor", home=home)
    command = list(service["command"])
    assert command[:2] == ["cauce", "server"]
    port = free_port()
    command = [sys.executable, "-m", "cauce.cli.main", *command[1:]]
    command[command.index("--host") + 1] = "127.0.0.1"  # tests bind to loopback only
    command[command.index("--port") + 1] = str(port)
    process_env = {k: v for k, v in os.environ.items() if not k.startswith("CAUCE_")} | env
    log = tmp_path / "server.log"
    with log.open("wb") as out:
        server = subprocess.Popen(command, env=process_env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait(url, server, log)
        assert httpx.get(f"{url}/api/v1/runs").status_code == 401
        client = Workspace(
            load_settings(
                env={
                    "CAUCE_SERVER_URL": url,
                    "CAUCE_SERVER_TOKEN": token,
                    "CAUCE_HOME": str(tmp_path / "c"),
                }
            )
        )
        run_id = runs.create_run("team", workspace=client).run_id
        runs.log_metric(run_id, "auc", 0.93, workspace=client)
        data = tmp_path / "report.txt"
        data.write_text("quarterly numbers\n")
        artifacts.log_artifact(run_id, data, workspace=client)
        back = artifacts.download_artifacts(
            run_id, "report.txt", tmp_path / "back.txt", workspace=client
        )
        assert back.read_text() == "quarterly numbers\n"
        # The metadata is in PostgreSQL, written as the token's principal; the file is in S3.
        run = runs.get_run(run_id, workspace=home)
        assert run.data.metrics == {"auc": 0.93} and run.info.user_id == "alice"
        keys = [
            o["Key"]
            for o in s3_client.list_objects_v2(Bucket=S3_BUCKET, Prefix=s3_prefix)["Contents"]
        ]
        assert len(keys) == 1 and keys[0].startswith(f"{s3_prefix}/{prefix}/sha256/")
        # The download came straight from S3, by a signed URL the server redirected to.
        digest = keys[0].rsplit("/", 1)[1]
        answer = httpx.get(
            f"{url}/api/v1/blobs/{digest}", headers={"Authorization": f"Bearer {token}"}
        )
        assert answer.status_code == 307
        assert answer.headers["location"].startswith(s3_server)
        assert "Signature" in answer.headers["location"]
        client.close()
    finally:
        server.terminate()
        server.wait(10)
        home.close()
    assert token not in log.read_text()


def _wait(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        assert server.poll() is None, log.read_text()[-3000:]
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"the server did not start: {log.read_text()[-3000:]}")
