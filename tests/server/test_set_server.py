"""``cauce.set_server``: the SDK works through a server from a call, as with CAUCE_SERVER_URL."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import cauce
from cauce import workspace as workspace_module
from cauce.errors import InvalidInput, NotSupported
from cauce.tracking.experiments import list_experiments
from cauce.workspace import Workspace
from remote import TestServer as Server
from remote import server_side


@pytest.fixture
def here(local_workspace: Workspace) -> Iterator[Workspace]:
    yield local_workspace
    workspace_module.reset()


def test_set_server_sends_every_call_to_the_server_and_none_comes_back(
    here: Workspace, cauce_server: Server
) -> None:
    url = cauce_server.new_workspace()
    remote = cauce.set_server(url)
    assert remote.remote and workspace_module.current() is remote
    with pytest.raises(NotSupported):
        remote.store  # noqa: B018 - a remote workspace has no store of its own
    with cauce.start_run(experiment="through-the-server") as run:
        cauce.log_metric("auc", 0.9)
    on_server = server_side(remote)
    assert [e.name for e in list_experiments(workspace=on_server)] == ["through-the-server"]
    assert cauce.get_run(run.run_id).data.metrics == {"auc": 0.9}

    local = cauce.set_server(None)
    assert not local.remote and local.settings.root == here.settings.root
    assert list_experiments() == []  # nothing was written here


def test_a_bad_server_url_is_refused_and_changes_nothing(here: Workspace) -> None:
    before = workspace_module.current()
    with pytest.raises(InvalidInput, match="http"):
        cauce.set_server("ftp://example")
    assert workspace_module.current() is before
