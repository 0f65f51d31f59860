"""Suite-wide settings: the tests use small tensors, where one torch thread is fastest and
where several threads on a shared 2-core machine mostly fight each other.

The ``plugins_undone`` fixture is for tests that import plugin modules (``--plugin``)."""
import sys
from contextlib import ExitStack
from pathlib import Path

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture
def plugins_undone(tmp_path_factory: pytest.TempPathFactory):
    """After the test every registry is as before it, and the plugin modules it imported (from
    the tests folder or a temporary folder) are forgotten, so that they register again when imported."""
    from gcahng.data import DATASETS
    from gcahng.graph import EDGE_TO_NODE, NODE_TO_EDGE, NODE_TO_NODE
    from gcahng.losses import METRIC_LOSSES
    from gcahng.models import BACKBONES

    before = set(sys.modules)
    with ExitStack() as stack:
        for registry in (NODE_TO_NODE, EDGE_TO_NODE, NODE_TO_EDGE, METRIC_LOSSES, BACKBONES, DATASETS):
            stack.enter_context(registry.restored_on_exit())
        yield
    homes = (Path(__file__).resolve().parent, tmp_path_factory.getbasetemp().resolve())
    for name in set(sys.modules) - before:
        file = getattr(sys.modules[name], "__file__", None)
        if file and any(Path(file).resolve().is_relative_to(home) for home in homes):
            del sys.modules[name]
