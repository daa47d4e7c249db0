"""schemathesis over the whole REST API of a real ``cauce server`` with authentication on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from cauce.config import load_settings
from cauce.server.tokens import create_token
from cauce.workspace import Workspace
from remote import start_server


@pytest.mark.slow
@pytest.mark.timeout(900)  # 114 s alone here, 225 s on a slower machine, 300 s under 4 workers
def test_schemathesis_finds_no_server_error_with_auth_on(tmp_path: Path) -> None:
    home = tmp_path / "server"
    (home / ".cauce").mkdir(parents=True)
    ws = Workspace(load_settings(env={"CAUCE_HOME": str(home)}))
    _, token = create_token("fuzzer", "admin", workspace_name="*", home=ws)
    ws.close()
    for server in start_server(home, tmp_path / "server.log"):
        assert httpx.get(f"{server.url}/api/v1/runs").status_code == 401
        schemathesis = Path(sys.executable).parent / "schemathesis"
        result = subprocess.run(
            [
                str(schemathesis), "run", f"{server.url}/api/v1/openapi.json",
                "--header", f"Authorization: Bearer {token}",
                "--checks", "not_a_server_error",
                "--max-examples", "40",
                "--phases", "examples,coverage,fuzzing",
                "--seed", "1", "--workers", "1", "--no-shrink",
                "--suppress-health-check", "all", "--request-timeout", "30",
            ],
            capture_output=True, text=True, timeout=800, cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 0, result.stdout[-6000:]
        assert token not in (tmp_path / "server.log").read_text()
