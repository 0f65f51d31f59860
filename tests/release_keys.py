"""State dicts shaped like the authors' released checkpoints, for the loader tests."""
from __future__ import annotations

from pathlib import Path

import torch

KEYS = Path(__file__).parent / "assets" / "official_checkpoint_keys"


def release_state_dict(file: str, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random values with the names, shapes and dtypes that ``KEYS / file`` lists
    (positive running variances, small weights)."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for line in (KEYS / file).read_text().splitlines()[1:]:
        name, shape, dtype = line.split("\t")
        size = tuple(int(s) for s in shape.strip("()").split(",") if s.strip())
        if dtype == "torch.int64":
            out[name] = torch.randint(0, 1000, size, generator=gen)
        elif name.endswith("running_var"):
            out[name] = torch.rand(size, generator=gen) + 0.5
        else:
            out[name] = torch.randn(size, generator=gen) * 0.05
    return out
