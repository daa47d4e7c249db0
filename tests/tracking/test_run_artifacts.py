"""Run artifacts end to end: logged, listed and downloaded, on a local folder and on S3 (moto).

The S3 variant configures the workspace the way a user would: ``CAUCE_ARTIFACTS`` names the
bucket, ``CAUCE_S3_ENDPOINT_URL`` the server, and the credentials come from ``AWS_*`` variables.
"""

from __future__ import annotations

import functools
import hashlib
import json
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cauce.errors import IntegrityError, InvalidInput, NotFound
from cauce.tracking import fluent
from cauce.tracking import runs as runs_module
from cauce.tracking.artifacts import (
    ArtifactEntry,
    check_artifact_path,
    download_artifacts,
    list_artifacts,
    log_artifact,
    log_artifacts,
    log_dict,
    log_figure,
    log_image,
    log_table,
    log_text,
)
from cauce.tracking.environment import SourceInfo
from cauce.workspace import Workspace


@pytest.fixture(autouse=True)
def fixed_source(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs record the code version; keep git (and this repository) out of these tests."""
    fixed = SourceInfo(None, None, "tests", platform.python_version(), "0" * 64)
    monkeypatch.setattr(runs_module, "source_info", lambda: fixed)


@pytest.fixture
def run_id(artifacts_ws: Workspace) -> str:
    return runs_module.create_run("artifacts", workspace=artifacts_ws).run_id


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A folder with nested files::

    out/metrics.json
    out/model/weights.bin
    out/model/config/params.yaml
    """
    root = tmp_path / "out"
    (root / "model" / "config").mkdir(parents=True)
    (root / "metrics.json").write_text('{"auc": 0.9}')
    (root / "model" / "weights.bin").write_bytes(b"\x00\x01" * 1000)
    (root / "model" / "config" / "params.yaml").write_text("depth: 3\n")
    return root


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def files_under(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


# -- logging and listing ----------------------------------------------------------------------


def test_log_artifact_and_list(artifacts_ws: Workspace, run_id: str, tmp_path: Path) -> None:
    report = tmp_path / "report.txt"
    report.write_text("all good")

    assert log_artifact(run_id, report, workspace=artifacts_ws) == "report.txt"
    assert (
        log_artifact(run_id, report, "reports/daily", workspace=artifacts_ws)
        == "reports/daily/report.txt"
    )

    entries = list_artifacts(run_id, workspace=artifacts_ws)
    assert entries == [
        ArtifactEntry("report.txt", sha(b"all good"), 8, "text/plain"),
        ArtifactEntry("reports/daily/report.txt", sha(b"all good"), 8, "text/plain"),
    ]
    # Two paths, one stored blob.
    assert artifacts_ws.artifacts.read_bytes(sha(b"all good")) == b"all good"


def test_log_artifacts_keeps_the_nested_layout(
    artifacts_ws: Workspace, run_id: str, tree: Path
) -> None:
    paths = log_artifacts(run_id, tree, "outputs", workspace=artifacts_ws)
    expected = [
        "outputs/metrics.json",
        "outputs/model/config/params.yaml",
        "outputs/model/weights.bin",
    ]
    assert paths == expected
    assert [e.path for e in list_artifacts(run_id, workspace=artifacts_ws)] == expected

    model = list_artifacts(run_id, "outputs/model", workspace=artifacts_ws)
    assert [e.path for e in model] == expected[1:]
    assert [
        e.path for e in list_artifacts(run_id, "outputs/model/", workspace=artifacts_ws)
    ] == expected[1:]
    assert (
        list_artifacts(run_id, "outputs/mod", workspace=artifacts_ws) == []
    )  # not a prefix of a name
    one = list_artifacts(run_id, "outputs/metrics.json", workspace=artifacts_ws)
    assert [e.path for e in one] == ["outputs/metrics.json"]
    assert one[0].media_type == "application/json"
    assert [e.path for e in list_artifacts(run_id, ".", workspace=artifacts_ws)] == expected


def test_log_artifacts_at_the_root(artifacts_ws: Workspace, run_id: str, tree: Path) -> None:
    paths = log_artifacts(run_id, tree, workspace=artifacts_ws)
    assert paths == ["metrics.json", "model/config/params.yaml", "model/weights.bin"]


def test_fluent_api_logs_to_the_active_run(artifacts_ws: Workspace, tmp_path: Path) -> None:
    note = tmp_path / "note.md"
    note.write_text("# hi")
    with fluent.start_run(experiment="artifacts") as run:
        assert fluent.log_artifact(note, "docs") == "docs/note.md"
    assert [e.path for e in list_artifacts(run.run_id, workspace=artifacts_ws)] == ["docs/note.md"]


def test_text_dictionaries_and_tables_are_logged_as_files(
    artifacts_ws: Workspace, tmp_path: Path
) -> None:
    import pandas as pd
    import yaml

    config = {"model": {"C": 0.5, "penalty": "l2"}, "features": ["age", "charges"], "note": "ñ"}
    frame = pd.DataFrame({"id": [1, 2, 3], "score": [0.25, 0.5, 0.75], "label": ["a", "b", "c"]})
    with fluent.start_run(experiment="artifacts") as run:
        paths = [
            fluent.log_text("# Summary\nAUC 0.91\n", "notes/summary.md"),
            fluent.log_dict(config, "config.json"),
            fluent.log_dict(config, "config/train.yaml"),
            fluent.log_table(frame, "eval/predictions.parquet"),
            fluent.log_table(frame.to_dict("list"), "eval/predictions.csv"),
            fluent.log_table(frame, "eval/predictions.json"),
        ]
    assert paths == [
        "notes/summary.md", "config.json", "config/train.yaml", "eval/predictions.parquet",
        "eval/predictions.csv", "eval/predictions.json",
    ]  # fmt: skip
    listed = {e.path: e.media_type for e in list_artifacts(run.run_id, workspace=artifacts_ws)}
    assert listed == {
        "notes/summary.md": "text/markdown",
        "config.json": "application/json",
        "config/train.yaml": "application/yaml",
        "eval/predictions.parquet": "application/vnd.apache.parquet",
        "eval/predictions.csv": "text/csv",
        "eval/predictions.json": "application/json",
    }
    out = download_artifacts(run.run_id, ".", tmp_path / "dl", workspace=artifacts_ws)
    assert (out / "notes/summary.md").read_text() == "# Summary\nAUC 0.91\n"
    assert json.loads((out / "config.json").read_text(encoding="utf-8")) == config
    assert yaml.safe_load((out / "config/train.yaml").read_text(encoding="utf-8")) == config
    pd.testing.assert_frame_equal(pd.read_parquet(out / "eval/predictions.parquet"), frame)
    pd.testing.assert_frame_equal(pd.read_csv(out / "eval/predictions.csv"), frame)
    split = json.loads((out / "eval/predictions.json").read_text())
    assert split == {"columns": ["id", "score", "label"], "data": frame.values.tolist()}


def refused_naming(
    ws: Workspace, run_id: str, field: str, call: Callable[..., object], *args: object
) -> None:
    """``call(run_id, *args)`` is refused with InvalidInput naming ``field``."""
    with pytest.raises(InvalidInput) as caught:
        call(run_id, *args, workspace=ws)
    assert caught.value.details["field"] == field, caught.value


def test_unwritable_text_dictionaries_and_tables_are_refused_naming_the_field(
    artifacts_ws: Workspace, run_id: str
) -> None:
    import pandas as pd

    refused = functools.partial(refused_naming, artifacts_ws, run_id)

    refused("text", log_text, b"bytes", "a.txt")
    refused("dictionary", log_dict, [("a", 1)], "a.json")
    refused("dictionary", log_dict, {"when": {1, 2}}, "a.json")  # a set is not JSON
    refused("dictionary", log_dict, {"obj": object()}, "a.yaml")
    refused("artifact_file", log_table, pd.DataFrame({"a": [1]}), "table.xlsx")
    refused("data", log_table, {"a": [1, 2], "b": [1]}, "table.csv")
    refused("data", log_table, [[1, 2]], "table.csv")
    refused("artifact_file", log_text, "x", ".")
    with pytest.raises(InvalidInput, match="inside the run"):
        log_text(run_id, "x", "../escape.txt", workspace=artifacts_ws)
    assert list_artifacts(run_id, workspace=artifacts_ws) == []


def test_images_and_figures_are_logged_as_pictures(artifacts_ws: Workspace, tmp_path: Path) -> None:
    import numpy as np
    from matplotlib.figure import Figure
    from PIL import Image

    rgb = np.arange(8 * 6 * 3, dtype=np.uint8).reshape(8, 6, 3)
    grey = np.linspace(0.0, 1.0, 20).reshape(4, 5)
    mask = np.eye(3, dtype=bool)
    rgba = Image.new("RGBA", (4, 2), (255, 0, 0, 128))
    figure = Figure()
    figure.add_subplot().plot([0, 0.5, 1], [0, 0.8, 1])
    with fluent.start_run(experiment="artifacts") as run:
        fluent.log_image(rgb, "images/rgb.png")
        fluent.log_image(grey[:, :, np.newaxis], "images/grey.png")
        fluent.log_image(grey, "images/grey.jpg")
        fluent.log_image(mask, "images/mask.png")
        fluent.log_image(rgba, "images/rgba.png")
        fluent.log_figure(figure, "plots/roc.png")
        fluent.log_figure(figure, "plots/roc.svg")
    listed = {e.path: e.media_type for e in list_artifacts(run.run_id, workspace=artifacts_ws)}
    assert listed["images/grey.jpg"] == "image/jpeg" and listed["plots/roc.svg"] == "image/svg+xml"
    out = download_artifacts(run.run_id, ".", tmp_path / "dl", workspace=artifacts_ws)

    def opened(path: str) -> Any:
        with Image.open(out / path) as picture:
            return picture.copy()

    assert (np.asarray(opened("images/rgb.png")) == rgb).all()
    assert (np.asarray(opened("images/grey.png")) == np.round(grey * 255)).all()
    assert opened("images/grey.jpg").size == (5, 4)  # width x height, lossy
    assert (np.asarray(opened("images/mask.png")) == mask * 255).all()
    assert opened("images/rgba.png").getpixel((0, 0)) == (255, 0, 0, 128)
    drawn = opened("plots/roc.png")
    assert drawn.size == (640, 480)  # matplotlib's default 6.4 x 4.8 inches at 100 dpi
    assert b"<svg" in (out / "plots/roc.svg").read_bytes()


def test_unwritable_images_and_figures_are_refused_naming_the_field(
    artifacts_ws: Workspace, run_id: str
) -> None:
    import numpy as np

    refused = functools.partial(refused_naming, artifacts_ws, run_id)

    refused("image", log_image, np.zeros(4), "a.png")  # a row, not an image
    refused("image", log_image, np.zeros((2, 2, 2)), "a.png")  # two channels
    refused("image", log_image, np.full((2, 2), 300), "a.png")
    refused("image", log_image, np.full((2, 2), 1.5), "a.png")
    refused("image", log_image, np.array([[0.5, np.nan]]), "a.png")
    refused("image", log_image, np.array([["a", "b"]]), "a.png")
    refused("artifact_file", log_image, np.zeros((2, 2)), "a.gif")
    refused("artifact_file", log_image, np.zeros((2, 2, 4)), "a.jpg")  # no alpha in a JPEG
    refused("figure", log_figure, "not a figure", "a.png")
    refused("artifact_file", log_figure, object(), "a.gif")
    assert list_artifacts(run_id, workspace=artifacts_ws) == []


def test_relogging_a_path_replaces_its_content(
    artifacts_ws: Workspace, run_id: str, tmp_path: Path
) -> None:
    file = tmp_path / "model.bin"
    file.write_bytes(b"version 1")
    log_artifact(run_id, file, workspace=artifacts_ws)
    file.write_bytes(b"version 2, longer")
    log_artifact(run_id, file, workspace=artifacts_ws)

    [entry] = list_artifacts(run_id, workspace=artifacts_ws)
    assert (entry.path, entry.sha256, entry.size) == ("model.bin", sha(b"version 2, longer"), 17)
    out = download_artifacts(
        run_id, "model.bin", tmp_path / "dl" / "model.bin", workspace=artifacts_ws
    )
    assert out.read_bytes() == b"version 2, longer"


def test_runs_do_not_see_each_other(artifacts_ws: Workspace, run_id: str, tmp_path: Path) -> None:
    other = runs_module.create_run("artifacts", workspace=artifacts_ws).run_id
    file = tmp_path / "a.txt"
    file.write_text("a")
    log_artifact(run_id, file, workspace=artifacts_ws)
    assert list_artifacts(other, workspace=artifacts_ws) == []
    with pytest.raises(NotFound):
        download_artifacts(other, "a.txt", tmp_path / "dl", workspace=artifacts_ws)


# -- downloading ------------------------------------------------------------------------------


def test_download_one_file(
    artifacts_ws: Workspace, run_id: str, tree: Path, tmp_path: Path
) -> None:
    log_artifacts(run_id, tree, workspace=artifacts_ws)
    weights = (tree / "model" / "weights.bin").read_bytes()

    # To a path that does not exist yet: that is the file.
    target = tmp_path / "dl" / "w.bin"
    assert download_artifacts(run_id, "model/weights.bin", target, workspace=artifacts_ws) == target
    assert target.read_bytes() == weights

    # Into an existing folder: the file keeps its name.
    folder = tmp_path / "into"
    folder.mkdir()
    out = download_artifacts(run_id, "model/weights.bin", folder, workspace=artifacts_ws)
    assert out == folder / "weights.bin"
    assert files_under(folder) == {"weights.bin": weights}


def test_download_a_folder(
    artifacts_ws: Workspace, run_id: str, tree: Path, tmp_path: Path
) -> None:
    log_artifacts(run_id, tree, "outputs", workspace=artifacts_ws)

    dst = tmp_path / "dl"
    assert download_artifacts(run_id, "outputs/model", dst, workspace=artifacts_ws) == dst
    assert files_under(dst) == {
        "config/params.yaml": b"depth: 3\n",
        "weights.bin": b"\x00\x01" * 1000,
    }
    assert not any(p.name.startswith(".") for p in dst.rglob("*"))  # no temporary files

    everything = tmp_path / "all"
    download_artifacts(run_id, "outputs", everything, workspace=artifacts_ws)
    assert files_under(everything) == files_under(tree)


def test_download_the_whole_run(
    artifacts_ws: Workspace, run_id: str, tree: Path, tmp_path: Path
) -> None:
    log_artifacts(run_id, tree, "outputs", workspace=artifacts_ws)
    dst = tmp_path / "dl"
    assert download_artifacts(run_id, ".", dst, workspace=artifacts_ws) == dst
    assert files_under(dst / "outputs") == files_under(tree)


def test_download_of_a_missing_path_is_not_found(
    artifacts_ws: Workspace, run_id: str, tree: Path, tmp_path: Path
) -> None:
    log_artifacts(run_id, tree, workspace=artifacts_ws)
    for missing in ["nope.txt", "mod", "model/weights"]:
        with pytest.raises(NotFound, match="has no artifact"):
            download_artifacts(run_id, missing, tmp_path / "dl", workspace=artifacts_ws)
    assert not (tmp_path / "dl").exists()


def test_tampered_artifact_fails_the_download(
    artifacts_ws: Workspace,
    run_id: str,
    tmp_path: Path,
    overwrite_blob: Callable[[str, bytes], None],
) -> None:
    file = tmp_path / "data.csv"
    file.write_text("a,b\n1,2\n")
    log_artifact(run_id, file, workspace=artifacts_ws)
    digest = sha(b"a,b\n1,2\n")
    overwrite_blob(digest, b"a,b\n6,6\n")

    dst = tmp_path / "dl"
    with pytest.raises(IntegrityError, match=digest):
        download_artifacts(run_id, "data.csv", dst / "data.csv", workspace=artifacts_ws)
    assert list(dst.iterdir()) == []


# -- validation -------------------------------------------------------------------------------


BAD_PATHS = ["/etc/passwd", "..", "../x", "a/../../x", "..\\x", "//server/share", "", "   "]


@pytest.mark.parametrize("bad", BAD_PATHS)
def test_paths_outside_the_run_are_rejected(bad: str) -> None:
    with pytest.raises(InvalidInput):
        check_artifact_path(bad)


@pytest.mark.parametrize("good", ["a", "a/b.txt", "./a", "a//b", "a/./b", "a/../b", "a\\b"])
def test_relative_paths_are_normalised(good: str) -> None:
    normal = check_artifact_path(good)
    assert not normal.startswith(("/", ".."))
    assert "\\" not in normal and "//" not in normal


def test_bad_artifact_paths_are_invalid_input(
    artifacts_ws: Workspace, run_id: str, tree: Path, tmp_path: Path
) -> None:
    file = tree / "metrics.json"
    for bad in ["/abs", "/", "..", "../up", "a/../..", "..\\up"]:
        with pytest.raises(InvalidInput, match="inside the run"):
            log_artifact(run_id, file, bad, workspace=artifacts_ws)
        with pytest.raises(InvalidInput, match="inside the run"):
            log_artifacts(run_id, tree, bad, workspace=artifacts_ws)
        with pytest.raises(InvalidInput, match="inside the run"):
            list_artifacts(run_id, bad, workspace=artifacts_ws)
        with pytest.raises(InvalidInput, match="inside the run"):
            download_artifacts(run_id, bad, tmp_path / "dl", workspace=artifacts_ws)
    assert list_artifacts(run_id, workspace=artifacts_ws) == []
    assert not (tmp_path / "dl").exists()


def test_missing_local_sources_are_not_found(
    artifacts_ws: Workspace, run_id: str, tmp_path: Path
) -> None:
    with pytest.raises(NotFound, match="no such file"):
        log_artifact(run_id, tmp_path / "absent.txt", workspace=artifacts_ws)
    with pytest.raises(NotFound, match="no such folder"):
        log_artifacts(run_id, tmp_path / "absent", workspace=artifacts_ws)
    with pytest.raises(NotFound, match="no such file"):
        log_artifact(run_id, tmp_path, workspace=artifacts_ws)  # a folder is not a file


def test_unknown_run_is_not_found(artifacts_ws: Workspace, tree: Path, tmp_path: Path) -> None:
    ghost = "0" * 32
    with pytest.raises(NotFound, match="does not exist"):
        log_artifact(ghost, tree / "metrics.json", workspace=artifacts_ws)
    with pytest.raises(NotFound, match="does not exist"):
        log_artifacts(ghost, tree, workspace=artifacts_ws)
    with pytest.raises(NotFound, match="does not exist"):
        list_artifacts(ghost, workspace=artifacts_ws)
    with pytest.raises(NotFound, match="does not exist"):
        download_artifacts(ghost, "metrics.json", tmp_path / "dl", workspace=artifacts_ws)


def test_a_stored_path_that_escapes_is_refused_before_any_file_is_written(
    artifacts_ws: Workspace, run_id: str, tmp_path: Path
) -> None:
    """A store written by something else (an old version, a hand edit) holds a path with '..':
    downloading the run refuses it instead of writing outside the destination."""
    from sqlalchemy import update

    from cauce.store.schema import run_artifacts
    from remote import server_side

    file = tmp_path / "a.txt"
    file.write_text("a")
    log_artifact(run_id, file, workspace=artifacts_ws)
    with server_side(artifacts_ws).store.write() as conn:
        conn.execute(update(run_artifacts).values(path="../../escaped.txt"))
    dst = tmp_path / "deep" / "dl"
    with pytest.raises(InvalidInput, match="must stay inside the run"):
        download_artifacts(run_id, ".", dst, workspace=artifacts_ws)
    assert not (tmp_path / "escaped.txt").exists()
    assert not dst.exists() or list(dst.iterdir()) == []
