"""Local gateway commands.

python -m infra.local.gateway serve [--port 3000] [--isolate]
python -m infra.local.gateway invoke AuthFunction --event events/auth/get_public_key.json
"""

import argparse
import json
import sys
from pathlib import Path

from ...deploy.template import load
from .invoke import LocalGateway, serve_worker


def _overrides(pairs: list[str]) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in pairs)


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
    worker = commands.add_parser("worker", help=argparse.SUPPRESS)
    worker.add_argument("function")
    args = parser.parse_args(argv)

    if args.command == "serve":
        from .server import serve as run_server

        run_server(args.host, args.port, isolate=args.isolate, parameter_overrides=_overrides(args.parameter_overrides))
    elif args.command == "invoke":
        text = sys.stdin.read() if args.event == "-" else Path(args.event).read_text()
        out, sys.stdout = sys.stdout, sys.stderr  # the function's logs go to stderr, the result to stdout
        result = LocalGateway().invoke(args.function, json.loads(text))
        out.write(json.dumps(result, indent=2) + "\n")
    else:
        serve_worker(args.function)
    return 0


if __name__ == "__main__":
    sys.exit(main())
