"""Write the simulated hemorrhage dataset (nnU-Net raw layout) used to train and benchmark the demo model.

Usage::

    python benchmarks/hemorrhage/make_simulated_dataset.py OUTPUT_DIR \
        [--ct ../shared/data/head_ct/invesalius_ct0051_head.nii.gz] [--bleed-train 60] [--no-bleed-train 20] \
        [--bleed-test 20] [--no-bleed-test 5] [--unlabelled 0] [--seed 0] [--resume] \
        [--acquisitions none|training|held-out]

``--acquisitions`` re-scans every case with an acquisition drawn from the training ranges or the
held-out ranges (thick and strongly tilted, an unseen kernel; see
:mod:`SlicerMedFuse.hemorrhage.acquisition`) and varies its anatomy; ``none`` keeps the CT's own.

Training and held-out cases use disjoint seeds; the same arguments give the same dataset.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from SlicerMedFuse.hemorrhage.acquisition import HELD_OUT_ACQUISITIONS, TRAINING_ACQUISITIONS
from SlicerMedFuse.hemorrhage.simulated_dataset import SimulatedDatasetSpec, write_simulated_dataset
from SlicerMedFuse.progress import make_progress

ACQUISITIONS = {"none": None, "training": TRAINING_ACQUISITIONS, "held-out": HELD_OUT_ACQUISITIONS}
DEFAULT_CT = Path(__file__).resolve().parents[3] / "shared" / "data" / "head_ct" / "invesalius_ct0051_head.nii.gz"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="dataset folder to create")
    parser.add_argument("--ct", type=Path, default=DEFAULT_CT, help="real head CT without hemorrhage (HU)")
    defaults = SimulatedDatasetSpec()
    for name in ("bleed_train", "no_bleed_train", "bleed_test", "no_bleed_test", "unlabelled", "seed"):
        parser.add_argument("--" + name.replace("_", "-"), type=int, default=getattr(defaults, name))
    parser.add_argument("--resume", action="store_true", help="keep the cases an interrupted run already wrote")
    parser.add_argument("--acquisitions", choices=tuple(ACQUISITIONS), default="none", help="re-scan every case")
    args = parser.parse_args(argv)
    spec = SimulatedDatasetSpec(
        bleed_train=args.bleed_train,
        no_bleed_train=args.no_bleed_train,
        bleed_test=args.bleed_test,
        no_bleed_test=args.no_bleed_test,
        unlabelled=args.unlabelled,
        seed=args.seed,
        acquisitions=ACQUISITIONS[args.acquisitions],
    )
    progress = make_progress("bar" if sys.stderr.isatty() else "none")
    root = write_simulated_dataset(args.ct, args.output, spec, progress=progress, resume=args.resume)
    print(root)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
