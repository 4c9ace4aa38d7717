"""Run one registration method on one pair and write its displacement field (one process per method).

Usage::

    python run_method.py METHOD FIXED MOVING OUT_FIELD OUT_JSON [--threads 1] [--affine-first]

METHOD is ``medfuse-<preset>`` (SlicerMedFuse's ``fast``, ``accurate``, ``diffeomorphic`` or
``multimodal``, run with the project venv),
``ants-syn`` (antspyx ``SyN``, which includes its affine stage) or ``elastix-bspline``
(itk-elastix, the default B-spline parameter map, after the default affine map with
``--affine-first``); the peers run in a separate venv
(``/work/bench-venv``) because antspyx pins older numpy/scipy. The field is written as an ITK
displacement field (LPS mm, fixed point -> moving point) on the fixed grid, and OUT_JSON holds the
wall and CPU time of the registration call itself (imports and file reading excluded). Peak memory:
``run_benchmark.py`` starts this script through ``benchmarks/harness.py``, whose launcher reads the
process's own VmHWM when it ends.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from SlicerMedFuse.registration.presets import PRESETS  # torch-free; the peers' venv has the package too


def _clock() -> tuple[float, float]:
    return time.perf_counter(), time.process_time()


def _lap(started: tuple[float, float]) -> dict:
    """Wall and CPU seconds since ``started`` (CPU of this process, all its threads)."""
    return {"registration_s": time.perf_counter() - started[0], "registration_cpu_s": time.process_time() - started[1]}


def _medfuse(preset: str, fixed_path: str, moving_path: str, out_field: str) -> tuple[dict, dict]:
    import SimpleITK as sitk
    import torch

    from SlicerMedFuse.memory import reuse_freed_memory
    from SlicerMedFuse.registration import load_preset, register

    reuse_freed_memory()  # as the backend's command line (`medfuse run`) does
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    fixed, moving = sitk.ReadImage(fixed_path), sitk.ReadImage(moving_path)
    started = _clock()
    result = register(fixed, moving, load_preset(preset))
    seconds = _lap(started)
    sitk.WriteImage(result.displacement, out_field)
    return seconds, {"report": result.report}


def _ants(fixed_path: str, moving_path: str, out_field: str) -> tuple[dict, dict]:
    import ants
    import SimpleITK as sitk

    fixed, moving = ants.image_read(fixed_path), ants.image_read(moving_path)
    started = _clock()
    registration = ants.registration(fixed, moving, type_of_transform="SyN")
    with tempfile.TemporaryDirectory() as folder:
        composed = ants.apply_transforms(
            fixed, moving, transformlist=registration["fwdtransforms"], compose=str(Path(folder) / "c")
        )
        seconds = _lap(started)
        field = sitk.ReadImage(composed, sitk.sitkVectorFloat64)
    sitk.WriteImage(field, out_field)
    return seconds, {"transforms": [Path(t).name for t in registration["fwdtransforms"]]}


def _elastix(fixed_path: str, moving_path: str, out_field: str, affine_first: bool) -> tuple[dict, dict]:
    import itk
    import numpy as np
    import SimpleITK as sitk

    fixed = itk.imread(fixed_path, itk.F)
    moving = itk.imread(moving_path, itk.F)
    parameters = itk.ParameterObject.New()
    maps = ["affine", "bspline"] if affine_first else ["bspline"]
    for name in maps:
        parameters.AddParameterMap(parameters.GetDefaultParameterMap(name))
    started = _clock()
    # threads come from ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS (the number_of_threads argument crashes itk-elastix 0.25.4)
    _, transform_parameters = itk.elastix_registration_method(
        fixed, moving, parameter_object=parameters, log_to_console=False
    )
    field = itk.transformix_deformation_field(moving, transform_parameters)
    seconds = _lap(started)
    array = np.asarray(itk.array_from_image(field), dtype=np.float64)  # (D, H, W, 3) LPS mm
    reference = sitk.ReadImage(fixed_path)
    image = sitk.GetImageFromArray(array, isVector=True)
    image.CopyInformation(reference)
    sitk.WriteImage(image, out_field)
    return seconds, {"parameter_maps": [f"default {name}" for name in maps]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "method",
        choices=[*(f"medfuse-{name}" for name in PRESETS), "ants-syn", "elastix-bspline"],
    )
    parser.add_argument("fixed")
    parser.add_argument("moving")
    parser.add_argument("out_field")
    parser.add_argument("out_json")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--affine-first", action="store_true", help="elastix: default affine map before the B-spline map"
    )
    args = parser.parse_args()
    if args.method.startswith("medfuse-"):
        seconds, extra = _medfuse(args.method.split("-", 1)[1], args.fixed, args.moving, args.out_field)
    elif args.method == "ants-syn":
        seconds, extra = _ants(args.fixed, args.moving, args.out_field)
    else:
        seconds, extra = _elastix(args.fixed, args.moving, args.out_field, args.affine_first)
    info = {"method": args.method, **seconds, **extra}
    Path(args.out_json).write_text(json.dumps(info, default=str))


if __name__ == "__main__":
    main()
