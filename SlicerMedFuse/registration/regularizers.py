"""Regularisers of dense displacement fields and Jacobian-determinant measures.

Fields are ``(B, 3, D, H, W)`` tensors in voxel units; channel c is the displacement along index
axis c of ``(i, j, k) = (W, H, D)`` (grid_sample's ``(x, y, z)`` order, see
:mod:`SlicerMedFuse.nets.warping`).

* :func:`diffusion_loss`: the explicit diffusion regulariser ``mean ||grad u||^2`` (NIO, Eq. 3).
* :class:`ImplicitSmoother`: the implicitly solved regularisers of Ehrhardt & Handels (MLMI 2023):
  ``u_bar = argmin_u' 1/2 ||u - u'||^2 + gamma R(u')``, i.e. ``u_bar = (I - gamma A)^-1 u`` (Eq. 4-5),
  with ``A`` the diffusion (Laplacian), curvature (bi-Laplacian) or linear-elastic (Navier-Lame)
  operator, solved exactly in Fourier space (Eq. 6) or, for diffusion, by additive operator
  splitting (AOS, as in the paper). The optimiser uses ``u_bar`` in the decoupled loss
  ``D + sigma/2 ||u - u_bar||^2`` (Eq. 3) and as the smoothing step between iterations.
* :func:`jacobian_determinant`, :func:`jacobian_stats`: folding (% |J| <= 0) and std(log |J|).

Boundary conditions are not stated in the paper; the DFT of Eq. 6 implies periodic ones
(``boundary="periodic"``). ``"neumann"`` uses the symmetric (mirror) extension, which makes the
DFT a DCT-II and the Laplacian's boundary reflecting (for the elastic operator: free slip, see
:meth:`ImplicitSmoother._mirror`); it costs 8x more FFT work. ``"padded"`` extends the field with
zeros to FFT-friendly sizes (our choice, for speed: DFTs of prime lengths are slow).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from SlicerMedFuse.registration.options import BOUNDARIES, IMPLICIT_KINDS

__all__ = [
    "IMPLICIT_KINDS",
    "ImplicitSmoother",
    "diffusion_loss",
    "jacobian_determinant",
    "jacobian_stats",
]


def _check_field(u: torch.Tensor) -> None:
    if u.dim() != 5 or u.shape[1] != 3:
        raise ValueError(f"displacement must be a (B, 3, D, H, W) tensor, got shape {tuple(u.shape)}")


def diffusion_loss(u: torch.Tensor, spacing: Sequence[float] | None = None) -> torch.Tensor:
    """Explicit diffusion regulariser: mean squared forward difference of every component along every axis.

    Args:
        u: ``(B, 3, D, H, W)`` displacement in voxel units.
        spacing: optional voxel size per index axis ``(i, j, k)`` (any unit); differences are divided
            by it (relative to the smallest), so anisotropic grids are penalised per unit length.

    Returns:
        Scalar ``(mean(du/di^2) + mean(du/dj^2) + mean(du/dk^2)) / 3``.
    """
    _check_field(u)
    scale = [1.0, 1.0, 1.0] if spacing is None else [min(spacing) / s for s in spacing]
    terms = []
    for dim, factor in zip((4, 3, 2), scale, strict=True):  # i, j, k axes
        n = u.shape[dim]
        if n < 2:
            continue
        diff = (u.narrow(dim, 1, n - 1) - u.narrow(dim, 0, n - 1)) * factor
        terms.append((diff * diff).mean())
    return torch.stack(terms).mean() if terms else u.new_zeros(())


def fft_friendly_size(n: int) -> int:
    """The smallest ``m >= n`` whose prime factors are all 2, 3, 5 or 7 (fast for pocketfft and cuFFT)."""
    m = max(int(n), 1)
    while True:
        rest = m
        for prime in (2, 3, 5, 7):
            while rest % prime == 0:
                rest //= prime
        if rest == 1:
            return m
        m += 1


def _frequencies(n: int, spacing: float, half: bool, device: torch.device) -> torch.Tensor:
    """Angular frequencies 2 pi k / n of a (r)fft axis, divided by the spacing later."""
    k = torch.fft.rfftfreq(n, device=device) if half else torch.fft.fftfreq(n, device=device)
    return 2 * math.pi * k.to(torch.float64)


class ImplicitSmoother:
    """Solves ``(I - gamma A) u_bar = u`` for a fixed grid (Ehrhardt & Handels, MLMI 2023, Eq. 4-6).

    The Fourier symbols of the discrete operators are pre-computed once per grid. With
    ``D_c(w) = exp(i w_c) - 1`` (forward difference along axis c) and ``s = sum_c |D_c|^2 / h_c^2``:

    * diffusion, ``A = Laplacian``: ``u_bar = u_hat / (1 + gamma s)``;
    * curvature, ``A = -Laplacian^2`` (sign chosen so that ``I - gamma A`` is positive definite, the
      paper writes Delta^2): ``u_bar = u_hat / (1 + gamma s^2)``;
    * linear elastic, ``A = mu Laplacian + (mu + lambda) grad div``: per frequency the 3x3 system
      ``(alpha I + beta v v^H) u_bar = u_hat`` with ``alpha = 1 + gamma mu s``, ``beta = gamma (mu + lambda)``,
      ``v = conj(D) / h``, solved in closed form (Sherman-Morrison).

    Args:
        shape: spatial shape ``(D, H, W)``.
        kind: ``"diffusion"``, ``"elastic"`` or ``"curvature"``.
        gamma: regularisation weight (the paper's grid search: 2 for diffusion and elastic, 5 for curvature).
        mu, lam: Lame constants of the elastic operator (paper: mu = 1, lambda = 0).
        spacing: voxel size per index axis ``(i, j, k)``; derivatives use it relative to the
            smallest, so an isotropic grid is in voxel units whatever its size in mm.
        boundary: ``"periodic"`` (plain DFT, as Eq. 6), ``"neumann"`` (mirror extension) or
            ``"padded"`` (zero extension to the next 7-smooth size per axis, then periodic: a DFT of a
            prime length such as 167 or 229 costs about twice as much as one of 168 or 240; on a grid
            whose sizes are already 7-smooth it equals ``"periodic"``).
        method: ``"fft"`` (exact solve) or ``"aos"`` (additive operator splitting, diffusion only:
            ``u_bar = 1/3 sum_c (I - 3 gamma d_c^2)^-1 u``, each 1D system solved exactly).
        device: where the symbols live (the field's device).
    """

    def __init__(
        self,
        shape: Sequence[int],
        kind: str = "diffusion",
        gamma: float = 2.0,
        *,
        mu: float = 1.0,
        lam: float = 0.0,
        spacing: Sequence[float] | None = None,
        boundary: str = "periodic",
        method: str = "fft",
        device: torch.device | str = "cpu",
    ) -> None:
        if kind not in IMPLICIT_KINDS:
            raise ValueError(f"kind must be one of {', '.join(IMPLICIT_KINDS)}; got {kind!r}")
        if boundary not in BOUNDARIES:
            raise ValueError(f"boundary must be one of {', '.join(BOUNDARIES)}; got {boundary!r}")
        if method not in ("fft", "aos"):
            raise ValueError(f"method must be 'fft' or 'aos', got {method!r}")
        if method == "aos" and kind != "diffusion":
            raise ValueError(
                "method 'aos' solves only the diffusion operator; use method 'fft' for elastic or curvature"
            )
        if gamma < 0 or mu < 0 or mu + lam < 0:
            raise ValueError(f"need gamma >= 0, mu >= 0 and mu + lambda >= 0, got {gamma}, {mu}, {lam}")
        if len(shape) != 3:
            raise ValueError(f"shape must be (D, H, W), got {tuple(shape)}")
        self.shape = tuple(int(n) for n in shape)
        self.kind, self.gamma, self.mu, self.lam = kind, float(gamma), float(mu), float(lam)
        self.boundary, self.method = boundary, method
        self.device = torch.device(device)
        spacing_ijk = [1.0, 1.0, 1.0] if spacing is None else [float(s) for s in spacing]
        smallest = min(spacing_ijk)
        self._h = [spacing_ijk[2] / smallest, spacing_ijk[1] / smallest, spacing_ijk[0] / smallest]  # (D, H, W)
        if boundary == "neumann":
            self._fft_shape = tuple(2 * n for n in self.shape)
        elif boundary == "padded":
            self._fft_shape = tuple(fft_friendly_size(n) for n in self.shape)
        else:
            self._fft_shape = self.shape
        self._build()

    def _build(self) -> None:
        if self.method == "aos":
            # One 1D symbol per axis: 1 / (1 + 3 gamma |D|^2 / h^2), real, on the (possibly mirrored) axis.
            self._axis_symbols = []
            for axis, n in enumerate(self._fft_shape):
                w = _frequencies(n, self._h[axis], half=True, device=self.device)
                s = (4 * torch.sin(w / 2) ** 2) / self._h[axis] ** 2
                self._axis_symbols.append((1.0 / (1.0 + 3.0 * self.gamma * s)).to(torch.float32))
            return
        n_d, n_h, n_w = self._fft_shape
        axes = [
            _frequencies(n_d, self._h[0], False, self.device),
            _frequencies(n_h, self._h[1], False, self.device),
            _frequencies(n_w, self._h[2], True, self.device),
        ]
        # forward-difference symbols per spatial axis (D, H, W), divided by the spacing; built per axis and
        # broadcast (a full complex grid of exponentials cost seconds at 1 mm on a 160 x 192 x 224 image)
        views = ((-1, 1, 1), (1, -1, 1), (1, 1, -1))
        diffs = [((torch.exp(1j * w) - 1) / h).view(v) for w, h, v in zip(axes, self._h, views, strict=True)]
        s = sum(d.abs() ** 2 for d in diffs)
        if self.kind == "diffusion":
            self._scalar = (1.0 / (1.0 + self.gamma * s)).to(torch.float32)
        elif self.kind == "curvature":
            self._scalar = (1.0 / (1.0 + self.gamma * s * s)).to(torch.float32)
        else:
            alpha = 1.0 + self.gamma * self.mu * s
            beta = self.gamma * (self.mu + self.lam)
            # field channels are (i, j, k) = (W, H, D): reorder the difference symbols to match
            full = s.shape  # (D, H, W/2+1)
            d_ijk = torch.stack([diffs[2].expand(full), diffs[1].expand(full), diffs[0].expand(full)])
            self._alpha_inv = (1.0 / alpha).to(torch.float32)
            self._d = d_ijk.to(torch.complex64)
            self._coupling = (beta / (alpha * (alpha + beta * s))).to(torch.float32)

    def _mirror(self, u: torch.Tensor) -> torch.Tensor:
        """Symmetric extension to twice the size along each axis.

        Component-wise operators (diffusion, curvature) use an even extension of every component
        (reflecting, i.e. Neumann, boundaries). The elastic operator couples components, and only
        a physical reflection commutes with it: the component normal to the mirror changes sign
        (a free-slip boundary: no normal displacement, reflecting tangential ones).
        """
        for dim, channel in ((2, 2), (3, 1), (4, 0)):  # D <-> k, H <-> j, W <-> i
            flipped = u.flip(dim)
            if self.kind == "elastic":
                sign = torch.ones(1, 3, 1, 1, 1, dtype=u.dtype, device=u.device)
                sign[:, channel] = -1
                flipped = flipped * sign
            u = torch.cat([u, flipped], dim)
        return u

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        """The regularised field ``u_bar`` for ``u`` ``(B, 3, D, H, W)`` (same shape and dtype).

        With periodic boundaries ``(I - gamma A)^-1`` is symmetric (``A`` is self-adjoint and the DFT
        diagonalises it), so its gradient is the same solve: that replaces autograd's complex
        transforms through ``rfftn``/``irfftn`` by one more real solve. Zero padding and cropping are
        each other's adjoints, so the padded solve is symmetric too.
        """
        _check_field(u)
        if tuple(u.shape[2:]) != self.shape:
            raise ValueError(f"field shape {tuple(u.shape[2:])} does not match the solver's grid {self.shape}")
        if self.gamma == 0:
            return u
        if self.boundary != "neumann" and u.requires_grad:
            return _SymmetricSolve.apply(u, self)
        return self._solve(u)

    def _solve(self, u: torch.Tensor) -> torch.Tensor:
        dtype = u.dtype
        x = u.float()
        if self.boundary == "neumann":
            x = self._mirror(x)
        elif self.boundary == "padded":
            x = F.pad(
                x, [p for n, m in zip(reversed(self.shape), reversed(self._fft_shape), strict=True) for p in (0, m - n)]
            )
        if self.method == "aos":
            out = torch.zeros_like(x)
            for axis, symbol in enumerate(self._axis_symbols):
                dim = axis + 2
                spectrum = torch.fft.rfft(x, dim=dim)
                view = [1] * 5
                view[dim] = -1
                out += torch.fft.irfft(spectrum * symbol.view(view), n=x.shape[dim], dim=dim)
            x = out / 3.0
        else:
            spectrum = torch.fft.rfftn(x, dim=(2, 3, 4))
            if self.kind == "elastic":
                divergence = (self._d * spectrum).sum(dim=1, keepdim=True)  # D^T u_hat
                spectrum = spectrum * self._alpha_inv - self._coupling * self._d.conj() * divergence
            else:
                spectrum = spectrum * self._scalar
            x = torch.fft.irfftn(spectrum, s=self._fft_shape, dim=(2, 3, 4))
        if self.boundary != "periodic":
            d, h, w = self.shape
            x = x[:, :, :d, :h, :w]
        return x.to(dtype)


class _SymmetricSolve(torch.autograd.Function):
    """``S(u)`` for a symmetric linear solver ``S``: the backward pass applies ``S`` to the gradient."""

    @staticmethod
    def forward(ctx, u: torch.Tensor, smoother: ImplicitSmoother) -> torch.Tensor:  # type: ignore[override]
        ctx.smoother = smoother
        return smoother._solve(u)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return ctx.smoother._solve(grad), None


def jacobian_determinant(u: torch.Tensor) -> torch.Tensor:
    """Determinant of the Jacobian of ``x -> x + u(x)`` by central differences (one-sided at edges).

    The index-space determinant equals the physical one for a field expressed in the voxel units of
    its own grid (the grid's affine cancels), so this serves any spacing and direction.

    Args:
        u: ``(B, 3, D, H, W)`` displacement in voxel units, channels ``(i, j, k)``.

    Returns:
        ``(B, D, H, W)`` determinants (1 = volume preserved, <= 0 = folding).
    """
    _check_field(u)
    # derivative of every component along i (W, dim 4), j (H, dim 3), k (D, dim 2)
    grads = [torch.gradient(u, dim=dim)[0] for dim in (4, 3, 2)]
    j = [[grads[col][:, row] + (1.0 if row == col else 0.0) for col in range(3)] for row in range(3)]
    return (
        j[0][0] * (j[1][1] * j[2][2] - j[1][2] * j[2][1])
        - j[0][1] * (j[1][0] * j[2][2] - j[1][2] * j[2][0])
        + j[0][2] * (j[1][0] * j[2][1] - j[1][1] * j[2][0])
    )


def jacobian_stats(u: torch.Tensor, mask: torch.Tensor | None = None) -> dict[str, float]:
    """Folding and smoothness of a displacement field.

    Args:
        u: ``(B, 3, D, H, W)`` displacement in voxel units.
        mask: optional ``(B, D, H, W)`` boolean region to evaluate (default: every voxel).

    Returns:
        ``{"folding_percent": % voxels with |J| <= 0, "std_log_jacobian": std of log |J| over voxels
        with |J| > 0, "min_jacobian", "max_jacobian"}``.
    """
    det = jacobian_determinant(u.float())
    if mask is not None:
        det = det[mask.bool()]
    det = det.reshape(-1)
    positive = det[det > 0]
    return {
        "folding_percent": float((det <= 0).double().mean() * 100.0),
        "std_log_jacobian": float(positive.log().std()) if positive.numel() > 1 else float("nan"),
        "min_jacobian": float(det.min()),
        "max_jacobian": float(det.max()),
    }
