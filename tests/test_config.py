"""Settings: where the workspace is, which value wins, and what ``cauce init`` creates."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from cauce import workspace as workspace_module
from cauce.config import (
    CONFIG_FILE,
    SETTINGS,
    config_template,
    load_object,
    load_settings,
    read_config_file,
)
from cauce.errors import InvalidInput, NotSupported
from cauce.store import HEAD_REVISION, Store
from cauce.workspace import Workspace


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """project/cauce.yaml with an empty project/src/deep/ below it, and an unrelated other/."""
    (tmp_path / "project" / "src" / "deep").mkdir(parents=True)
    (tmp_path / "project" / CONFIG_FILE).write_text("experiment: from-yaml\n")
    (tmp_path / "other").mkdir()
    return tmp_path


# -- discovery ------------------------------------------------------------------------------


def test_cauce_home_wins_over_a_cauce_yaml_above(tree: Path) -> None:
    home = tree / "other"
    settings = load_settings(env={"CAUCE_HOME": str(home)}, cwd=tree / "project" / "src")
    assert settings.root == home.resolve()
    assert settings.config_file is None
    assert settings.experiment == "Default"
    assert settings.db_url == f"sqlite:///{home.resolve() / '.cauce' / 'cauce.db'}"


def test_cauce_home_reads_its_own_cauce_yaml(tree: Path) -> None:
    settings = load_settings(env={"CAUCE_HOME": str(tree / "project")}, cwd=tree / "other")
    assert settings.root == (tree / "project").resolve()
    assert settings.config_file == (tree / "project" / CONFIG_FILE).resolve()
    assert settings.experiment == "from-yaml"


def test_nearest_cauce_yaml_upward_is_the_root(tree: Path) -> None:
    settings = load_settings(env={}, cwd=tree / "project" / "src" / "deep")
    assert settings.root == (tree / "project").resolve()
    assert settings.config_file == (tree / "project" / CONFIG_FILE).resolve()
    assert settings.experiment == "from-yaml"

    # A nearer cauce.yaml shadows the one above it.
    (tree / "project" / "src" / CONFIG_FILE).write_text("experiment: nearer\n")
    nearer = load_settings(env={}, cwd=tree / "project" / "src" / "deep")
    assert nearer.root == (tree / "project" / "src").resolve()
    assert nearer.experiment == "nearer"


def test_without_cauce_yaml_the_current_folder_is_the_root(tree: Path) -> None:
    settings = load_settings(env={}, cwd=tree / "other")
    assert settings.root == (tree / "other").resolve()
    assert settings.config_file is None
    assert settings.state_dir == (tree / "other").resolve() / ".cauce"
    assert settings.artifacts == str((tree / "other").resolve() / ".cauce" / "artifacts")
    assert settings.sqlite_sync == "normal"
    assert settings.busy_timeout_ms == 60000


def test_current_workspace_uses_the_process_environment(
    tree: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for var in [v for v in os.environ if v.startswith("CAUCE_")]:
        monkeypatch.delenv(var)
    monkeypatch.chdir(tree / "project" / "src")
    workspace_module.reset()
    try:
        assert workspace_module.current().settings.root == (tree / "project").resolve()
        monkeypatch.setenv("CAUCE_HOME", str(tree / "other"))
        assert workspace_module.current().settings.root == (tree / "project").resolve()
        workspace_module.reset()  # the workspace is discovered once, until reset
        assert workspace_module.current().settings.root == (tree / "other").resolve()
    finally:
        workspace_module.reset()


# -- precedence -----------------------------------------------------------------------------


def test_environment_overrides_cauce_yaml(tree: Path) -> None:
    (tree / "project" / CONFIG_FILE).write_text(
        "experiment: from-yaml\nuser: yaml-user\nsqlite_sync: full\nbusy_timeout_ms: 5000\n"
        "artifacts: store/here\n"
    )
    from_yaml = load_settings(env={}, cwd=tree / "project")
    assert (from_yaml.experiment, from_yaml.user) == ("from-yaml", "yaml-user")
    assert (from_yaml.sqlite_sync, from_yaml.busy_timeout_ms) == ("full", 5000)
    # A relative artifact folder is relative to the workspace root, not the current folder.
    assert from_yaml.artifacts == str((tree / "project").resolve() / "store" / "here")

    env = {
        "CAUCE_EXPERIMENT": "from-env",
        "CAUCE_USER": "env-user",
        "CAUCE_SQLITE_SYNC": "normal",
        "CAUCE_BUSY_TIMEOUT_MS": "250",
        "CAUCE_ARTIFACTS": "s3://bucket/prefix",
        "CAUCE_DB_URL": "postgresql+psycopg://u@db/cauce",
    }
    settings = load_settings(env=env, cwd=tree / "project" / "src")
    assert settings.experiment == "from-env"
    assert settings.user == "env-user"
    assert settings.sqlite_sync == "normal"
    assert settings.busy_timeout_ms == 250
    assert settings.artifacts == "s3://bucket/prefix"
    assert settings.db_url == "postgresql+psycopg://u@db/cauce"


def test_empty_environment_variable_does_not_override(tree: Path) -> None:
    settings = load_settings(env={"CAUCE_EXPERIMENT": ""}, cwd=tree / "project")
    assert settings.experiment == "from-yaml"


def test_every_setting_has_a_cauce_variable_and_is_in_the_template() -> None:
    template = config_template()
    for setting in SETTINGS:
        assert setting.env == f"CAUCE_{setting.name.upper()}"
        assert setting.help
        if setting.name != "home":
            assert f"# {setting.name}:" in template
            assert setting.env in template


# -- bad configuration ----------------------------------------------------------------------


def test_unknown_key_in_cauce_yaml_is_named(tree: Path) -> None:
    (tree / "project" / CONFIG_FILE).write_text("experiment: x\ndb_ulr: sqlite:///typo.db\n")
    with pytest.raises(InvalidInput) as info:
        load_settings(env={}, cwd=tree / "project")
    assert "db_ulr" in info.value.message
    assert str(tree / "project" / CONFIG_FILE) in info.value.message
    assert info.value.hint is not None and "db_url" in info.value.hint


@pytest.mark.parametrize(
    "content",
    ["experiment: [unclosed\n", "- just\n- a list\n", "home: /elsewhere\n"],
    ids=["bad-yaml", "not-a-mapping", "home-in-file"],
)
def test_malformed_cauce_yaml_is_invalid_input(tree: Path, content: str) -> None:
    path = tree / "project" / CONFIG_FILE
    path.write_text(content)
    with pytest.raises(InvalidInput) as info:
        read_config_file(path)
    assert str(path) in info.value.message


@pytest.mark.parametrize("value", ["FULL", "Normal", "full"])
def test_sqlite_sync_accepts_normal_and_full(tree: Path, value: str) -> None:
    settings = load_settings(env={"CAUCE_SQLITE_SYNC": value}, cwd=tree / "other")
    assert settings.sqlite_sync == value.lower()


@pytest.mark.parametrize("value", ["off", "extra", "0", "fast"])
def test_sqlite_sync_rejects_other_values(tree: Path, value: str) -> None:
    with pytest.raises(InvalidInput) as info:
        load_settings(env={"CAUCE_SQLITE_SYNC": value}, cwd=tree / "other")
    assert "CAUCE_SQLITE_SYNC" in info.value.message
    assert value.lower() in info.value.message


def test_sqlite_sync_from_cauce_yaml_is_validated(tree: Path) -> None:
    (tree / "project" / CONFIG_FILE).write_text("sqlite_sync: off\n")  # YAML reads off as False
    with pytest.raises(InvalidInput) as info:
        load_settings(env={}, cwd=tree / "project")
    assert f"sqlite_sync in {tree / 'project' / CONFIG_FILE}" in info.value.message


def test_busy_timeout_must_be_an_integer(tree: Path) -> None:
    with pytest.raises(InvalidInput, match="CAUCE_BUSY_TIMEOUT_MS"):
        load_settings(env={"CAUCE_BUSY_TIMEOUT_MS": "soon"}, cwd=tree / "other")
    (tree / "project" / CONFIG_FILE).write_text("busy_timeout_ms: 1.5s\n")
    where = re.escape(f"busy_timeout_ms in {tree / 'project' / CONFIG_FILE}")
    with pytest.raises(InvalidInput, match=where):
        load_settings(env={}, cwd=tree / "project")


def test_action_settings_are_read_and_validated(tree: Path) -> None:
    settings = load_settings(env={}, cwd=tree / "other")
    assert (settings.action_lease_s, settings.action_workers) == (60.0, 4)
    env = {"CAUCE_ACTION_LEASE_S": "0.5", "CAUCE_ACTION_WORKERS": "8"}
    settings = load_settings(env=env, cwd=tree / "other")
    assert (settings.action_lease_s, settings.action_workers) == (0.5, 8)
    for name, value in [
        ("CAUCE_ACTION_LEASE_S", "soon"),
        ("CAUCE_ACTION_LEASE_S", "0"),
        ("CAUCE_ACTION_WORKERS", "2.5"),
        ("CAUCE_ACTION_WORKERS", "0"),
    ]:
        with pytest.raises(InvalidInput, match=name):
            load_settings(env={name: value}, cwd=tree / "other")


# -- cauce init -----------------------------------------------------------------------------


def test_init_creates_config_state_folder_and_migrated_database(
    workspace: Workspace, tmp_path: Path
) -> None:
    root = tmp_path / "new" / "project"
    created = workspace_module.init(root)
    try:
        assert (root / CONFIG_FILE).is_file()
        assert (root / ".cauce").is_dir()
        assert (root / ".cauce" / "artifacts").is_dir()
        assert (root / ".cauce" / "cauce.db").is_file()
        assert created.settings.root == root.resolve()
        assert created.settings.config_file == (root / CONFIG_FILE).resolve()
        # The generated cauce.yaml is itself a valid configuration.
        assert read_config_file(root / CONFIG_FILE) == {}
    finally:
        created.close()

    store = Store(f"sqlite:///{root / '.cauce' / 'cauce.db'}")
    try:
        assert store.current_revision() == HEAD_REVISION
    finally:
        store.close()
    # CAUCE_HOME of the calling environment points elsewhere and is left alone.
    assert not (workspace.settings.state_dir / "cauce.db").exists()


def test_init_twice_keeps_the_existing_config(workspace: Workspace, tmp_path: Path) -> None:
    root = tmp_path / "project"
    workspace_module.init(root).close()
    (root / CONFIG_FILE).write_text("experiment: mine\n")
    again = workspace_module.init(root)
    try:
        assert (root / CONFIG_FILE).read_text() == "experiment: mine\n"
        assert again.settings.experiment == "mine"
        assert again.store.current_revision() == HEAD_REVISION
    finally:
        again.close()


def test_init_where_a_server_is_named_writes_nothing(
    workspace: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fresh, named = tmp_path / "fresh", tmp_path / "named"
    named.mkdir()
    (named / CONFIG_FILE).write_text("server_url: http://cauce.internal:8080\n")
    with pytest.raises(NotSupported, match=re.escape("on the server http://cauce.internal:8080")):
        workspace_module.init(named)
    assert [p.name for p in named.iterdir()] == [CONFIG_FILE]
    monkeypatch.setenv("CAUCE_SERVER_URL", "http://cauce.internal:8080/w/team")
    with pytest.raises(NotSupported, match="w/team: there is no local one to create"):
        workspace_module.init(fresh)
    assert not fresh.exists()


def test_load_object_resolves_module_attribute_and_names_what_is_wrong() -> None:
    import json

    assert load_object("json:dumps") is json.dumps
    cases = {
        "json.dumps": "module:attribute",
        "no_such_module_xyz:f": "cannot import no_such_module_xyz",
        "json:no_such_function": "json has no 'no_such_function'",
        ":dumps": "module:attribute",
    }
    for target, message in cases.items():
        with pytest.raises(InvalidInput, match=re.escape(message)) as caught:
            load_object(target, what="redactor")
        assert caught.value.message.startswith(f"redactor {target!r}")
