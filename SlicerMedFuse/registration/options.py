"""Names of the registration options, kept free of torch so that listing tasks and presets stays fast."""

from __future__ import annotations

__all__ = [
    "BOUNDARIES",
    "IMPLICIT_KINDS",
    "INITIALIZATIONS",
    "LINEAR_STAGES",
    "REGULARIZERS",
    "SCHEMES",
    "SIMILARITIES",
]

#: Similarity terms: LNCC (same contrast), MIND-SSC (across modalities), MSE (identical intensities).
SIMILARITIES = ("lncc", "mind", "mse")
#: Initialisations: none (identity), geometry (image centres), com (centres of mass), moments (+ principal axes).
INITIALIZATIONS = ("none", "geometry", "com", "moments")
#: Linear stages run after initialisation.
LINEAR_STAGES = ("none", "rigid", "affine")
#: Operators the implicit solver handles.
IMPLICIT_KINDS = ("diffusion", "elastic", "curvature")
#: Regulariser names: explicit diffusion (NIO Eq. 3), the implicit solvers, or none.
REGULARIZERS = ("none", "diffusion", *(f"implicit_{kind}" for kind in IMPLICIT_KINDS))
#: How an implicit regulariser enters the optimisation (see ``DeformableConfig``).
SCHEMES = ("projection", "penalty")
#: Boundary conditions of the FFT solvers (see ``ImplicitSmoother``).
BOUNDARIES = ("periodic", "neumann", "padded")
