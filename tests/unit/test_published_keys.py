"""Behind the gateway a function checks that the key a cached decision's token names is still
published, from the published list's text alone: no cryptography loaded to parse the keys."""

import json
import subprocess
import sys

import pytest

from tests.unit.test_lean_imports import PATHS

pytestmark = pytest.mark.process


def test_a_function_checks_the_published_kids_without_loading_cryptography() -> None:
    code = (
        f"import sys, json; sys.path[:0] = {PATHS!r}; import roles_fn.app\n"
        "from multidb.security.published import is_published\n"
        "print(json.dumps([is_published('current'), is_published('retired'), 'cryptography' in sys.modules]))\n"
    )
    env = {
        "PATH": "/usr/bin:/bin",
        "APP_ENV": "TESTING",
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "JWT_PUBLIC_KEYS": json.dumps([{"kid": "current", "pem": "not parsed"}]),
    }
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, env=env, cwd="/")
    assert json.loads(out.stdout) == [True, False, False]
