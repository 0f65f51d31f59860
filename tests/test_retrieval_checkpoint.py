import pytest
import torch

from gcahng.errors import CheckpointError
from gcahng.formats.checkpoint import checkpoint_fingerprint, read_checkpoint

SPEC = {"backbone": "tiny_cnn", "embedding_dim": 8, "image_size": 32}


def _state(seed=0):
    gen = torch.Generator().manual_seed(seed)
    return {"fc.1.weight": torch.randn(8, 4, generator=gen), "fc.1.bias": torch.randn(8, generator=gen),
            "bn.num_batches_tracked": torch.tensor(3)}


def _save(path, **extra):
    payload = {"format": "gcahng-checkpoint", "version": 1, "model_spec": SPEC, "model": _state(), **extra}
    torch.save(payload, path)
    return path


def test_fingerprint_depends_on_weights_and_spec_not_on_order_or_file(tmp_path):
    state = _state()
    reordered = dict(reversed(list(state.items())))
    assert checkpoint_fingerprint(SPEC, state) == checkpoint_fingerprint(SPEC, reordered)
    changed = {**state, "fc.1.bias": state["fc.1.bias"].clone()}
    changed["fc.1.bias"][0] += 1e-3
    assert checkpoint_fingerprint(SPEC, changed) != checkpoint_fingerprint(SPEC, state)
    assert checkpoint_fingerprint({**SPEC, "embedding_dim": 9}, state) != checkpoint_fingerprint(SPEC, state)
    as_double = {**state, "fc.1.bias": state["fc.1.bias"].double()}
    assert checkpoint_fingerprint(SPEC, as_double) != checkpoint_fingerprint(SPEC, state)
    # the same weights saved next to an optimiser state: same model, same fingerprint
    a = read_checkpoint(_save(tmp_path / "a.pt"))
    b = read_checkpoint(_save(tmp_path / "b.pt", optimizer={"lr": 0.1}, epoch=3))
    assert a.fingerprint == b.fingerprint == checkpoint_fingerprint(SPEC, state)
    assert a.model_spec == SPEC and set(a.state_dict) == set(state)


def test_read_checkpoint_errors_name_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="checkpoint not found: .*missing.pt"):
        read_checkpoint(tmp_path / "missing.pt")
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(CheckpointError, match=r"text\.pt is not a PyTorch checkpoint file"):
        read_checkpoint(tmp_path / "text.pt")
    torch.save({"model": _state()}, tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="plain.pt is not a gcahng checkpoint"):
        read_checkpoint(tmp_path / "plain.pt")
    with pytest.raises(CheckpointError, match="version 7"):
        read_checkpoint(_save(tmp_path / "v7.pt", version=7))
    with pytest.raises(CheckpointError, match="lacks the embedding model"):
        read_checkpoint(_save(tmp_path / "empty.pt", model={}))
