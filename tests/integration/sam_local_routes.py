"""Run by the SAM CLI's own Python: the stacks and routes `sam local start-api` would serve.

    sam_local_routes.py template.yaml

The same providers `sam local start-api` uses to read the root template and its nested
stacks (no container runtime is needed to read them, only to run the functions).
"""

import json
import logging
import sys

from samcli.lib.providers.api_provider import ApiProvider
from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider

logging.disable(logging.CRITICAL)
stacks, _ = SamLocalStackProvider.get_stacks(sys.argv[1])
api = ApiProvider(stacks)
print(
    json.dumps(
        {
            "stacks": sorted(stack.stack_path for stack in stacks),
            "routes": sorted(
                {
                    f"{method} {route.path}": route.function_name for route in api.routes for method in route.methods
                }.items()
            ),
        }
    )
)
