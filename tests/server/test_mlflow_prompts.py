"""MLflow's prompt registry against ``cauce server``: the real client's ``register_prompt``,
``load_prompt``, aliases and searches read and write Cauce's prompts, and back."""

from __future__ import annotations

import time
from typing import Any

import pytest

from cauce.genai import prompts
from cauce.workspace import Workspace
from mlflow_client import error_code

pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::FutureWarning"),
    pytest.mark.filterwarnings("ignore::UserWarning"),
]


def test_a_prompt_registered_from_mlflow_is_a_cauce_prompt(
    mlflow: Any, client: Any, any_workspace: Workspace
) -> None:
    experiment = mlflow.set_experiment("greeting")
    first = mlflow.genai.register_prompt(
        name="greet",
        template="Hello {{ name }}, welcome to {{place}}.",
        commit_message="first cut",
        tags={"task": "greeting"},
    )
    assert (first.name, first.version) == ("greet", 1)

    version = prompts.load("prompts:/greet/1")
    assert version.messages == [
        {"role": "user", "content": "Hello {{ name }}, welcome to {{place}}."}
    ]
    assert version.commit_message == "first cut"
    assert set(version.variables) == {"name", "place"}
    assert version.tags == {"task": "greeting"}  # MLflow's type and text are the content
    assert prompts.get_prompt("greet").tags["task"] == "greeting"
    # The client links the prompt to its active experiment in a thread of its own.
    deadline = time.monotonic() + 10
    while "_mlflow_experiment_ids" not in prompts.get_prompt("greet").tags:
        assert time.monotonic() < deadline, "the prompt was not linked to its experiment"
        time.sleep(0.05)
    linked = prompts.get_prompt("greet").tags["_mlflow_experiment_ids"]
    assert linked == f",{experiment.experiment_id},"
    assert version.render(name="Ana", place="Cauce") == [
        {"role": "user", "content": "Hello Ana, welcome to Cauce."}
    ]

    chat = [
        {"role": "system", "content": "You greet people in {{ language }}."},
        {"role": "user", "content": "Greet {{ name }}."},
    ]
    config = {"model_name": "gpt-4o-mini", "temperature": 0.2, "top_k": 5}
    second = mlflow.genai.register_prompt(
        name="greet", template=chat, commit_message="chat", model_config=config
    )
    assert second.version == 2
    stored = prompts.get_version("greet", 2)
    assert stored.messages == chat
    # What Cauce's model parameters hold is theirs; top_k stays in MLflow's own tag.
    assert stored.model_parameters == {"model": "gpt-4o-mini", "temperature": 0.2}
    assert "_mlflow_prompt_model_config" in stored.tags

    loaded = mlflow.genai.load_prompt("prompts:/greet/2")
    assert loaded.template == chat and loaded.model_config == config
    assert loaded.format(language="Spanish", name="Ana")[1] == {
        "role": "user",
        "content": "Greet Ana.",
    }
    text = mlflow.genai.load_prompt("prompts:/greet/1")
    assert text.template == "Hello {{ name }}, welcome to {{place}}."
    assert text.commit_message == "first cut" and text.tags["task"] == "greeting"

    # Aliases are labels: moved with history, read by both sides.
    mlflow.genai.set_prompt_alias("greet", alias="production", version=1)
    assert prompts.version_by_label("greet", "production").version == 1
    assert [h["to_version"] for h in prompts.label_history("greet", "production")] == [1]
    assert mlflow.genai.load_prompt("prompts:/greet@production").version == 1
    assert mlflow.genai.load_prompt("prompts:/greet@latest", cache_ttl_seconds=0).version == 2
    prompts.set_label("greet", "production", 2, reason="chat reads better")
    assert mlflow.genai.load_prompt("prompts:/greet@production", cache_ttl_seconds=0).version == 2
    mlflow.genai.delete_prompt_alias("greet", alias="production")
    assert "production" not in prompts.get_prompt("greet").labels

    # Prompts are found as prompts, never as models.
    assert [p.name for p in mlflow.genai.search_prompts()] == ["greet"]
    assert [p.name for p in mlflow.genai.search_prompts(filter_string="name LIKE 'gr%'")] == [
        "greet"
    ]
    assert mlflow.search_registered_models() == []
    assert [v.version for v in client.search_prompt_versions("greet")] == [2, 1]

    client.set_prompt_version_tag("greet", 1, "reviewed", "yes")
    assert prompts.get_version("greet", 1).tags["reviewed"] == "yes"
    client.delete_prompt_version_tag("greet", 1, "reviewed")
    assert "reviewed" not in prompts.get_version("greet", 1).tags


def test_a_cauce_prompt_loads_in_mlflow(mlflow: Any, any_workspace: Workspace) -> None:
    prompts.register(
        "answer",
        [
            {"role": "system", "content": "Answer from the context only."},
            {"role": "user", "content": "Context: {{ context }}\nQuestion: {{ question }}"},
        ],
        model_parameters={"model": "smollm2", "temperature": 0.1, "stop": ["\n\n"], "seed": 7},
        commit_message="grounded",
        labels=["production"],
    )
    prompts.register("short", "Say {{ word }}.")

    loaded = mlflow.genai.load_prompt("prompts:/answer@production")
    assert loaded.version == 1 and loaded.commit_message == "grounded"
    assert loaded.template[0] == {"role": "system", "content": "Answer from the context only."}
    assert loaded.model_config == {
        "model_name": "smollm2",
        "temperature": 0.1,
        "stop_sequences": ["\n\n"],
        "extra_params": {"seed": 7},
    }
    assert loaded.format(context="Cauce is local-first.", question="What is Cauce?")[1][
        "content"
    ] == ("Context: Cauce is local-first.\nQuestion: What is Cauce?")
    short = mlflow.genai.load_prompt("short")
    assert short.template == "Say {{ word }}." and short.format(word="hi") == "Say hi."
    assert sorted(p.name for p in mlflow.genai.search_prompts()) == ["answer", "short"]


def test_what_mlflow_cannot_do_to_a_prompt_fails_cleanly(
    mlflow: Any, client: Any, any_workspace: Workspace
) -> None:
    # A template Cauce cannot compile is refused; the prompt MLflow created for it is gone.
    with pytest.raises(mlflow.MlflowException) as bad:
        mlflow.genai.register_prompt(name="broken", template="Hello {{ name")
    assert error_code(bad) == "INVALID_PARAMETER_VALUE"
    assert [p.name for p in prompts.list_prompts()] == []

    mlflow.genai.register_prompt(name="greet", template="Hello {{ name }}")
    # The same template again is the same version (Cauce keeps one per content)...
    assert mlflow.genai.register_prompt(name="greet", template="Hello {{ name }}").version == 1
    # ...so other MLflow settings for it, which would change what that version means, are refused.
    with pytest.raises(mlflow.MlflowException, match="one version per content") as other:
        mlflow.genai.register_prompt(
            name="greet", template="Hello {{ name }}", model_config={"provider": "openai"}
        )
    assert error_code(other) == "INVALID_PARAMETER_VALUE"
    assert prompts.get_version("greet", 1).tags == {}
    with pytest.raises(mlflow.MlflowException) as kept:
        client.delete_prompt_version("greet", "1")
    assert error_code(kept) == "NOT_IMPLEMENTED"
    assert prompts.get_version("greet", 1).messages[0]["content"] == "Hello {{ name }}"
    with pytest.raises(mlflow.MlflowException) as missing:
        mlflow.genai.load_prompt("prompts:/nothing/1")
    assert error_code(missing) == "RESOURCE_DOES_NOT_EXIST"
    assert mlflow.genai.load_prompt("prompts:/nothing/1", allow_missing=True) is None

    # One name is a model or a prompt, as in MLflow.
    mlflow.MlflowClient().create_registered_model("churn")
    with pytest.raises(mlflow.MlflowException, match="same name"):
        mlflow.genai.register_prompt(name="churn", template="Hi")
    with pytest.raises(mlflow.MlflowException) as clash:
        client.create_registered_model("greet")
    assert error_code(clash) == "RESOURCE_ALREADY_EXISTS"
