"""``cauce endpoints serve`` against a Cauce server: the router, its deployment servers and the
rollout controller run here, and every store read and write goes through the server.

What is checked is what a team relies on when it serves from a laptop or a node that has no
database password: answers, the router's measurements and the collector's datasets arriving in
the server's workspace, a traffic change made elsewhere picked up, a rollout judged and
promoted by the controller beside the router.
"""

from __future__ import annotations

from typing import Any

import pytest

from cauce.data.assets import versions
from cauce.lineage.audit import events
from cauce.registry.models import get_version, set_alias
from cauce.serving import rollouts
from cauce.serving.endpoints import get_endpoint, set_traffic
from cauce.serving.metrics import summarize
from cauce.store import now_ms
from cauce.workspace import Workspace
from clitools import wait_until
from served import CHURN_BLUE_GREEN, serving

pytestmark = pytest.mark.slow

SPEC = CHURN_BLUE_GREEN
ROW = {"age": 30, "charges": 50.0}


def test_an_endpoint_served_against_a_server_reports_there_and_follows_it(
    remote_workspace: Workspace, churn_model: Any
) -> None:
    ws = remote_workspace
    assert ws.remote
    churn_model(c=1.0)
    churn_model(c=0.05)
    set_alias("churn", "champion", 1)
    start = now_ms()
    with serving(ws, SPEC, ["blue", "green"], warm_row=ROW) as served:
        for _ in range(20):
            reply = served.score([ROW])
            assert reply.status_code == 200, reply.text
            assert reply.headers["cauce-deployment"] == "blue"
        # The router's windows reach the server within a flush or two.
        blue = wait_until(
            lambda: summarize("churn", "blue", start, now_ms()).requests >= 20 or None, timeout=10
        )
        assert blue

        # Traffic moved through the server is honoured within a reload.
        set_traffic("churn", {"blue": 0, "green": 100}, reason="test")
        wait_until(lambda: served.score([ROW]).headers["cauce-deployment"] == "green", timeout=10)
        set_traffic("churn", {"blue": 100, "green": 0}, reason="test")
        wait_until(lambda: served.score([ROW]).headers["cauce-deployment"] == "blue", timeout=10)

        # The controller beside the router judges the rollout and promotes it.
        rollouts.start(
            {
                "kind": "Rollout",
                "endpoint": "churn",
                "candidate": "green",
                "steps": [{"weight": 50, "pause": "1s"}, {"weight": 100}],
                "analysis": {
                    "interval": "1s",
                    "min_requests": 1,
                    "metrics": [{"name": "error_rate", "max": 0.05}],
                },
            }
        )

        def promoted() -> bool:
            for _ in range(5):
                assert served.score([ROW]).status_code == 200
            return rollouts.status("churn").state == "promoted"

        wait_until(promoted, timeout=60, every=0.2)
        assert get_endpoint("churn").traffic == {"blue": 0, "green": 100}
        assert "champion" in get_version("churn", 2).aliases
        (moved, *_) = events(ws, action="model.alias.set")
        assert moved.actor == "cauce-controller"

        assert served.stop() == 130
        assert "Traceback" not in served.log()
    # The collector's files stay here; what it registered on the way out is on the server.
    assert versions("churn.blue.model_inputs") and versions("churn.green.model_outputs")
