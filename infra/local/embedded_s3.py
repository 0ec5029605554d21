"""`make dev`'s S3: moto's server, without its request log.

    python -m infra.local.embedded_s3 --port 9000

moto_server logs every request line, query string included, and a presigned URL's query
string is a credential (`X-Amz-Signature`): anyone reading the log could replay it until
it expires. This runs the same server with that log off; errors still show.
"""

import logging
import sys


def main(argv: list[str] | None = None) -> int:
    from moto.server import main as moto_main

    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    moto_main(argv if argv is not None else sys.argv[1:])
    return 0


if __name__ == "__main__":
    sys.exit(main())
