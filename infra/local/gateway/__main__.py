"""Local gateway commands.

python -m infra.local.gateway serve [--port 3000] [--isolate]
python -m infra.local.gateway invoke AuthFunction --event events/auth/get_public_key.json [--token T] [--dev]
"""

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from ...deploy.template import load
from .invoke import LocalGateway, serve_worker


def _overrides(pairs: list[str]) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in pairs)


def with_token(event: dict[str, Any], token: str) -> dict[str, Any]:
    """The event with `token` in its Authorization header and wherever `<access-token>` stands."""
    token = token.removeprefix("Bearer ").strip()
    filled: dict[str, Any] = json.loads(json.dumps(event).replace("<access-token>", token))
    filled.setdefault("headers", {})["authorization"] = f"Bearer {token}"
    return filled


def use_dev_datastores() -> None:
    """The environment `make dev` gives its processes: its database, Redis, MongoDB, S3 and keys
    (not the in-memory defaults), so a token from `make token` is valid here too."""
    from ..dev import listening, plan

    current = plan(dict(os.environ))
    os.environ.update(current.env)
    redis = int(os.environ.get("DEV_REDIS_PORT", "6390"))
    if "redis" in current.processes and not listening(redis):
        print(f"make invoke: nothing listens on {redis} (make dev's Redis): start `make dev` first", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m infra.local.gateway", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="serve every HttpApi route of template.yaml over HTTP")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=3000)
    serve.add_argument("--isolate", action="store_true", help="run each function in its own process (cold starts)")
    serve.add_argument("--parameter-overrides", nargs="*", default=[], metavar="KEY=VALUE")
    invoke = commands.add_parser("invoke", help="invoke one function with an event file, like `sam local invoke`")
    invoke.add_argument("function", choices=sorted(load().functions))
    invoke.add_argument("--event", "-e", required=True, help="event JSON file, or - for standard input")
    invoke.add_argument("--token", help="access token for the event's Authorization header (<access-token>)")
    invoke.add_argument("--dev", action="store_true", help="on the datastores and keys of `make dev`")
    worker = commands.add_parser("worker", help=argparse.SUPPRESS)
    worker.add_argument("function")
    args = parser.parse_args(argv)

    if args.command == "serve":
        from .server import serve as run_server

        run_server(args.host, args.port, isolate=args.isolate, parameter_overrides=_overrides(args.parameter_overrides))
    elif args.command == "invoke":
        text = sys.stdin.read() if args.event == "-" else Path(args.event).read_text()
        if args.dev:
            use_dev_datastores()
        event = with_token(json.loads(text), args.token) if args.token else json.loads(text)
        out, sys.stdout = sys.stdout, sys.stderr  # the function's logs go to stderr, the result to stdout
        result = LocalGateway().invoke(args.function, event)
        out.write(json.dumps(result, indent=2) + "\n")
    else:
        serve_worker(args.function)
    return 0


if __name__ == "__main__":
    sys.exit(main())
