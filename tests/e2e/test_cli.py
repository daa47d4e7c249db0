"""The ``cauce`` command, run as a real process against a real workspace."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from cauce.store import HEAD_REVISION
from clitools import assert_one_line_error, cauce


def test_import_cauce_loads_no_heavy_library() -> None:
    code = (
        "import sys, cauce; heavy = [m for m in ('sqlalchemy', 'pandas', 'sklearn', 'alembic',"
        " 'numpy', 'typer', 'rich') if m in sys.modules]; print(heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_init_creates_the_workspace(tmp_path: Path) -> None:
    target = tmp_path / "project"
    result = cauce(target, "init", str(target))
    assert (target / "cauce.yaml").is_file()
    assert (target / ".cauce" / "cauce.db").is_file()
    assert "Initialised" in result.stdout
    current = cauce(target, "db", "current")
    assert HEAD_REVISION in current.stdout


def test_an_empty_list_says_what_to_do_and_a_fruitless_filter_says_nothing_matched(
    tmp_path: Path,
) -> None:
    home = tmp_path / "project"
    cauce(home, "init", str(home))
    assert cauce(home, "runs", "list").stdout == (
        "No runs yet: log one with cauce.start_run(); or run cauce demo.\n"
    )
    assert cauce(home, "runs", "list", "-f", "metrics.auc > 0.8").stdout == "No runs match.\n"
    assert cauce(home, "runs", "list", "--json").stdout.strip() == "[]"  # scripts read JSON


def test_a_server_whose_port_is_taken_or_whose_endpoint_is_missing_says_so_in_one_line(
    tmp_path: Path,
) -> None:
    """Not an announcement of a server that never started, then uvicorn's log and exit 3."""
    home = tmp_path / "project"
    cauce(home, "init", str(home))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = str(taken.getsockname()[1])
        for command in (["ui"], ["server"], ["endpoints", "serve", "churn"]):
            busy = cauce(home, *command, "--port", port, check=False, timeout=60)
            assert_one_line_error(busy, f"cannot listen on 127.0.0.1:{port}")
            assert busy.stdout == ""
    missing = cauce(home, "endpoints", "serve", "churn", check=False, timeout=60)
    assert_one_line_error(missing, "endpoint 'churn' does not exist")
    assert missing.stdout == ""


def test_a_piped_table_keeps_each_row_on_one_line(tmp_path: Path) -> None:
    """Rich folds a table to 80 columns when stdout is not a terminal: a row of `cauce runs
    list | grep FINISHED` came out in pieces. Piped, a row is one line; COLUMNS still rules."""
    home = tmp_path / "project"
    cauce(home, "init", str(home))
    (home / "orders.csv").write_text("order_id,amount\n1,9.5\n2,12.0\n")
    cauce(home, "data", "register", "orders", str(home / "orders.csv"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CAUCE_") and k != "COLUMNS"}
    env["CAUCE_HOME"] = str(home)
    command = [sys.executable, "-m", "cauce.cli.main", "data", "show", "orders"]
    piped = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    [content_hash] = [line for line in piped.stdout.splitlines() if "Content hash" in line]
    assert re.search(r"│ [0-9a-f]{64} +│$", content_hash), piped.stdout
    narrow = subprocess.run(
        command, env={**env, "COLUMNS": "60"}, capture_output=True, text=True, check=True
    )
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 60


STAGES = [
    "data",
    "quality",
    "pipeline",
    "training",
    "registry",
    "serving",
    "monitoring",
    "decay",
    "alert",
    "retraining",
    "rollout",
    "rollback",
    "traffic",
    "account",
]


@pytest.mark.slow
def test_demo_then_every_read_command(tmp_path: Path) -> None:
    home = tmp_path / "demo"
    demo = cauce(home, "demo", "--fast", "--json")
    story = json.loads(demo.stdout)  # stdout holds the JSON document alone
    assert "Cauce demo" in demo.stderr  # the story itself is told on stderr
    assert story["fast"] is True and story["seconds"] > 0
    assert [s["stage"] for s in story["stages"]] == STAGES
    stage = {s["stage"]: s for s in story["stages"]}

    # Bronze through the quality bar into silver; a corrupted batch stopped by it.
    data = stage["data"]
    assert (data["bronze"]["ref"], data["silver"]["ref"]) == ("customers@1", "customers_silver@1")
    assert 0 < data["silver"]["rows"] <= data["bronze"]["rows"]
    assert data["checks_passed"] + len(data["warnings"]) == data["checks"]
    quality = stage["quality"]
    assert quality["stopped"] is True and quality["batch"]["ref"] == "customers@2"
    assert "accepted_values(contract)" in quality["failed_checks"]
    # The cached training pipeline: an unchanged re-run comes wholly from the cache.
    pipeline = stage["pipeline"]
    assert pipeline["steps"] == pipeline["rerun"]["steps"] == pipeline["rerun"]["cache_hits"] == 9
    # Three tracked candidates; the best by ROC AUC registered as churn v1, the champion.
    training = stage["training"]
    candidates = training["candidates"]
    assert training["best"] == candidates[0]["candidate"]
    assert {c["candidate"] for c in candidates} == {
        "logistic_regression",
        "random_forest",
        "gradient_boosting",
    }
    assert candidates[0]["roc_auc"] == max(c["roc_auc"] for c in candidates)
    registry = stage["registry"]
    assert (registry["model"], registry["version"]) == ("churn", 1)
    assert registry["aliases"] == {"champion": 1} and registry["run_id"] == candidates[0]["run_id"]
    # Served as blue and watched: like traffic drifts nothing.
    serving = stage["serving"]
    assert (serving["endpoint"], serving["deployment"], serving["version"]) == ("churn", "blue", 1)
    assert serving["answered"] > 0
    monitoring = stage["monitoring"]
    assert (monitoring["monitor"], monitoring["window_s"], monitoring["status"]) == (
        "churn-drift",
        8,
        "ok",
    )
    assert monitoring["features"] == 8 and monitoring["drifted"] == []
    # The market moves: the monitor alerts, and its action (the retraining) succeeds.
    assert stage["decay"]["batch"]["ref"] == "customers_recent@1"
    alert = stage["alert"]
    assert alert["status"] == "alert" and alert["drifted"]
    assert all(alert["drift"][feature] is not None for feature in alert["drifted"])
    assert [(a["action"], a["status"]) for a in alert["actions"]] == [("trigger", "succeeded")]
    assert ("data_drift", "contract") in {(b["signal"], b["feature"]) for b in alert["breaches"]}
    # Retrained churn v2 passes the gate against champion v1 on roc_auc: the challenger.
    retraining = stage["retraining"]
    gate = retraining["gate"]
    assert retraining["version"] == 2 and retraining["aliases"] == {"challenger": 2}
    assert gate["passed"] is True and gate["rules_passed"] == len(gate["rules"]) == 4
    assert gate["compared"]["metric"] == "roc_auc"
    assert (gate["compared"]["against"], gate["compared"]["baseline_version"]) == ("champion", 1)
    # Its canary rollout as green is promoted: champion → churn v2.
    rollout = stage["rollout"]
    assert (rollout["deployment"], rollout["version"], rollout["state"]) == ("green", 2, "promoted")
    assert rollout["decisions"][0]["decision"] == "start"
    assert rollout["decisions"][-1]["decision"] == "promote"
    assert rollout["aliases"] == {"champion": 2}
    assert rollout["traffic"] == {"blue": 0, "green": 100}
    # A broken candidate (red) is rolled back by the analysis on its prediction drift.
    rollback = stage["rollback"]
    assert (rollback["deployment"], rollback["version"], rollback["state"]) == (
        "red",
        3,
        "rolled_back",
    )
    assert "prediction_drift" in rollback["failed_metrics"]
    assert rollback["decisions"][-1]["decision"] == "rollback"
    assert stage["traffic"]["failed"] == 0 and stage["traffic"]["answered"] > 0
    assert stage["traffic"]["traffic"] == {"blue": 0, "green": 100, "red": 0}
    # The new champion's lineage reaches back to the alert and the window that raised it.
    account = stage["account"]
    assert (account["model"], account["version"]) == ("churn", 2)
    labels = {node["label"] for node in account["lineage"]}
    raised = f"alert of churn-drift ({alert['alert'][:8]})"  # the alert raised above
    assert {raised, "dataset churn-drift.window v1"} <= labels
    assert Path(account["report"]) == home / ".cauce" / "reports" / "churn-drift.html"

    tracked = json.loads(cauce(home, "runs", "list", "-e", "churn", "--json").stdout)
    assert len(tracked) == 5  # three candidates, the retrained challenger, the broken one
    runs = [r for r in tracked if "model" in r["data"]["params"]]
    assert len(runs) == 3
    assert all(r["info"]["status"] == "FINISHED" for r in runs)
    assert {r["data"]["params"]["model"] for r in runs} == {
        "logistic_regression",
        "random_forest",
        "gradient_boosting",
    }
    best = json.loads(
        cauce(home, "runs", "list", "-o", "metrics.roc_auc DESC", "--max", "1", "--json").stdout
    )[0]
    assert best["data"]["metrics"]["roc_auc"] == max(r["data"]["metrics"]["roc_auc"] for r in runs)
    filtered = json.loads(
        cauce(home, "runs", "list", "-f", "params.model = 'random_forest'", "--json").stdout
    )
    assert [r["data"]["params"]["model"] for r in filtered] == ["random_forest"]

    shown = json.loads(cauce(home, "runs", "show", best["info"]["run_id"], "--json").stdout)
    assert any(a["path"] == "model/cauce-model.yaml" for a in shown["artifacts"])
    assert shown["inputs"]["dataset_inputs"][0]["dataset"] == "customers_silver"
    compared = cauce(home, "runs", "compare", runs[0]["info"]["run_id"], runs[1]["info"]["run_id"])
    assert "*params.model" in compared.stdout

    models = json.loads(cauce(home, "models", "list", "--json").stdout)
    assert models[0]["name"] == "churn"
    assert models[0]["aliases"] == {"champion": 2, "challenger": 2}  # moved by the rollout
    versions = json.loads(cauce(home, "models", "versions", "churn", "--json").stdout)
    assert versions[0]["run_id"] == best["info"]["run_id"]
    card = cauce(home, "models", "card", "models:/churn/1").stdout
    assert card.startswith("# Model card: churn v1")
    assert "roc_auc" in card and "customers_silver" in card

    lineage = json.loads(cauce(home, "lineage", "models:/churn/1", "--json").stdout)
    kinds = {n["kind"] for n in lineage["nodes"]}
    assert kinds == {"dataset_version", "run", "model_version", "deployment", "artifact"}
    labels = {n["label"] for n in lineage["nodes"]}
    assert {"dataset customers v1", "dataset customers_silver v1"} <= labels  # bronze → silver

    events = json.loads(cauce(home, "audit", "--action", "model.*", "--json").stdout)
    assert {e["action"] for e in events} >= {"model.create", "model.alias.set"}
    assert all(e["actor"] == "cli-tester" for e in events if e["action"] == "model.create")
    # Aliases that automation moved say who moved them and why.
    moved = [e for e in events if e["action"] == "model.alias.set" and e["actor"] != "cli-tester"]
    assert {e["actor"] for e in moved} == {"retraining", "cauce-controller"}
    assert all(e["after"]["reason"] for e in moved)

    endpoint = json.loads(cauce(home, "endpoints", "show", "churn", "--json").stdout)
    assert endpoint["traffic"] == {"blue": 0, "green": 100, "red": 0}
    rollout = json.loads(cauce(home, "rollouts", "status", "churn", "--json").stdout)
    assert rollout["state"] == "rolled_back" and rollout["candidate"] == "red"
    assert rollout["decisions"][-1]["measured"]["prediction_drift"]["ok"] is False
    collected = {d["name"] for d in json.loads(cauce(home, "data", "list", "--json").stdout)}
    assert {"churn.blue.model_inputs", "churn.green.model_outputs"} <= collected

    # The closed loop, as a person would inspect it afterwards.
    alerts = json.loads(cauce(home, "alerts", "list", "--json").stdout)
    assert len(alerts) == 1 and alerts[0]["monitor"] == "churn-drift"
    assert alerts[0]["id"] == alert["alert"]
    assert [(a["action"], a["status"]) for a in alerts[0]["actions"]] == [("trigger", "succeeded")]
    breached = {(b["signal"], b["feature"]) for b in alerts[0]["breaches"]}
    assert {("data_drift", "contract"), ("model_performance", "*")} <= breached
    history = json.loads(
        cauce(
            home,
            "monitors",
            "history",
            "churn-drift",
            "--signal",
            "data_drift",
            "--feature",
            "*",
            "--json",
        ).stdout
    )
    assert [h["outcome"] for h in history] == ["passed", "breached"]
    gate = Path(__file__).parents[2] / "src" / "cauce" / "demo" / "data" / "churn-gate.yaml"
    assert "Passed" in cauce(home, "gate", "check", "models:/churn/2", "--policy", str(gate)).stdout
    upstream = json.loads(
        cauce(home, "lineage", "models:/churn/2", "-d", "upstream", "--json").stdout
    )
    assert {"alert", "monitor_run", "pipeline_run", "step_run"} <= {
        n["kind"] for n in upstream["nodes"]
    }
    assert "churn-drift" in Path(account["report"]).read_text()


@pytest.mark.slow
def test_alias_commands(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    code = (
        "import cauce\n"
        "for i in range(2):\n"
        "    with cauce.start_run(experiment='e'):\n"
        "        cauce.log_model(lambda d: d, 'model', registered_model='m')\n"
    )
    env = {**os.environ, "CAUCE_HOME": str(home)}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=120)
    cauce(home, "models", "alias", "set", "m", "champion", "1")
    cauce(home, "models", "alias", "set", "m", "champion", "2")
    history = json.loads(cauce(home, "models", "alias", "history", "m", "--json").stdout)
    assert [(h["from_version"], h["to_version"]) for h in history] == [(None, 1), (1, 2)]
    cauce(home, "models", "alias", "delete", "m", "champion")
    assert json.loads(cauce(home, "models", "list", "--json").stdout)[0]["aliases"] == {}


def test_experiment_tags_from_the_cli(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    cauce(home, "experiments", "create", "churn")
    said = cauce(home, "experiments", "tag", "churn", "team=growth", "project=retention").stdout
    assert "project=retention team=growth" in said
    cauce(home, "experiments", "tag", "churn", "--remove", "project")
    [listed] = json.loads(cauce(home, "experiments", "list", "--json").stdout)
    assert listed["tags"] == {"team": "growth"}
    assert "team=growth" in cauce(home, "experiments", "list").stdout


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (("runs", "show", "no-such-run"), ("no-such-run", "does not exist")),
        (("runs", "list", "-f", "metrics.auc > 1; DROP TABLE runs"), ("filter",)),
        (("runs", "list", "-e", "nope"), ("nope",)),
        (("runs", "compare", "a"), ("at least two",)),
        (("models", "show", "ghost"), ("ghost",)),
        (("models", "alias", "set", "ghost", "champion", "1"), ("ghost",)),
        (("models", "card", "models:/ghost/1"), ("ghost",)),
        (("models", "card", "not-a-uri"), ("not a model URI",)),
        (("lineage", "what?"), ("cannot tell",)),
        (("experiments", "create", "a/b"), ("path separator",)),
        (("experiments", "tag", "ghost", "team=x"), ("ghost", "does not exist")),
        (("experiments", "tag", "ghost", "team"), ("KEY=VALUE", "'team'")),
        (("demo", "nope"), ("no 'nope' demo", "classic or genai")),
        (("demo", "genai", "--fast"), ("--fast is for the classic story",)),
    ],
)
def test_user_mistakes_print_one_line(
    tmp_path: Path, args: tuple[str, ...], words: tuple[str, ...]
) -> None:
    assert_one_line_error(cauce(tmp_path / "ws", *args, check=False), *words)


def test_corrupted_database_is_one_line(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    (home / ".cauce").mkdir(parents=True)
    (home / ".cauce" / "cauce.db").write_bytes(b"this is not a database" * 200)
    result = cauce(home, "runs", "list", check=False)
    assert_one_line_error(result, "corrupted", "cauce.db")


def test_bad_config_is_one_line(tmp_path: Path) -> None:
    home = tmp_path / "ws"
    home.mkdir()
    (home / "cauce.yaml").write_text("colour: blue\n")
    assert_one_line_error(cauce(home, "runs", "list", check=False), "unknown setting colour")
