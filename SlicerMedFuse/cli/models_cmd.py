"""``medfuse models list|install|verify|remove``: the per-user model store and the catalogs."""

from __future__ import annotations

import argparse
import json
import sys

from SlicerMedFuse.progress import Progress, make_progress


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser("models", help="list, install, verify or remove model bundles")
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    listing = actions.add_parser("list", help="installed bundles and catalog entries")
    listing.add_argument("--json", action="store_true", help="print JSON")
    install = actions.add_parser(
        "install", help="download a bundle from a catalog (or install a .zip), verified by sha256"
    )
    install.add_argument("model", help="model id, id@version, or a bundle .zip")
    install.add_argument("--force", action="store_true", help="reinstall even when a good copy is installed")
    install.add_argument("--progress", choices=("bar", "json", "none"), default=None)
    verify = actions.add_parser("verify", help="re-check an installed bundle's weights against its manifest")
    verify.add_argument("model", help="model id or id@version")
    remove = actions.add_parser("remove", help="delete an installed bundle (all versions unless id@version)")
    remove.add_argument("model", help="model id or id@version")
    parser.set_defaults(handler=handle, progress_factory=_progress_for)


def _progress_for(args: argparse.Namespace) -> Progress:
    chosen = getattr(args, "progress", None)
    return make_progress(chosen or ("bar" if sys.stderr.isatty() and args.action == "install" else "none"))


def _split(model: str) -> tuple[str, str | None]:
    model_id, _, version = model.partition("@")
    return model_id, version or None


def handle(args: argparse.Namespace, progress: Progress) -> int:
    from SlicerMedFuse.models.store import ModelStore

    store = ModelStore()
    if args.action == "list":
        return _list(store, args.json)
    if args.action == "install":
        if args.model.endswith(".zip"):
            installed = store.install_zip(args.model, force=args.force)
        else:
            model_id, version = _split(args.model)
            installed = store.install(model_id, version=version, progress=progress, force=args.force)
        print(f"installed {installed.id} {installed.version} in {installed.folder}")
        return 0
    model_id, version = _split(args.model)
    if args.action == "verify":
        result = store.verify(model_id, version)
        print(f"ok {result.id} {result.version} sha256 {result.sha256}")
        return 0
    removed = store.remove(model_id, version)
    for folder in removed:
        print(f"removed {folder}")
    return 0


def _print_model(model) -> None:
    simulated = "  [trained on simulated data]" if model.manifest.simulated_training else ""
    print(f"  {model.id}@{model.version}  task {model.manifest.task}  {model.manifest.title}{simulated}")


def _list(store, as_json: bool) -> int:
    from SlicerMedFuse.models.catalog import load_catalog

    installed = store.list_installed()
    bundled = store.list_bundled()
    catalog = load_catalog()
    installed_keys = {(m.id, m.version) for m in installed}
    available = [e for e in catalog.entries if (e.id, e.version) not in installed_keys]
    if as_json:
        print(
            json.dumps(
                {
                    "store": str(store.root),
                    "installed": [m.to_dict() for m in installed],
                    "bundled": [m.to_dict() for m in bundled],
                    "available": [e.to_dict() for e in available],
                },
                indent=2,
            )
        )
        return 0
    print(f"model store: {store.root}")
    print("installed:" if installed else "installed: none")
    for model in installed:
        _print_model(model)
    print("shipped with SlicerMedFuse (read-only, used when the store lacks the id):" if bundled else "shipped: none")
    for model in bundled:
        _print_model(model)
    print(
        "available in catalogs:"
        if available
        else "available in catalogs: none (sites can add a catalog with MEDFUSE_CATALOG)"
    )
    for entry in available:
        simulated = "  [trained on simulated data]" if entry.simulated_training else ""
        print(f"  {entry.id}@{entry.version}  task {entry.task}  {entry.size / 1e6:.1f} MB  {entry.license}{simulated}")
    return 0
