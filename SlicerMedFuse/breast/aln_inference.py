"""ALN-metastasis probability of one case with an ``aln-metastasis`` bundle.

:class:`AlnClassifier` loads a bundle once (its manifest's :class:`~SlicerMedFuse.breast.aln_input.AlnPreprocessing`
and the :class:`~SlicerMedFuse.nets.classifier.TransferModuleClassifier`) and turns a case --
images by role, an optional lesion label, the ten clinical values -- into an :class:`AlnPrediction`:

1. the lesion-centred cube of every sequence (:func:`~SlicerMedFuse.breast.aln_input.crop_sequences`;
   an absent optional sequence is zeros, as the bundle declares);
2. the clinical values, checked and z-scored with the bundle's training statistics;
3. one logit -> sigmoid -> probability; ``probability >= threshold`` is "positive".

The task (:mod:`SlicerMedFuse.tasks.aln_metastasis`), the held-out evaluation and the benchmark all
go through :meth:`AlnClassifier.predict`, so they measure what the user runs.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import SimpleITK as sitk

from SlicerMedFuse.breast.aln_clinical import check_clinical, clinical_array
from SlicerMedFuse.breast.aln_input import AlnPreprocessing, LesionCrop, crop_sequences, lesion_crop
from SlicerMedFuse.breast.aln_simulator import ALN_SIMULATION_NOTE

if TYPE_CHECKING:
    import torch

    from SlicerMedFuse.contract import TaskSpec
    from SlicerMedFuse.models.manifest import BundleManifest

__all__ = ["AlnClassifier", "AlnPrediction"]


@dataclasses.dataclass(frozen=True)
class AlnPrediction:
    """The result for one case.

    Attributes:
        probability: Probability of axillary lymph node metastasis (0..1).
        threshold: Probability at or above which the case is called positive.
        present: Which sequences the case had, by role.
        crop: Where the image cube was taken.
        manifest: The bundle's manifest.
        warnings: Sentences for the user.
    """

    probability: float
    threshold: float
    present: dict[str, bool]
    crop: LesionCrop
    manifest: BundleManifest
    warnings: tuple[str, ...]

    @property
    def positive(self) -> bool:
        return self.probability >= self.threshold

    def report(self, crop_mm: float) -> dict[str, Any]:
        """The task's report: ``aln`` (the contract read by the Slicer panel) and how it was obtained."""
        return {
            "aln": {
                "probability": round(self.probability, 4),
                "threshold": self.threshold,
                "positive": self.positive,
                "intended_use": self.manifest.intended_use,
                "model": self.manifest.name,
            },
            "model": {
                "id": self.manifest.id,
                "version": self.manifest.version,
                "simulated_training": self.manifest.simulated_training,
            },
            "sequences_present": self.present,
            "crop": {
                "centre_mm_lps": [round(c, 2) for c in self.crop.centre_mm],
                "size_mm": crop_mm,
                "source": self.crop.source,
            },
            "warnings": list(self.warnings),
        }


class AlnClassifier:
    """A loaded ``aln-metastasis`` bundle, ready to classify cases.

    Args:
        model: Bundle id (installed or shipped) or bundle folder.
        task_spec: The ``aln-metastasis`` task's declaration (:data:`SlicerMedFuse.specs.aln_metastasis.SPEC`),
            which the bundle must fit.
        device: Torch device for the network.

    Raises:
        ModelError: the bundle is missing, corrupt, or not an ALN-metastasis bundle.
    """

    def __init__(
        self, model: str | os.PathLike[str], *, task_spec: TaskSpec, device: str | torch.device = "cpu"
    ) -> None:
        from SlicerMedFuse.models.bundle import check_bundle_for_task, load_bundle, load_manifest
        from SlicerMedFuse.models.store import ModelStore

        folder = ModelStore().resolve(os.fspath(model))
        check_bundle_for_task(load_manifest(folder), task_spec)
        bundle = load_bundle(folder, device=device)
        self.manifest = bundle.manifest
        self.network = bundle.network
        self.device = device
        self.preprocessing = AlnPreprocessing.from_dict(
            bundle.manifest.preprocessing, f"model '{bundle.manifest.name}'"
        )

    def logits(self, cubes: np.ndarray, clinical: np.ndarray) -> np.ndarray:
        """Logits ``(N,)`` of prepared inputs: cubes ``(N, C, n, n, n)`` and raw clinical values ``(N, 10)``."""
        import torch

        with torch.inference_mode():
            images = torch.from_numpy(np.ascontiguousarray(cubes)).float().to(self.device)
            features = self.preprocessing.clinical.apply(clinical)
            clinical_tensor = torch.from_numpy(features).to(self.device) if features.shape[1] else None
            return self.network(images, clinical_tensor)[:, 0].float().cpu().numpy()

    def predict(
        self,
        images: Mapping[str, sitk.Image],
        clinical: Mapping[str, Any],
        mass: sitk.Image | None = None,
        threshold: float | None = None,
    ) -> AlnPrediction:
        """Classify one case.

        Args:
            images: 3D images by role: ``dce`` (required), ``t2w`` (optional); any grids.
            clinical: The ten clinical fields (checked here).
            mass: Optional lesion label (non-zero inside) on any grid.
            threshold: Overrides the bundle's threshold.

        Raises:
            UsageError: a clinical field is missing or out of range.
            InputError: the lesion label marks nothing or lies outside the DCE.
        """
        values = check_clinical(clinical)
        prep = self.preprocessing
        crop = lesion_crop(images["dce"], mass)
        cubes, present = crop_sequences(images, crop, prep)
        logit = float(self.logits(cubes[None], clinical_array([values]))[0])
        presence = dict(zip(prep.sequences, (bool(p) for p in present), strict=True))
        warnings = []
        if self.manifest.simulated_training:
            warnings.append(f"Model '{self.manifest.name}' was {ALN_SIMULATION_NOTE}.")
        for role, available in presence.items():
            if not available:
                warnings.append(
                    f"No {role.upper()} was given: its path saw zeros, as the model declares (it was trained with "
                    f"the {role.upper()} dropped at random); expect a less accurate probability."
                )
        if mass is None:
            warnings.append(f"No 'mass' label was given: the image crop is the {crop.source}.")
        chosen = prep.threshold if threshold is None else float(threshold)
        probability = float(1.0 / (1.0 + np.exp(-logit)))
        return AlnPrediction(probability, chosen, presence, crop, self.manifest, tuple(warnings))
