"""``medfuse serve``: run the HTTP server (FastAPI + uvicorn) for remote panels and scripts; see docs/server.md."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from SlicerMedFuse.errors import UsageError

__all__ = ["add_parser", "handle"]


def add_parser(commands: argparse._SubParsersAction) -> None:
    parser = commands.add_parser(
        "serve",
        help="serve the tasks over HTTP (token required; loopback unless told)",
        description="Serve the tasks over HTTP. Every request needs the token in $MEDFUSE_HOME/server/token "
        "(created at first start). A non-loopback --host needs TLS or --insecure-behind-proxy.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (default 8765; 0 picks a free one)")
    parser.add_argument(
        "--config", default=None, metavar="JSON", help="server config: allowed_roots, max_upload_mb, max_jobs, device"
    )
    parser.add_argument(
        "--allow-root",
        action="append",
        default=[],
        metavar="DIR",
        help="a folder whose files jobs may name (repeatable)",
    )
    parser.add_argument(
        "--max-jobs", type=int, default=None, help="jobs running at once; more wait in a queue (default 1)"
    )
    parser.add_argument("--max-upload-mb", type=int, default=None, help="largest upload per job in MiB (default 2048)")
    parser.add_argument("--device", default=None, help="compute device for every job (default auto)")
    parser.add_argument("--ssl-certfile", default=None, help="TLS certificate (PEM)")
    parser.add_argument("--ssl-keyfile", default=None, help="TLS private key (PEM)")
    parser.add_argument(
        "--insecure-behind-proxy",
        action="store_true",
        help="allow plain HTTP on a non-loopback address: only behind a TLS reverse proxy that is the only way in",
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace, _progress) -> int:
    try:
        import uvicorn

        from SlicerMedFuse.serve import ServerConfig, create_app
        from SlicerMedFuse.serve.auth import check_bind_address
        from SlicerMedFuse.serve.config import read_config_file
    except ImportError as missing:
        raise UsageError(
            f"'medfuse serve' needs {missing.name}; install it with: pip install 'SlicerMedFuse[serve]'."
        ) from None
    check_bind_address(args.host, args.ssl_certfile, args.ssl_keyfile, args.insecure_behind_proxy)
    settings = read_config_file(args.config) if args.config else {}
    if args.allow_root:
        settings["allowed_roots"] = (*settings.get("allowed_roots", ()), *(Path(root) for root in args.allow_root))
    if args.max_jobs is not None:
        settings["max_concurrent_jobs"] = args.max_jobs
    if args.max_upload_mb is not None:
        settings["max_upload_bytes"] = args.max_upload_mb * 1024 * 1024
    if args.device is not None:
        settings["device"] = args.device
    config = ServerConfig(**settings)
    app = create_app(config)
    scheme = "https" if args.ssl_certfile else "http"
    print(
        f"medfuse serve: {scheme}://{args.host}:{args.port}, jobs in {config.jobs_dir}, token in {config.home / 'token'}",
        file=sys.stderr,
    )
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        ssl_certfile=args.ssl_certfile,
        ssl_keyfile=args.ssl_keyfile,
        proxy_headers=args.insecure_behind_proxy,
        log_level="warning",
        timeout_graceful_shutdown=5,
    )
    return 0
