"""Image similarity terms for registration: LNCC, MIND-SSC and MSE on ``(B, C, D, H, W)`` tensors.

All losses are *minimised* (lower = more similar). Volumes follow torch's ``(B, C, D, H, W)``
layout, i.e. SimpleITK's array order ``(k, j, i)`` with a batch and channel axis in front.

Two forms are offered:

* functions (:func:`lncc_loss`, :func:`mind_loss`, :func:`mse_loss`) comparing two images;
* :class:`Similarity` objects built once from the fixed image, which pre-compute what depends
  only on the fixed image (local means and variances for LNCC, descriptors for MIND) and say which
  representation of the moving image is warped (:meth:`Similarity.features`): the image itself
  for LNCC/MSE and its MIND descriptor for MIND-SSC, as in Heinrich et al.'s instance optimisation.

References:
    Local normalised cross-correlation with a 7^3 window: Mok et al., Neural Instance
    Optimization, MLMI 2023 (Sect. 2.3), squared form as in VoxelMorph/TransMorph.
    MIND-SSC: Heinrich et al., "Towards realtime multimodal fusion for image-guided interventions
    using self-similarities", MICCAI 2013.
"""

from __future__ import annotations

import abc

import torch
import torch.nn.functional as F

from SlicerMedFuse.registration.options import SIMILARITIES

__all__ = [
    "SIMILARITIES",
    "LNCC",
    "MINDSSC",
    "MSE",
    "Similarity",
    "box_filter",
    "lncc_loss",
    "lncc_map",
    "make_similarity",
    "mind_loss",
    "mind_ssc",
    "mse_loss",
]


_EPS = 1e-5


def _check_volume(x: torch.Tensor, name: str) -> None:
    if x.dim() != 5:
        raise ValueError(f"{name} must be a (B, C, D, H, W) tensor, got shape {tuple(x.shape)}")


# Up to this radius shifted adds beat running sums (2 r in-place adds per axis against a padded
# copy, a cumulative sum and a difference), and they add no cancellation error.
_DIRECT_RADIUS = 3


def _box_sums(x: torch.Tensor, radius: int, padding: str) -> torch.Tensor:
    """Window sums along each axis: shifted adds for small windows, else running sums (no autograd graph needed)."""
    if radius <= _DIRECT_RADIUS:
        return _shifted_box_sums(x, radius, padding)
    size = 2 * radius + 1
    for dim in (2, 3, 4):
        n = x.shape[dim]
        pad = [0] * 6
        slot = (4 - dim) * 2  # F.pad lists the last axis first
        pad[slot], pad[slot + 1] = radius + 1, radius
        if padding == "zeros":
            padded = F.pad(x, pad)
        else:
            padded = F.pad(x, pad, mode="replicate")
            # the extra leading sample only anchors the running sum: make it zero
            padded = padded.narrow(dim, 1, padded.shape[dim] - 1)
            padded = F.pad(padded, [1 if i == slot else 0 for i in range(6)])
        summed = padded.cumsum(dim)
        x = summed.narrow(dim, size, n) - summed.narrow(dim, 0, n)
    return x


def _shifted_box_sums(x: torch.Tensor, radius: int, padding: str) -> torch.Tensor:
    for dim in (2, 3, 4):
        n = x.shape[dim]
        if padding == "zeros":
            out = x.clone()
            for shift in range(1, min(radius, n - 1) + 1):
                out.narrow(dim, shift, n - shift).add_(x.narrow(dim, 0, n - shift))
                out.narrow(dim, 0, n - shift).add_(x.narrow(dim, shift, n - shift))
        else:
            pad = [0] * 6
            slot = (4 - dim) * 2  # F.pad lists the last axis first
            pad[slot] = pad[slot + 1] = radius
            padded = F.pad(x, pad, mode="replicate")
            out = padded.narrow(dim, 0, n).clone()
            for shift in range(1, 2 * radius + 1):
                out.add_(padded.narrow(dim, shift, n))
        x = out
    return x


class _ZeroPaddedBoxMean(torch.autograd.Function):
    """Zero-padded box mean; it is self-adjoint, so its backward pass is the same filter (no graph kept)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, radius: int) -> torch.Tensor:  # type: ignore[override]
        ctx.radius = radius
        return _box_sums(x, radius, "zeros") / (2 * radius + 1) ** 3

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        return _box_sums(grad, ctx.radius, "zeros") / (2 * ctx.radius + 1) ** 3, None


def box_filter(x: torch.Tensor, radius: int, *, padding: str = "zeros", mean: bool = True) -> torch.Tensor:
    """Box filter over a ``(2 radius + 1)^3`` window by running sums (cost independent of the window size).

    Args:
        x: ``(B, C, D, H, W)`` volume.
        radius: half window size in voxels (3 gives the 7^3 window).
        padding: ``"zeros"`` (outside counts as 0, like a zero-padded convolution) or
            ``"replicate"`` (edge values repeated).
        mean: divide by the window volume (a local mean) instead of returning local sums.

    Returns:
        A tensor of the shape of ``x``. With zero padding and ``mean`` the backward pass is the
        same filter (a custom autograd function), which keeps memory and time low.
    """
    _check_volume(x, "x")
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    if padding not in ("zeros", "replicate"):
        raise ValueError(f"padding must be 'zeros' or 'replicate', got {padding!r}")
    if radius == 0:
        return x
    if padding == "zeros" and mean:
        return _ZeroPaddedBoxMean.apply(x, radius)
    sums = _box_sums(x, radius, padding)
    return sums / (2 * radius + 1) ** 3 if mean else sums


def _weighted_mean(values: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    if weight is None:
        return values.mean()
    total = weight.sum() * (values.shape[1] / weight.shape[1])
    return (values * weight).sum() / total.clamp_min(_EPS)


def lncc_map(fixed: torch.Tensor, moving: torch.Tensor, window: int = 7) -> torch.Tensor:
    """Squared local normalised cross-correlation at every voxel, in [0, 1].

    Args:
        fixed: ``(B, 1, D, H, W)`` image.
        moving: ``(B, 1, D, H, W)`` image on the same grid.
        window: odd window edge length in voxels.

    Returns:
        ``(B, 1, D, H, W)`` map of ``cov^2 / (var_f var_m + eps)``.
    """
    _check_volume(fixed, "fixed")
    _check_volume(moving, "moving")
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be a positive odd number, got {window}")
    stats = box_filter(torch.cat([fixed, moving, fixed * fixed, moving * moving, fixed * moving], 1), window // 2)
    mf, mm, ff, mm2, fm = stats.split(fixed.shape[1], dim=1)
    cross = fm - mf * mm
    return cross * cross / ((ff - mf * mf).clamp_min(0) * (mm2 - mm * mm).clamp_min(0) + _EPS)


def lncc_loss(
    fixed: torch.Tensor, moving: torch.Tensor, window: int = 7, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Negative mean squared LNCC (-1 = perfect correlation everywhere, 0 = none).

    Args:
        fixed, moving: ``(B, 1, D, H, W)`` images on the same grid.
        window: odd window edge length in voxels (7 in the NIO paper).
        weight: optional ``(B, 1, D, H, W)`` voxel weights (a mask); the mean is weighted.
    """
    return -_weighted_mean(lncc_map(fixed, moving, window), weight)


def mse_loss(fixed: torch.Tensor, moving: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
    """Mean squared difference, optionally weighted by ``weight`` ``(B, 1, D, H, W)``."""
    _check_volume(fixed, "fixed")
    _check_volume(moving, "moving")
    return _weighted_mean((fixed - moving) ** 2, weight)


# Six face neighbours of the centre of a 3x3x3 stencil (offsets in voxels, later times the dilation),
# and the 12 pairs of them at squared distance 2: the self-similarity context of MIND-SSC.
_SIX = torch.tensor([[0, 1, 1], [1, 1, 0], [1, 0, 1], [1, 1, 2], [2, 1, 1], [1, 2, 1]]) - 1
_PAIRS = [(a, b) for a in range(6) for b in range(a) if int(((_SIX[a] - _SIX[b]) ** 2).sum()) == 2]


def mind_ssc(image: torch.Tensor, radius: int = 1, dilation: int = 2) -> torch.Tensor:
    """MIND-SSC descriptor (Heinrich et al., MICCAI 2013): 12 self-similarity channels per voxel.

    Follows the authors' public PyTorch implementation (used in ConvexAdam, the instance
    optimisation the NIO paper compares against): patch distances between the 12 pairs of
    six-neighbourhood voxels at distance ``dilation``, averaged over a ``(2 radius + 1)^3`` patch
    (replicate padding), minus their minimum, divided by their mean (clamped to 0.001..1000 times
    its global mean), and passed through ``exp(-x)``. ConvexAdam's defaults are radius 1, dilation 2.
    The channel order differs from the C++ code's (irrelevant for the squared-distance loss).

    Args:
        image: ``(B, 1, D, H, W)`` image.
        radius: patch radius in voxels.
        dilation: distance of the six neighbours from the centre, in voxels.

    Returns:
        ``(B, 12, D, H, W)`` descriptor in (0, 1].
    """
    _check_volume(image, "image")
    if image.shape[1] != 1:
        raise ValueError(f"mind_ssc needs a single-channel image, got {image.shape[1]} channels")
    if radius < 0 or dilation < 1:
        raise ValueError(f"need radius >= 0 and dilation >= 1, got {radius} and {dilation}")
    d = dilation
    padded = F.pad(image, [d] * 6, mode="replicate")
    shape = image.shape[2:]

    def shifted(offset: torch.Tensor) -> torch.Tensor:
        z, y, x = (int(o) * d + d for o in offset)
        return padded[:, :, z : z + shape[0], y : y + shape[1], x : x + shape[2]]

    ssd = torch.cat([(shifted(_SIX[a]) - shifted(_SIX[b])) ** 2 for a, b in _PAIRS], dim=1)
    ssd = box_filter(ssd, radius, padding="replicate")
    mind = ssd - ssd.min(dim=1, keepdim=True).values
    variance = mind.mean(dim=1, keepdim=True)
    level = variance.mean()
    variance = variance.clamp(min=float(level) * 0.001 + 1e-12, max=float(level) * 1000 + 1e-12)
    return torch.exp(-mind / variance)


def mind_loss(
    fixed: torch.Tensor, moving: torch.Tensor, radius: int = 1, dilation: int = 2, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean squared difference of the MIND-SSC descriptors of two images (modality independent)."""
    return _weighted_mean((mind_ssc(fixed, radius, dilation) - mind_ssc(moving, radius, dilation)) ** 2, weight)


class Similarity(abc.ABC):
    """A similarity term bound to one fixed image.

    Usage in an optimisation loop::

        term = make_similarity("lncc", fixed)
        moving_features = term.features(moving)           # once per pyramid level
        loss = term(warp(moving_features, displacement))  # each iteration

    Args:
        fixed: ``(B, 1, D, H, W)`` fixed image.
    """

    name: str = ""

    def __init__(self, fixed: torch.Tensor) -> None:
        _check_volume(fixed, "fixed")
        self.fixed = fixed

    def features(self, moving: torch.Tensor) -> torch.Tensor:
        """The representation of the moving image that is warped (default: the image)."""
        _check_volume(moving, "moving")
        return moving

    @abc.abstractmethod
    def __call__(self, warped: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """Loss between the fixed image and warped moving features; weight is ``(B, 1, D, H, W)``."""


class LNCC(Similarity):
    """Negative squared LNCC with the fixed image's local statistics pre-computed.

    The stabiliser ``eps`` in ``cov^2 / (var_f var_m + eps)`` is relative: ``relative_eps`` times the
    mean local variances of both images (the moving one is measured in :meth:`features`). A fixed
    constant (VoxelMorph's 1e-5 for 0..1 images) silences homogeneous tissue such as white matter,
    where local variances are ~1e-4, and cost 0.05 Dice on the real-T1 benchmark; the relative form
    also makes the loss independent of the intensity scale. Both images are centred on their mean,
    which LNCC ignores but which keeps the float32 variances ``<x^2> - <x>^2`` accurate.

    Args:
        fixed: ``(B, 1, D, H, W)`` fixed image.
        window: odd window edge length in voxels (default 7, the NIO paper's 7^3).
        relative_eps: see above.
    """

    name = "lncc"

    def __init__(self, fixed: torch.Tensor, window: int = 7, relative_eps: float = 1e-3) -> None:
        super().__init__(fixed)
        if window < 1 or window % 2 == 0:
            raise ValueError(f"window must be a positive odd number, got {window}")
        self.radius = window // 2
        self.relative_eps = relative_eps
        with torch.no_grad():
            self.fixed = fixed - fixed.mean()
            stats = box_filter(torch.cat([self.fixed, self.fixed * self.fixed], 1), self.radius)
            self.fixed_mean = stats[:, :1]
            self.fixed_var = (stats[:, 1:] - self.fixed_mean**2).clamp_min(0)
            self._fixed_level = float(self.fixed_var.mean())
            self.eps = relative_eps * self._fixed_level**2 + 1e-20

    def features(self, moving: torch.Tensor) -> torch.Tensor:
        """The moving image centred on its mean; also sets ``eps`` from its mean local variance."""
        _check_volume(moving, "moving")
        with torch.no_grad():
            centred = moving - moving.mean()
            stats = box_filter(torch.cat([centred, centred * centred], 1), self.radius)
            level = float((stats[:, 1:] - stats[:, :1] ** 2).clamp_min(0).mean())
            self.eps = self.relative_eps * self._fixed_level * level + 1e-20
        return centred

    def __call__(self, warped: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        if warped.shape != self.fixed.shape:
            raise ValueError(
                f"warped image {tuple(warped.shape)} does not match the fixed image {tuple(self.fixed.shape)}"
            )
        if weight is None:
            omega = torch.full((), 1.0 / warped.numel(), dtype=warped.dtype, device=warped.device)
        else:
            omega = weight / weight.sum().clamp_min(_EPS)
        return _FixedLNCC.apply(warped, self.fixed, self.fixed_mean, self.fixed_var, omega, self.radius, self.eps)


class _FixedLNCC(torch.autograd.Function):
    """``-sum(omega * cc)`` with an analytic gradient (one 4-channel box filter in the backward pass).

    With window means ``mu_m, mu_f`` and ``A = <fm> - mu_f mu_m``, ``B = var_f``, ``C = <mm> - mu_m^2``,
    ``cc = A^2 / (B C + eps)``. Since the box kernel is symmetric,
    ``dL/dM = -[F box(w a) - box(w a mu_f) + 2 M box(w b) - 2 box(w b mu_m)]`` with
    ``a = 2 A / (B C + eps)`` and ``b = -A^2 B / (B C + eps)^2``.
    """

    @staticmethod
    def forward(ctx, moving, fixed, fixed_mean, fixed_var, omega, radius, eps):  # type: ignore[override]
        # written with in-place and fused ops: this runs every iteration on the finest grid
        stats = torch.empty((moving.shape[0], 3, *moving.shape[2:]), dtype=moving.dtype, device=moving.device)
        stats[:, :1] = moving
        torch.mul(moving, moving, out=stats[:, 1:2])
        torch.mul(moving, fixed, out=stats[:, 2:])
        stats = _box_sums(stats, radius, "zeros").mul_(1.0 / (2 * radius + 1) ** 3)
        mean_m, mean_mm, mean_fm = stats[:, :1], stats[:, 1:2], stats[:, 2:]
        cross = torch.addcmul(mean_fm, fixed_mean, mean_m, value=-1.0)
        var_m = torch.addcmul(mean_mm, mean_m, mean_m, value=-1.0).clamp_min_(0)
        inverse = var_m.mul_(fixed_var).add_(eps).reciprocal_()  # 1 / (B C + eps)
        ratio = cross * inverse  # A / (B C + eps)
        cc = ratio * cross
        weighted = omega.dim() > 0
        loss = -(omega * cc).sum() if weighted else -(cc.sum() * omega)
        if ctx.needs_input_grad[0]:
            a = ratio.mul_(2.0)
            b = cc.mul_(inverse).mul_(fixed_var)  # -b = A^2 B / (B C + eps)^2
            if weighted:
                a.mul_(omega)
                b.mul_(omega)
            ctx.save_for_backward(moving, fixed, fixed_mean, mean_m, a, b, omega)
            ctx.radius, ctx.weighted = radius, weighted
        return loss

    @staticmethod
    def backward(ctx, grad):  # type: ignore[override]
        moving, fixed, fixed_mean, mean_m, a, b, omega = ctx.saved_tensors
        radius = ctx.radius
        sums = torch.empty((a.shape[0], 4, *a.shape[2:]), dtype=a.dtype, device=a.device)
        sums[:, :1] = a
        torch.mul(a, fixed_mean, out=sums[:, 1:2])
        sums[:, 2:3] = b
        torch.mul(b, mean_m, out=sums[:, 3:])
        sums = _box_sums(sums, radius, "zeros")
        gradient = fixed * sums[:, :1]
        gradient.sub_(sums[:, 1:2]).addcmul_(moving, sums[:, 2:3], value=-2.0).add_(sums[:, 3:], alpha=2.0)
        scale = -grad / (2 * radius + 1) ** 3
        if not ctx.weighted:
            scale = scale * omega
        return gradient.mul_(scale), None, None, None, None, None, None


class MINDSSC(Similarity):
    """Mean squared difference of MIND-SSC descriptors; the moving descriptor is what gets warped.

    Args:
        fixed: ``(B, 1, D, H, W)`` fixed image.
        radius: MIND patch radius in voxels.
        dilation: MIND neighbour distance in voxels.
    """

    name = "mind"

    def __init__(self, fixed: torch.Tensor, radius: int = 1, dilation: int = 2) -> None:
        super().__init__(fixed)
        self.radius, self.dilation = radius, dilation
        with torch.no_grad():
            self.fixed_features = mind_ssc(fixed, radius, dilation)

    @classmethod
    def from_descriptors(cls, fixed_features: torch.Tensor, radius: int = 1, dilation: int = 2) -> MINDSSC:
        """A term on pre-computed fixed descriptors ``(B, 12, D, H, W)`` (e.g. pooled from a finer grid)."""
        _check_volume(fixed_features, "fixed_features")
        term = cls.__new__(cls)
        term.fixed, term.fixed_features = fixed_features, fixed_features
        term.radius, term.dilation = radius, dilation
        return term

    def features(self, moving: torch.Tensor) -> torch.Tensor:
        _check_volume(moving, "moving")
        with torch.no_grad():
            return mind_ssc(moving, self.radius, self.dilation)

    def __call__(self, warped: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        return _weighted_mean((warped - self.fixed_features) ** 2, weight)


class MSE(Similarity):
    """Mean squared intensity difference (same modality, same intensity scale)."""

    name = "mse"

    def __call__(self, warped: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        return mse_loss(self.fixed, warped, weight)


def make_similarity(
    name: str, fixed: torch.Tensor, *, window: int = 7, mind_radius: int = 1, mind_dilation: int = 2
) -> Similarity:
    """A :class:`Similarity` by name: ``"lncc"``, ``"mind"`` (MIND-SSC) or ``"mse"``.

    Raises:
        ValueError: an unknown name.
    """
    if name == "lncc":
        return LNCC(fixed, window)
    if name == "mind":
        return MINDSSC(fixed, mind_radius, mind_dilation)
    if name == "mse":
        return MSE(fixed)
    raise ValueError(f"similarity must be one of {', '.join(SIMILARITIES)}; got {name!r}")
