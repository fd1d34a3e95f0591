"""Rectified flow and DDPM/DDIM against closed forms: a Gaussian data distribution whose optimal predictions are known.

For data x₀ ~ N(μ, σ²) (per dimension) both processes have Gaussian marginals, and the optimal
velocity / noise predictions are affine in x. Then every sampler step is affine too, so running a
sampler on the two points x = 0 and x = 1 gives its whole transport map x ↦ a·x + b: N(0, 1) noise
lands on N(b, a²), to be compared with N(μ, σ²).
"""
from __future__ import annotations

import math

import pytest
import torch

from omnipipe.generate.diffusion import LinearDDPM, ddim_step
from omnipipe.generate.flow import Predict, RectifiedFlow

MU = torch.tensor([1.5, -0.5], dtype=torch.float64)
SIGMA = torch.tensor([0.5, 2.0], dtype=torch.float64)
ENDS = torch.tensor([[0.0, 0.0], [1.0, 1.0]], dtype=torch.float64)  # x = 0 and x = 1 in both dimensions


def optimal_velocity(x: torch.Tensor, level: torch.Tensor, step: int) -> torch.Tensor:
    """E[ε − x₀ | x_t] for x_t = (1 − t)x₀ + tε: −μ + Cov(ε − x₀, x_t)/Var(x_t) · (x_t − (1 − t)μ)."""
    t = level.to(x.dtype)[:, None]
    variance = (1 - t) ** 2 * SIGMA**2 + t**2
    return -MU + (t - (1 - t) * SIGMA**2) / variance * (x - (1 - t) * MU)


DDPM = LinearDDPM()


def optimal_noise(x: torch.Tensor, level: torch.Tensor, step: int) -> torch.Tensor:
    """E[ε | x_i] for x_i = √ᾱ x₀ + √(1 − ᾱ) ε: √(1 − ᾱ)/(ᾱσ² + 1 − ᾱ) · (x_i − √ᾱ μ)."""
    alpha = DDPM.alpha_bar[level][:, None]
    return (1 - alpha).sqrt() / (alpha * SIGMA**2 + 1 - alpha) * (x - alpha.sqrt() * MU)


def transport(samples: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(scale a, offset b) of the affine map a sampler applied to ``ENDS``."""
    return samples[1] - samples[0], samples[0]


def flow_error(steps: int, sampler: str) -> float:
    scale, offset = transport(RectifiedFlow().integrate(optimal_velocity, ENDS, steps, sampler))
    return max(float((scale - SIGMA).abs().max()), float((offset - MU).abs().max()))


def assert_regression_optimum(process: RectifiedFlow | LinearDDPM, level: float | int, optimal: Predict) -> None:
    """Least squares of the process's training target on its noisy input, over many draws at one noise level,
    recovers the closed-form optimum's slope and intercept in each dimension."""
    generator = torch.Generator().manual_seed(0)
    levels = torch.full((200_000,), level)
    clean = MU + SIGMA * torch.randn(200_000, 2, generator=generator, dtype=torch.float64)
    noise = torch.randn(200_000, 2, generator=generator, dtype=torch.float64)
    noisy, target = process.corrupt(clean, noise, levels), process.target(clean, noise, levels)
    closed_scale, closed_offset = transport(optimal(ENDS, torch.full((2,), level), 0))
    for d in range(2):
        design = torch.stack([noisy[:, d], torch.ones_like(noisy[:, d])], 1)
        slope, intercept = torch.linalg.lstsq(design, target[:, d : d + 1]).solution[:, 0]
        assert abs(float(slope - closed_scale[d])) < 0.01 and abs(float(intercept - closed_offset[d])) < 0.01


def test_the_closed_form_velocity_is_the_regression_optimum() -> None:
    assert_regression_optimum(RectifiedFlow(), 0.3, optimal_velocity)


def test_velocity_target_is_the_time_derivative_of_the_path() -> None:
    flow = RectifiedFlow()
    clean, noise = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    t, h = torch.tensor([0.2, 0.5, 0.9], dtype=torch.float64), 1e-6
    numeric = (flow.corrupt(clean, noise, t + h) - flow.corrupt(clean, noise, t - h)) / (2 * h)
    assert torch.allclose(numeric, flow.target(clean, noise, t), atol=1e-8)
    assert torch.equal(flow.corrupt(clean, noise, torch.zeros(3)), clean)
    assert torch.equal(flow.corrupt(clean, noise, torch.ones(3)), noise)


def test_flow_samplers_transport_noise_to_the_gaussian_and_heun_beats_euler() -> None:
    euler = {n: flow_error(n, "euler") for n in (5, 10, 20, 100)}
    heun = {n: flow_error(n, "heun") for n in (5, 10, 20, 100)}
    for n in euler:
        assert heun[n] < euler[n] / 4  # equal steps: the second-order sampler is far closer
    assert euler[100] < 0.035 and heun[20] < 3e-3 and heun[100] < 1e-4
    assert 0.4 < euler[20] / euler[10] < 0.6  # first order: half the error for twice the steps
    assert 0.15 < heun[20] / heun[10] < 0.3  # second order: a quarter


def test_linear_schedule_and_ddim_timesteps() -> None:
    betas = [1e-4 + (0.02 - 1e-4) * i / 999 for i in range(1000)]
    assert math.isclose(float(DDPM.alpha_bar[-1]), math.prod(1 - b for b in betas), rel_tol=1e-9)
    assert math.isclose(float(DDPM.alpha_bar[0]), 1 - 1e-4, rel_tol=1e-12)
    assert DDPM.timesteps(1) == [999] and DDPM.timesteps(4) == [999, 749, 499, 249]
    assert DDPM.timesteps(1000) == list(range(999, -1, -1))
    assert torch.allclose(DDPM.network_time(torch.tensor([0, 999])), torch.tensor([0.001, 1.0]))


def test_the_closed_form_noise_is_the_regression_optimum() -> None:
    assert_regression_optimum(DDPM, 300, optimal_noise)


def test_ddpm_corruption_has_the_marginal_variance() -> None:
    generator = torch.Generator().manual_seed(1)
    clean = MU + SIGMA * torch.randn(100_000, 2, generator=generator, dtype=torch.float64)
    level = torch.full((100_000,), 500)
    noisy = DDPM.corrupt(clean, torch.randn(100_000, 2, generator=generator, dtype=torch.float64), level)
    alpha = DDPM.alpha_bar[500]
    assert torch.allclose(noisy.mean(0), alpha.sqrt() * MU, atol=0.02)
    assert torch.allclose(noisy.std(0), (alpha * SIGMA**2 + 1 - alpha).sqrt(), atol=0.02)


def test_ddim_transports_noise_to_the_gaussian_and_improves_with_steps() -> None:
    errors = {}
    for steps in (10, 50, 250):
        scale, offset = transport(DDPM.integrate(optimal_noise, ENDS, steps))
        errors[steps] = float((scale - SIGMA).abs().max())
        # the last index is not pure noise (√ᾱ_999 ≈ 0.006), which bounds how close the mean gets
        assert float((offset - MU).abs().max()) < 0.01
    assert errors[250] < errors[50] < errors[10] and errors[250] < 0.015


def test_ddim_eta_zero_is_deterministic_and_inverts_itself() -> None:
    noise = torch.randn(64, 2, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    one = DDPM.integrate(optimal_noise, noise, 50, eta=0.0, generator=torch.Generator().manual_seed(3))
    other = DDPM.integrate(optimal_noise, noise, 50, eta=0.0, generator=torch.Generator().manual_seed(4))
    assert torch.equal(one, other)  # no randomness besides the starting noise
    noisy = DDPM.integrate(optimal_noise, noise, 50, eta=1.0, generator=torch.Generator().manual_seed(4))
    assert not torch.allclose(one, noisy)

    def invert(samples: torch.Tensor, steps: int) -> torch.Tensor:
        """DDIM run backwards: from the data (ᾱ = 1) up through the visited indices, ε at the next level."""
        visited = DDPM.timesteps(steps)[::-1]
        alphas = [torch.tensor(1.0, dtype=torch.float64)] + [DDPM.alpha_bar[i] for i in visited]
        x = samples
        for k, index in enumerate(visited):
            x = ddim_step(x, optimal_noise(x, torch.full((len(x),), index), k), alphas[k], alphas[k + 1])
        return x

    gaps = {steps: float((invert(DDPM.integrate(optimal_noise, noise, steps), steps) - noise).abs().max()) for steps in (50, 500)}
    assert gaps[500] < gaps[50] / 5 and gaps[500] < 0.05


def test_ddim_eta_one_with_every_step_samples_the_gaussian() -> None:
    noise = torch.randn(4_000, 2, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    samples = DDPM.integrate(optimal_noise, noise, 1000, eta=1.0, generator=torch.Generator().manual_seed(6))
    assert torch.allclose(samples.mean(0), MU, atol=0.1) and torch.allclose(samples.std(0), SIGMA, rtol=0.05)


@pytest.mark.parametrize("sampler", ["euler", "heun"])
def test_flow_network_calls(sampler: str) -> None:
    calls: list[float] = []

    def counting(x: torch.Tensor, level: torch.Tensor, step: int) -> torch.Tensor:
        calls.append(float(level[0]))
        return torch.zeros_like(x)

    RectifiedFlow().integrate(counting, ENDS, 4, sampler)
    expected = [1.0, 0.75, 0.5, 0.25] if sampler == "euler" else [1.0, 0.75, 0.75, 0.5, 0.5, 0.25, 0.25, 0.0]
    assert calls == expected
