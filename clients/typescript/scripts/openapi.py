"""Print the merged OpenAPI document (every function behind the gateway) as JSON.

python clients/typescript/scripts/openapi.py > openapi.json
"""

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
sys.path[:0] = [str(ROOT), str(ROOT / "shared")]

from infra.deploy.template import load  # noqa: E402
from infra.local.gateway.docs import merged_openapi  # noqa: E402

if __name__ == "__main__":
    json.dump(merged_openapi(load()), sys.stdout, indent=1, sort_keys=True)
    sys.stdout.write("\n")
