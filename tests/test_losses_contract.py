"""The metric-loss contract: the base class, and what registration checks."""
import pytest
from torch import nn

from gcahng.errors import InputError
from gcahng.losses import METRIC_LOSSES, MetricLoss, NPairLoss


@pytest.mark.parametrize("name", METRIC_LOSSES.names())
def test_every_built_in_loss_is_a_metric_loss(name):
    assert issubclass(METRIC_LOSSES.get(name), MetricLoss)


class _NoSynthetic(nn.Module):
    def forward(self, z, labels, C, m):
        return z.sum()


class _NeedsMargin(MetricLoss):
    def __init__(self, num_classes, margin):
        super().__init__()


class _Proxies(MetricLoss):  # takes both keywords, as proxy losses do
    def __init__(self, num_classes, embedding_dim, *, scale=1.0):
        super().__init__()


class _PlainModule(nn.Module):  # a loss that does not subclass the base still registers
    def forward(self, z, labels, C, m):
        return z.sum()

    def synthetic(self, z, negatives, labels, C, m):
        return z.sum()


def test_registration_checks_the_loss_contract():
    names = METRIC_LOSSES.names()
    with pytest.raises(InputError, match="a metric loss must be a subclass of torch.nn.modules.module.Module"):
        METRIC_LOSSES.register("test_bad")(object)
    with pytest.raises(InputError, match="metric loss _NoSynthetic lacks the method.s. synthetic"):
        METRIC_LOSSES.register("test_bad")(_NoSynthetic)
    with pytest.raises(InputError, match=r"_NeedsMargin must be constructible as _NeedsMargin\(num_classes=.*'margin'"):
        METRIC_LOSSES.register("test_bad")(_NeedsMargin)
    assert METRIC_LOSSES.names() == names
    for cls in (_Proxies, _PlainModule, type("MyNPair", (NPairLoss,), {})):
        with METRIC_LOSSES.registered("test_good", cls):
            assert METRIC_LOSSES.get("test_good") is cls
    assert METRIC_LOSSES.names() == names


def test_lr_multiplier_defaults_to_one_and_proxy_anchor_overrides_it():
    assert MetricLoss.lr_multiplier == NPairLoss.lr_multiplier == 1.0
    assert METRIC_LOSSES.get("proxy_anchor").lr_multiplier == 100.0
