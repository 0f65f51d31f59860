"""Reading weight files and matching state dicts to an embedding network by key and shape.

Key layouts understood (after dropping a DataParallel ``module.`` prefix):

- ours: ``backbone.*`` and ``fc.0.*`` / ``fc.1.*`` (the head);
- the reference release: the same under ``feature_extractor.``, next to ``gnn.*`` and
  ``softmax_classifier.*`` (ignored here), or without that prefix ("metric model" files);
- a plain torchvision/timm backbone state dict: keys placed under ``backbone.`` plus the
  backbone's ``plain_prefix``.

Keys of parts our networks drop (ImageNet classifiers, auxiliary heads: the backbone's
``unused_prefixes``) are ignored.
"""
from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from gcahng.errors import CheckpointError
from gcahng.models.backbone import Backbone

RELEASE_PREFIX = "feature_extractor."
TRAINING_AID_PREFIXES = ("gnn.", "softmax_classifier.")
NESTED_STATE_KEYS = ("model", "state_dict")
_SHOWN = 3  # keys listed per kind of mismatch


def read_weights_file(path: str | Path) -> dict[str, Tensor]:
    """The tensors of a weights file: a state dict saved with ``torch.save`` (possibly nested
    under ``"model"`` or ``"state_dict"``, as in our checkpoints) or a ``.safetensors`` file.
    Read with ``weights_only=True``; problems raise ``CheckpointError`` naming the file."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise CheckpointError(f"weights file {str(path)!r} does not exist or is not a file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            data: Any = load_file(str(path), device="cpu")
        else:
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch/pickle/safetensors raise many types for unreadable files
        raise CheckpointError(f"cannot read weights file {str(path)!r}: {err}") from err
    return extract_state_dict(data, source=str(path))


def extract_state_dict(data: Any, *, source: str) -> dict[str, Tensor]:
    """The state dict inside a loaded checkpoint object (top level or under ``"model"`` /
    ``"state_dict"``); anything else raises ``CheckpointError`` naming ``source``."""
    if isinstance(data, Mapping):
        for key in NESTED_STATE_KEYS:
            if isinstance(data.get(key), Mapping):
                data = data[key]
                break
    if not isinstance(data, Mapping) or not data:
        raise CheckpointError(f"{source} holds no state dict (a mapping from names to tensors)")
    not_tensors = [str(k) for k, v in data.items() if not isinstance(v, Tensor)]
    if not_tensors:
        raise CheckpointError(
            f"{source} is not a state dict: entry {not_tensors[0]!r} is not a tensor"
            + (f" (nor are {len(not_tensors) - 1} more)" if len(not_tensors) > 1 else "")
        )
    return {str(k): v for k, v in data.items()}


def to_model_keys(state_dict: Mapping[str, Tensor], backbone_cls: type[Backbone]) -> dict[str, Tensor]:
    """Rename the keys of any understood layout (module docstring) to ours, dropping the
    training aids of full released models and the parts our backbone does not have."""
    out = {k.removeprefix("module."): v for k, v in state_dict.items()}
    if any(k.startswith(RELEASE_PREFIX) for k in out):
        out = {k[len(RELEASE_PREFIX):]: v for k, v in out.items() if k.startswith(RELEASE_PREFIX)}
    out = {k: v for k, v in out.items() if not k.startswith(TRAINING_AID_PREFIXES)}
    # ours has backbone.* and/or the head's fc.0.*/fc.1.* (a backbone may have no weights at all);
    # a plain torchvision/timm backbone has neither (its classifier is fc.weight, head.weight, ...)
    if not any(k.startswith(("backbone.", "fc.0.", "fc.1.")) for k in out):
        out = {f"backbone.{backbone_cls.plain_prefix}{k}": v for k, v in out.items()}
    unused = tuple(f"backbone.{p}" for p in backbone_cls.unused_prefixes)
    return {k: v for k, v in out.items() if not k.startswith(unused)}


def check_exact_match(module: nn.Module, state_dict: Mapping[str, Tensor], *, source: str, what: str) -> None:
    """Raise ``CheckpointError`` unless ``state_dict`` has exactly ``module``'s keys with the
    same shapes; the message names the first offending keys of each kind."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state_dict]
    unexpected = [k for k in state_dict if k not in expected]
    mismatched = [
        f"{k} (file {tuple(state_dict[k].shape)}, model {tuple(expected[k].shape)})"
        for k in expected
        if k in state_dict and state_dict[k].shape != expected[k].shape
    ]
    problems = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", mismatched)):
        if keys:
            more = f" and {len(keys) - _SHOWN} more" if len(keys) > _SHOWN else ""
            problems.append(f"{len(keys)} {label}: {', '.join(keys[:_SHOWN])}{more}")
    if problems:
        raise CheckpointError(f"{source} does not match {what}: " + "; ".join(problems))


def load_exact(module: nn.Module, state_dict: Mapping[str, Tensor], *, source: str, what: str) -> None:
    """Copy ``state_dict`` into ``module`` after :func:`check_exact_match`, casting floating
    tensors to the dtype of the entry they replace.

    A module built on the meta device (to skip random initialisation) is first given
    uninitialised CPU storage, which the state dict then fills completely.
    """
    check_exact_match(module, state_dict, source=source, what=what)
    expected = module.state_dict()
    if any(t.is_meta for t in [*module.parameters(), *module.buffers()]):
        transient = [name for name, _ in module.named_buffers() if name not in expected]
        if transient:
            raise CheckpointError(
                f"{what} has buffers no state dict holds ({', '.join(transient[:_SHOWN])}); "
                "it must be built with random initialisation before loading"
            )
        module.to_empty(device="cpu")
    cast = {
        k: v.to(expected[k].dtype) if v.is_floating_point() and expected[k].is_floating_point() else v
        for k, v in state_dict.items()
    }
    module.load_state_dict(cast, strict=True)
