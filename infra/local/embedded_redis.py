"""A Redis-compatible server for local development, for machines without Redis.

    python -m infra.local.embedded_redis --port 6390 --snapshot .local/redis.json

fakeredis speaking the Redis protocol over TCP. On shutdown it writes every key (DUMP,
with its TTL) to the snapshot file and restores them on start, so a restart of `make dev`
keeps refresh tokens and sessions.
"""

import argparse
import base64
import json
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

import fakeredis


def save(client: fakeredis.FakeRedis, path: Path) -> int:
    entries = []
    for key in client.scan_iter(count=500):
        dumped = client.dump(key)
        if dumped is None:
            continue
        ttl = client.pttl(key)
        entries.append(
            {"key": base64.b64encode(key).decode(), "ttl": max(int(ttl), 0), "value": base64.b64encode(dumped).decode()}
        )
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(entries))
    tmp.replace(path)
    return len(entries)


def load(client: fakeredis.FakeRedis, path: Path) -> int:
    if not path.exists():
        return 0
    restored = 0
    for entry in json.loads(path.read_text()):
        client.restore(base64.b64decode(entry["key"]), entry["ttl"], base64.b64decode(entry["value"]), replace=True)
        restored += 1
    return restored


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=6390)
    parser.add_argument("--snapshot", type=Path, help="file that keeps the data across restarts")
    args = parser.parse_args(argv)

    server = fakeredis.TcpFakeServer((args.host, args.port), server_type="redis")
    server.daemon_threads = True
    client = fakeredis.FakeRedis(server=server.fake_server)  # type: ignore[attr-defined]
    if args.snapshot:
        args.snapshot.parent.mkdir(parents=True, exist_ok=True)
        print(f"restored {load(client, args.snapshot)} keys from {args.snapshot}", flush=True)

    def stop(signum: int, frame: FrameType | None) -> None:
        threading.Thread(target=server.shutdown).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"Redis-compatible server on {args.host}:{args.port}", flush=True)
    server.serve_forever(poll_interval=0.2)
    server.server_close()
    if args.snapshot:
        print(f"saved {save(client, args.snapshot)} keys to {args.snapshot}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
