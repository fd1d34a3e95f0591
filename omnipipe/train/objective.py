"""The training objective: weighted loss terms from the spec plus the bottleneck's own terms."""
from __future__ import annotations

from dataclasses import dataclass, field

import torch

from omnipipe.nn.quantizer_output import QuantizerOutput
from omnipipe.spec.component import LossSpec
from omnipipe.train.step_draws import StepDraws


@dataclass
class Objective:
    """Reconstruction terms (``forward(reconstruction, target)`` losses) and quantizer-term weights.

    A loss with ``draws_frames`` set (``lpips`` on one random frame per clip) also gets ``generator=``,
    from ``draws`` (None: torch's global generator).
    """

    terms: dict[str, tuple[LossSpec, torch.nn.Module]]
    quantizer_weights: dict[str, float] = field(default_factory=dict)
    draws: StepDraws | None = None

    def to(self, device: torch.device) -> Objective:
        for _, module in self.terms.values():
            module.to(device)
        return self

    def __call__(
        self, reconstruction: torch.Tensor, target: torch.Tensor, quantized: QuantizerOutput, step: int
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """(reconstruction loss, every weighted term by name); quantizer terms default to weight 1."""
        parts: dict[str, torch.Tensor] = {}
        for name, (entry, module) in self.terms.items():
            if step >= entry.start_step:
                key = f"{name}_proxy" if getattr(module, "is_proxy", False) else name
                drawn = {}
                if getattr(module, "draws_frames", False):
                    drawn["generator"] = self.draws(step) if self.draws is not None else None
                parts[key] = entry.weight * module(reconstruction.float(), target.float(), **drawn)
        reconstruction_loss = sum(parts.values(), torch.zeros((), device=target.device))
        for name, value in quantized.losses.items():
            parts[f"quantizer_{name}"] = self.quantizer_weights.get(name, 1.0) * value.float()
        return reconstruction_loss, parts
