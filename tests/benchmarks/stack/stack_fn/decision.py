"""The stack's decision: the I/O of a warm authorizer decision done with redis-py alone, none
of our code. Each invocation runs one blocking Redis `MGET` of four keys (the token's
revocations, the user's grants and their version), as the authorizer's handler does when
the grants are cached, and allows. The authorizer's warm figure against this one is what
verifying the token from its cache, reading the grants and answering add.
"""

import os
from typing import Any

from redis import Redis

redis = Redis.from_url(
    os.environ["REDIS_URL"], decode_responses=True, socket_connect_timeout=2, socket_timeout=2, health_check_interval=30
)
KEYS = ("stack:revoked", "stack:family", "stack:grants", "stack:version")


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    redis.mget(*KEYS)
    return {"isAuthorized": True}
