"""Run the Socket.IO server: python -m infra.services.realtime [--host 0.0.0.0] [--port 3001]."""

import argparse
import sys

import uvicorn

from multidb import logs
from multidb.settings import get_settings

from .server import create_app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The Socket.IO server")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3001)
    args = parser.parse_args(argv)
    logs.configure(get_settings().log_level)
    print(f"Socket.IO server on http://{args.host}:{args.port}", flush=True)
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main())
