"""Checkpoints that are PyTorch files but not usable models: each command that reads one prints
one ``Error:`` line naming the file (and the field) and builds nothing from it."""
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from release_keys import release_state_dict

from gcahng.cli.main import cli
from gcahng.config import FIELD_NAMES, TrainConfig
from gcahng.errors import CheckpointError
from gcahng.formats.checkpoint import MAX_IMAGE_SIDE, load_training_checkpoint, read_checkpoint
from gcahng.models.embedding import create_embedding_model


def _payload(**changes) -> dict:
    torch.manual_seed(0)
    model = create_embedding_model("tiny_cnn", 8, pretrained=False, image_size=32)
    payload = {"format": "gcahng-checkpoint", "version": 1, "model_spec": model.spec.to_dict(),
               "model": model.state_dict(), "config": TrainConfig(dataset="digits").to_dict()}
    return {**payload, **changes}


def _save(path: Path, payload: dict) -> Path:
    torch.save(payload, path)
    return path


def _fails(args: list[str], *expected: str) -> str:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code != 0, result.output
    assert "Traceback" not in result.output and not isinstance(result.exception, MemoryError | RuntimeError)
    error = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(error) == 1, result.output
    for part in expected:
        assert part in error[0], error[0]
    return error[0]


@pytest.fixture()
def gallery(tmp_path: Path) -> Path:
    from PIL import Image

    folder = tmp_path / "gallery"
    folder.mkdir()
    for i in range(3):
        Image.new("RGB", (20, 20), (80 * i, 40, 200)).save(folder / f"{i}.png")
    return folder


def test_a_config_that_is_empty_or_misses_keys_is_named(tmp_path: Path) -> None:
    empty = _save(tmp_path / "empty_config.pt", _payload(config={}))
    _fails(["eval", empty], str(empty), "'config' lacks key(s) dataset")
    partial = TrainConfig().to_dict()
    del partial["seed"]
    partial_file = _save(tmp_path / "partial.pt", _payload(config=partial))
    _fails(["eval", partial_file], str(partial_file), "lacks key(s) seed")
    wrong = _save(tmp_path / "wrong.pt", _payload(config={**TrainConfig().to_dict(), "epochs": "many"}))
    _fails(["eval", wrong], str(wrong), "epochs")
    assert set(FIELD_NAMES) == set(TrainConfig().to_dict())  # what a run saves is what is required


def test_resume_refuses_a_checkpoint_whose_config_is_empty(tmp_path: Path) -> None:
    payload = _payload(config={}, generator={}, metric_loss={}, optimizers={}, schedulers={}, step={}, epoch=1,
                       best={"score": None, "epoch": None})
    with pytest.raises(CheckpointError, match=r"last\.pt: 'config' lacks key\(s\)"):
        load_training_checkpoint(_save(tmp_path / "last.pt", payload))


def test_an_embedding_size_of_ten_to_the_13_is_refused_before_building_the_model(tmp_path: Path,
                                                                                gallery: Path) -> None:
    spec = {**_payload()["model_spec"], "embedding_dim": 10**13}
    huge = _save(tmp_path / "huge.pt", _payload(model_spec=spec))
    for args in (["eval", huge, "digits"], ["index", huge, "--images", gallery, "--out", tmp_path / "index"]):
        _fails(args, str(huge), "model_spec.embedding_dim is 10000000000000", "'model.fc.1.weight' has 8 rows")
    assert not (tmp_path / "index").exists()
    big_crop = _save(tmp_path / "crop.pt", _payload(model_spec={**_payload()["model_spec"], "image_size": 10**9}))
    with pytest.raises(CheckpointError, match=rf"crop\.pt: model_spec\.image_size is 1000000000, more than the "
                                              rf"{MAX_IMAGE_SIDE} pixels"):
        read_checkpoint(big_crop)
    headless = _payload()
    headless["model"] = {k: v for k, v in headless["model"].items() if not k.startswith("fc.1.")}
    with pytest.raises(CheckpointError, match=r"headless\.pt lacks the embedding head's weight 'model\.fc\.1\.weight'"):
        read_checkpoint(_save(tmp_path / "headless.pt", headless))
    with pytest.raises(CheckpointError, match=r"bad_spec\.pt: model_spec: .*embedding_dim must be a positive integer"):
        read_checkpoint(_save(tmp_path / "bad_spec.pt", _payload(model_spec={**spec, "embedding_dim": -1})))


def test_a_released_file_without_its_head_is_named(tmp_path: Path) -> None:
    state = {k: v for k, v in release_state_dict("googlenet_K2.tsv").items() if ".fc." not in k}
    path = _save(tmp_path / "release_no_head.pth", state)
    _fails(["eval", path, "digits"], str(path), "no head Linear (feature_extractor.fc.1.weight)")


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_by_eval_and_index_naming_the_weight(tmp_path: Path, gallery: Path,
                                                                            value: float) -> None:
    payload = _payload()
    payload["model"]["fc.1.weight"][3, 2] = value
    broken = _save(tmp_path / "broken.pt", payload)
    message = "weight 'model.fc.1.weight' holds NaN or infinite values"
    _fails(["eval", broken, "digits"], str(broken), message)
    _fails(["index", broken, "--images", gallery, "--out", tmp_path / "index"], str(broken), message)
    assert not (tmp_path / "index").exists()
    release = release_state_dict("googlenet_K2.tsv")
    release["feature_extractor.fc.1.weight"][0, 0] = value
    released = _save(tmp_path / "release.pth", release)
    _fails(["eval", released, "digits"], str(released), "weight 'feature_extractor.fc.1.weight' holds NaN")


def test_a_config_saved_before_the_later_keys_loads_with_its_old_behaviour(tmp_path: Path) -> None:
    from gcahng.formats.checkpoint import KEYS_ADDED_LATER, saved_config

    old = TrainConfig(dataset="digits").to_dict()
    for key in KEYS_ADDED_LATER:
        del old[key]
    config = saved_config(_payload(config=old), tmp_path / "old.pt")
    assert config["edge_dropout"] == "independent"  # every ordered edge, as runs computed them then
    assert {k: config[k] for k in old} == old
    assert set(KEYS_ADDED_LATER) <= set(FIELD_NAMES)


def test_a_checkpoint_damaged_after_it_was_written_is_named(tmp_path: Path, gallery: Path) -> None:
    payload = _payload()
    path = _save(tmp_path / "m.pt", payload)
    raw = bytearray(path.read_bytes())
    weights = next(t for t in payload["model"].values() if t.numel() >= 64).numpy().tobytes()
    at = raw.find(weights[:64])
    assert at > 0
    raw[at + 5] ^= 0x10  # one bit of one weight: the tensor still loads, to another value
    path.write_bytes(bytes(raw))
    _fails(["index", path, "--images", gallery, "--out", tmp_path / "idx", "--workers", "0"],
           f"checkpoint {path} is damaged: its entry ", "fails its CRC-32 check")
    with pytest.raises(CheckpointError, match="fails its CRC-32 check"):
        read_checkpoint(path)
