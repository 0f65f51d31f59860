import json

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from gcahng.cli.main import cli
from gcahng.errors import DataError
from gcahng.viz.curves import plot_curves, read_metrics
from gcahng.viz.tsne import plot_tsne


def _write_metrics(run_dir, epochs=6):
    run_dir.mkdir(parents=True, exist_ok=True)
    lines = []
    for epoch in range(1, epochs + 1):
        record = {"epoch": epoch, "time_s": 10.0,
                  "loss": {"J_m": 1.0 / epoch, "J_gce": 2.0 / epoch, "J_div": 0.1}}
        if epoch % 2 == 0:
            record["eval"] = {"split": "val", "recall@1": 0.1 * epoch, "map@r": 0.05 * epoch}
        lines.append(json.dumps(record))
    (run_dir / "metrics.jsonl").write_text("\n".join(lines) + "\n")


def test_curves_have_a_panel_per_loss_term_and_one_for_evaluation(tmp_path):
    _write_metrics(tmp_path / "run")
    fig = plot_curves(read_metrics(tmp_path / "run"))
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == ["loss J_div", "loss J_gce", "loss J_m", "evaluation (val)"]
    assert all(ax.get_xlabel() == "epoch" and ax.get_ylabel() for ax in axes)
    recall = axes[-1].get_lines()[0]
    np.testing.assert_allclose(recall.get_xdata(), [2, 4, 6])
    np.testing.assert_allclose(recall.get_ydata(), [20, 40, 60])  # fractions shown as percent


def test_curves_command_writes_png(tmp_path):
    _write_metrics(tmp_path / "run")
    result = CliRunner().invoke(cli, ["plot", "curves", str(tmp_path / "run"), "--out", str(tmp_path / "c.png")])
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "c.png") as image:
        assert image.format == "PNG" and image.width > 600


def test_curves_never_overwrite_a_file_without_force(tmp_path):
    _write_metrics(tmp_path / "run")
    holiday = tmp_path / "holiday.png"
    holiday.write_bytes(b"my picture")
    for out, message in ((holiday, f"--out {holiday} exists; pass --force to replace it"),
                         (tmp_path / "c.xyz", "cannot write a figure as .xyz; end the name with one of .avif, ")):
        result = CliRunner().invoke(cli, ["plot", "curves", str(tmp_path / "run"), "--out", str(out)])
        assert result.exit_code != 0 and message in result.output and "Traceback" not in result.output
    assert holiday.read_bytes() == b"my picture" and not (tmp_path / "c.xyz").exists()
    result = CliRunner().invoke(cli, ["plot", "curves", str(tmp_path / "run"), "--out", str(holiday), "--force"])
    assert result.exit_code == 0, result.output
    with Image.open(holiday) as image:
        assert image.format == "PNG"
    result = CliRunner().invoke(cli, ["plot", "curves", str(tmp_path / "run"), "--out", str(tmp_path / "c.svg")])
    assert result.exit_code == 0 and (tmp_path / "c.svg").read_text().lstrip().startswith("<?xml")


def test_read_metrics_errors_name_file_and_line(tmp_path):
    with pytest.raises(DataError, match="metrics.jsonl does not exist"):
        read_metrics(tmp_path)
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 1, "loss": {}}\n{"epoch": 2, oops\n{"epoch": 3}\n')
    with pytest.raises(DataError, match=r"metrics.jsonl, line 2: not JSON"):
        read_metrics(tmp_path)
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 1, "loss": {}}\n{"epoch": 2, "lo')  # a run still writing
    assert [r["epoch"] for r in read_metrics(tmp_path)] == [1]
    (tmp_path / "metrics.jsonl").write_text('{"loss": {"J_m": 1}}\n')
    with pytest.raises(DataError, match="line 1: expected an object with an integer 'epoch'"):
        read_metrics(tmp_path)
    result = CliRunner().invoke(cli, ["plot", "curves", str(tmp_path), "--out", str(tmp_path / "c.png")])
    assert result.exit_code != 0 and "Error:" in result.output and "line 1" in result.output


def test_tsne_plot_gives_each_class_its_own_style():
    points = np.random.default_rng(0).standard_normal((60, 2))
    labels = np.repeat(np.arange(12), 5)
    fig = plot_tsne(points, labels, {0: "zero"})
    ax = fig.axes[0]
    styles = {(tuple(c.get_facecolor()[0]), c.get_paths()[0].vertices.tobytes()) for c in ax.collections}
    assert len(ax.collections) == 12 and len(styles) == 12
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[0] == "zero" and legend[1] == "class 1"
    assert ax.get_xlabel() and ax.get_ylabel() and "12 classes" in ax.get_title()


def test_tsne_command_maps_the_chosen_classes(tmp_path):
    import torch

    from gcahng.models.embedding import create_embedding_model

    torch.manual_seed(0)
    model = create_embedding_model("tiny_cnn", 8, pretrained=False, image_size=32)
    torch.save({"format": "gcahng-checkpoint", "version": 1, "model_spec": model.spec.to_dict(),
                "model": model.state_dict()}, tmp_path / "m.pt")
    out = tmp_path / "tsne.png"
    result = CliRunner().invoke(cli, ["plot", "tsne", str(tmp_path / "m.pt"), "digits", "--classes", "3",
                                      "--per-class", "12", "--workers", "0", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "(36 images, 3 classes)" in result.output
    with Image.open(out) as image:
        assert image.format == "PNG" and image.width > 800
