"""Regularisers: the implicit FFT solvers solve (I - gamma A) u_bar = u exactly; Jacobian measures are right."""

from __future__ import annotations

import pytest
import torch

from SlicerMedFuse.registration.regularizers import (
    ImplicitSmoother,
    diffusion_loss,
    fft_friendly_size,
    jacobian_determinant,
    jacobian_stats,
)

SHAPE = (10, 12, 14)


def _field(seed: int = 0) -> torch.Tensor:
    return torch.randn(1, 3, *SHAPE, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def _forward(u: torch.Tensor, dim: int) -> torch.Tensor:
    return torch.roll(u, -1, dims=dim) - u


def _backward(u: torch.Tensor, dim: int) -> torch.Tensor:
    return u - torch.roll(u, 1, dims=dim)


def _laplacian(u: torch.Tensor) -> torch.Tensor:
    """Periodic 7-point Laplacian."""
    return sum(_backward(_forward(u, dim), dim) for dim in (2, 3, 4))


def _grad_div(u: torch.Tensor) -> torch.Tensor:
    """Periodic grad(div u) with forward differences for div, backward for grad; channels (i, j, k) = dims (4, 3, 2)."""
    dims = (4, 3, 2)
    divergence = sum(_forward(u[:, c : c + 1], dims[c]) for c in range(3))
    return torch.cat([_backward(divergence, dims[c]) for c in range(3)], dim=1)


def test_diffusion_solver_inverts_identity_minus_gamma_laplacian():
    u = _field()
    solver = ImplicitSmoother(SHAPE, "diffusion", gamma=2.0)
    u_bar = solver(u.float()).double()
    torch.testing.assert_close(u_bar - 2.0 * _laplacian(u_bar), u, atol=1e-4, rtol=1e-4)


def test_curvature_solver_inverts_identity_plus_gamma_bilaplacian():
    u = _field(1)
    u_bar = ImplicitSmoother(SHAPE, "curvature", gamma=5.0)(u.float()).double()
    torch.testing.assert_close(u_bar + 5.0 * _laplacian(_laplacian(u_bar)), u, atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize(("mu", "lam"), [(1.0, 0.0), (0.5, 2.0)])
def test_elastic_solver_inverts_the_navier_lame_operator(mu, lam):
    u = _field(2)
    gamma = 2.0
    u_bar = ImplicitSmoother(SHAPE, "elastic", gamma=gamma, mu=mu, lam=lam)(u.float()).double()
    navier = mu * _laplacian(u_bar) + (mu + lam) * _grad_div(u_bar)
    torch.testing.assert_close(u_bar - gamma * navier, u, atol=1e-4, rtol=1e-4)


@pytest.mark.parametrize(
    "options", [{"kind": "diffusion", "boundary": "neumann"}, {"kind": "diffusion", "method": "aos"}]
)
def test_other_diffusion_solvers_keep_constants_and_reduce_roughness(options):
    u = _field(3).float()
    solver = ImplicitSmoother(SHAPE, gamma=2.0, **options)
    constant = torch.full_like(u, 0.7)
    torch.testing.assert_close(solver(constant), constant, atol=1e-5, rtol=1e-5)
    smoothed = solver(u)
    assert smoothed.shape == u.shape
    assert float(diffusion_loss(smoothed)) < 0.5 * float(diffusion_loss(u))
    torch.testing.assert_close(smoothed.mean(), u.mean(), atol=1e-5, rtol=1e-4)  # mean displacement kept


def test_neumann_elastic_solver_smooths_without_wrapping_around():
    u = _field(4).float()
    solver = ImplicitSmoother(SHAPE, "elastic", gamma=2.0, boundary="neumann")
    assert float(diffusion_loss(solver(u))) < 0.5 * float(diffusion_loss(u))
    # a displacement on one face does not leak to the opposite face (it would with periodic boundaries)
    spike = torch.zeros(1, 3, *SHAPE)
    spike[:, 1, :, :, 0] = 1.0
    periodic = ImplicitSmoother(SHAPE, "elastic", gamma=2.0)(spike)
    reflecting = solver(spike)
    assert float(reflecting[:, 1, :, :, -1].abs().max()) < 0.2 * float(periodic[:, 1, :, :, -1].abs().max())


@pytest.mark.parametrize(
    ("kind", "method"), [("diffusion", "fft"), ("curvature", "fft"), ("elastic", "fft"), ("diffusion", "aos")]
)
def test_periodic_solver_gradient_is_the_solve_itself(kind, method):
    # the custom backward (S is symmetric) must equal autograd through the FFTs
    smoother = ImplicitSmoother((6, 7, 8), kind, 3.0, lam=0.5, spacing=(1.0, 1.5, 2.0), method=method)
    generator = torch.Generator().manual_seed(0)
    u = torch.randn(1, 3, 6, 7, 8, generator=generator).requires_grad_(True)
    weight = torch.randn(1, 3, 6, 7, 8, generator=generator)
    (smoother(u) * weight).sum().backward()
    reference = u.detach().clone().requires_grad_(True)
    (smoother._solve(reference) * weight).sum().backward()
    torch.testing.assert_close(u.grad, reference.grad, rtol=1e-5, atol=1e-6)  # the solver works in float32


def test_solver_validates_its_arguments():
    with pytest.raises(ValueError, match="kind"):
        ImplicitSmoother(SHAPE, "bending")
    with pytest.raises(ValueError, match="aos"):
        ImplicitSmoother(SHAPE, "elastic", method="aos")
    with pytest.raises(ValueError, match="does not match"):
        ImplicitSmoother(SHAPE)(torch.zeros(1, 3, 4, 4, 4))


def test_diffusion_loss_is_zero_for_translations_and_counts_spacing():
    assert float(diffusion_loss(torch.full((1, 3, *SHAPE), 2.5))) == 0.0
    ramp = torch.zeros(1, 3, *SHAPE)
    ramp[:, 0] = torch.arange(SHAPE[2], dtype=torch.float32)  # u_i = i: gradient 1 along i only
    value = float(diffusion_loss(ramp))
    assert value == pytest.approx(1.0 / 9.0)  # mean over 3 components, then over 3 axes
    assert float(diffusion_loss(ramp, spacing=(2.0, 1.0, 1.0))) == pytest.approx(value / 4.0)


def test_jacobian_of_linear_fields_and_folding_statistics():
    d, h, w = SHAPE
    k, j, i = torch.meshgrid(*(torch.arange(n, dtype=torch.float64) for n in SHAPE), indexing="ij")
    matrix = torch.tensor([[0.2, 0.1, 0.0], [0.0, -0.1, 0.3], [0.05, 0.0, 0.1]], dtype=torch.float64)
    coords = torch.stack([i, j, k])  # (3, D, H, W) in (i, j, k) order
    u = torch.einsum("ab,bzyx->azyx", matrix, coords)[None]
    det = jacobian_determinant(u)
    assert det.shape == (1, d, h, w)
    torch.testing.assert_close(det, torch.full_like(det, float(torch.det(torch.eye(3, dtype=torch.float64) + matrix))))
    stats = jacobian_stats(torch.zeros(1, 3, *SHAPE))
    assert stats["folding_percent"] == 0.0 and stats["std_log_jacobian"] == pytest.approx(0.0)
    folded = torch.zeros(1, 3, *SHAPE)
    folded[:, 0] = -2.0 * i.float()  # x -> -x along i: |J| = -1 everywhere
    assert jacobian_stats(folded)["folding_percent"] == 100.0


def test_fft_friendly_size_is_the_next_7_smooth_length():
    assert [fft_friendly_size(n) for n in (1, 11, 13, 160, 167, 202, 229)] == [1, 12, 14, 160, 168, 210, 240]


@pytest.mark.parametrize("kind", ["diffusion", "curvature", "elastic"])
def test_padded_solver_is_symmetric_and_equals_periodic_on_friendly_sizes(kind):
    # zero extension then crop: S = C P^-1 Z is symmetric, so the custom backward (S applied to the gradient) is exact
    odd = (11, 13, 9)
    smoother = ImplicitSmoother(odd, kind, 3.0, boundary="padded")
    u = torch.randn(1, 3, *odd, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    v = torch.randn(1, 3, *odd, generator=torch.Generator().manual_seed(6), dtype=torch.float64)
    torch.testing.assert_close((smoother(u) * v).sum(), (u * smoother(v)).sum(), atol=1e-5, rtol=1e-5)
    leaf = u.clone().requires_grad_(True)
    (smoother(leaf) * v).sum().backward()
    torch.testing.assert_close(leaf.grad, smoother(v))
    # on a grid whose sizes are already 7-smooth there is nothing to pad: the periodic solve itself
    u = _field(7).float()
    torch.testing.assert_close(
        ImplicitSmoother(SHAPE, kind, 3.0, boundary="padded")(u), ImplicitSmoother(SHAPE, kind, 3.0)(u)
    )
