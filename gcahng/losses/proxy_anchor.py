"""Proxy-Anchor loss (Kim et al., CVPR 2020) with synthetic negatives as label-preserving samples.

Taken from pytorch-metric-learning's ``ProxyAnchorLoss``, which matches the paper and its
code: cosine similarity ``s(x, p)`` to L2-normalised proxies initialised with Kaiming normal
(mode ``fan_out``), and

    J = 1/|P+| sum_{p in P+} log(1 + sum_{x in X_p+} exp(-alpha (s(x, p) - delta)))
      + 1/|P|  sum_{p in P}  log(1 + sum_{x in X_p-} exp( alpha (s(x, p) + delta)))

where ``P+`` are the proxies with at least one positive in the batch (a proxy without one
adds nothing to the first sum and is not counted), ``P`` all proxies.
"""
from __future__ import annotations

from torch import Tensor

from gcahng.errors import InputError
from gcahng.losses.registry import METRIC_LOSSES
from gcahng.losses.synthetic_adapter import SyntheticNegativeAdapter


@METRIC_LOSSES.register("proxy_anchor")
class ProxyAnchorLoss(SyntheticNegativeAdapter):
    """Proxy-Anchor with margin ``delta = 0.1`` and scale ``alpha = 32``; one proxy per class.

    ``J_syn`` is Proxy-Anchor over the real batch plus the synthetic negatives (own-class rows
    excluded), each labelled with its class. The proxies train at 100x the head's learning rate
    (``lr_multiplier``, read by :func:`gcahng.training.build_optimizers`).

    Args:
        num_classes: number of training classes K; labels must lie in ``[0, K)``.
        embedding_dim: embedding size D.
    """

    synthetic_as = "samples"
    lr_multiplier = 100.0

    def __init__(
        self,
        num_classes: int | None = None,
        embedding_dim: int | None = None,
        *,
        margin: float = 0.1,
        alpha: float = 32.0,
    ) -> None:
        for name, value in (("num_classes", num_classes), ("embedding_dim", embedding_dim)):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise InputError(f"proxy_anchor needs a positive integer {name}, got {value!r}")
        from pytorch_metric_learning import losses as pml_losses  # imported on use: it loads scipy.stats

        super().__init__(pml_losses.ProxyAnchorLoss(num_classes, embedding_dim, margin=margin, alpha=alpha))
        self.num_classes = num_classes

    @property
    def proxies(self) -> Tensor:
        """(K, D) class proxies (not normalised; the loss normalises them)."""
        return self.pml_loss.proxies

    def score(self, embeddings: Tensor, labels: Tensor, **pml_kwargs) -> Tensor:
        if bool(((labels < 0) | (labels >= self.num_classes)).any()):  # one device sync per call
            raise InputError(
                f"proxy_anchor labels must lie in [0, {self.num_classes}) (num_classes), "
                f"got labels from {int(labels.min())} to {int(labels.max())}"
            )
        if embeddings.shape[1] != self.proxies.shape[1]:
            raise InputError(
                f"proxy_anchor was built for embedding_dim {self.proxies.shape[1]}, got embeddings of width "
                f"{embeddings.shape[1]}"
            )
        return super().score(embeddings, labels, **pml_kwargs)
