"""Training-free multi-modal registration: linear alignment plus deformable instance optimisation.

Public API::

    from SlicerMedFuse.registration import register, load_preset
    result = register(fixed, moving, load_preset("fast") | {"gamma": 30.0})
    sitk.WriteTransform(result.transform(), "fixed_to_moving.h5")

Names are imported lazily (torch loads on first use). Modules, one concept each: :mod:`.similarity` (LNCC, MIND-SSC, MSE), :mod:`.regularizers`
(diffusion, implicit FFT solvers, Jacobians), :mod:`.transforms` (physical fields, ITK export; the
voxel-unit warping, composition and scaling and squaring are :mod:`SlicerMedFuse.nets.warping`), :mod:`.affine` (initialisation, rigid, affine), :mod:`.instance_optimization`
(the pyramid optimisation), :mod:`.presets` (JSON presets and parameters), :mod:`.options` (option names), :mod:`.pipeline`
(SimpleITK images in, one ITK displacement field out).

References: Mok et al., Neural Instance Optimization (MLMI 2023); Ehrhardt & Handels, Implicitly
Solved Regularization for Learning-Based Image Registration (MLMI 2023); Heinrich et al., MIND-SSC
(MICCAI 2013).
"""

from __future__ import annotations

from SlicerMedFuse.lazy import lazy_attributes

# Imported on first use, so that reading presets or listing tasks does not import torch.
_LAZY = {
    "AffineConfig": "SlicerMedFuse.registration.affine",
    "AffineResult": "SlicerMedFuse.registration.affine",
    "register_affine": "SlicerMedFuse.registration.affine",
    "DeformableConfig": "SlicerMedFuse.registration.instance_optimization",
    "DeformableResult": "SlicerMedFuse.registration.instance_optimization",
    "optimize_displacement": "SlicerMedFuse.registration.instance_optimization",
    "RegistrationResult": "SlicerMedFuse.registration.pipeline",
    "register": "SlicerMedFuse.registration.pipeline",
    "PARAMETERS": "SlicerMedFuse.registration.presets",
    "PRESETS": "SlicerMedFuse.registration.presets",
    "RegistrationSettings": "SlicerMedFuse.registration.presets",
    "load_preset": "SlicerMedFuse.registration.presets",
    "settings_from_parameters": "SlicerMedFuse.registration.presets",
    "ImplicitSmoother": "SlicerMedFuse.registration.regularizers",
    "diffusion_loss": "SlicerMedFuse.registration.regularizers",
    "jacobian_determinant": "SlicerMedFuse.registration.regularizers",
    "jacobian_stats": "SlicerMedFuse.registration.regularizers",
    "LNCC": "SlicerMedFuse.registration.similarity",
    "MINDSSC": "SlicerMedFuse.registration.similarity",
    "MSE": "SlicerMedFuse.registration.similarity",
    "lncc_loss": "SlicerMedFuse.registration.similarity",
    "make_similarity": "SlicerMedFuse.registration.similarity",
    "mind_loss": "SlicerMedFuse.registration.similarity",
    "mind_ssc": "SlicerMedFuse.registration.similarity",
    "mse_loss": "SlicerMedFuse.registration.similarity",
    "compose": "SlicerMedFuse.nets.warping",
    "displacement_field_image": "SlicerMedFuse.registration.transforms",
    "displacement_to_physical": "SlicerMedFuse.registration.transforms",
    "displacement_transform": "SlicerMedFuse.registration.transforms",
    "integrate_velocity": "SlicerMedFuse.nets.warping",
    "resample_labels": "SlicerMedFuse.registration.transforms",
    "warp": "SlicerMedFuse.nets.warping",
    "warp_labels": "SlicerMedFuse.nets.warping",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_attributes(__name__, _LAZY, lambda: list(globals()))
