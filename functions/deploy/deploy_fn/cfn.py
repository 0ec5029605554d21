"""CloudFormation's custom resource protocol: answer once, in time, with a PUT to the presigned URL.

A custom resource that never answers holds the deploy for an hour. So every request is
answered: SUCCESS with the action's result, FAILED with its error, or FAILED by a timer
shortly before the function's own timeout, whichever comes first (only the first counts).
"""

import json
import logging
import re
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

log = logging.getLogger(__name__)

Status = Literal["SUCCESS", "FAILED"]

# Answer FAILED when this little time remains: room for the PUT and its retries.
TIMEOUT_MARGIN_MS = 20_000
PUT_TIMEOUT = 5.0  # seconds, connect and each read
PUT_ATTEMPTS = 3
REASON_LIMIT = 1000  # CloudFormation takes 4 KiB for the whole response
_CREDENTIALS = re.compile(r"://[^/\s@]*@")


class Context(Protocol):
    def get_remaining_time_in_millis(self) -> int: ...


@dataclass(frozen=True)
class Request:
    """One CloudFormation event, named the way the protocol names it."""

    event: dict[str, Any]

    @property
    def type(self) -> Literal["Create", "Update", "Delete"]:
        kind = self.event["RequestType"]
        assert kind in ("Create", "Update", "Delete"), kind
        return kind  # type: ignore[no-any-return]

    @property
    def properties(self) -> dict[str, Any]:
        return dict(self.event.get("ResourceProperties") or {})

    @property
    def old_properties(self) -> dict[str, Any]:
        return dict(self.event.get("OldResourceProperties") or {})

    @property
    def physical_id(self) -> str | None:
        return self.event.get("PhysicalResourceId")

    @property
    def logical_id(self) -> str:
        return str(self.event.get("LogicalResourceId", ""))


@dataclass(frozen=True)
class Outcome:
    """What a successful action reports: the resource's id, its attributes and a note."""

    physical_id: str
    data: dict[str, str] = field(default_factory=dict)
    reason: str = ""


Action = Callable[[Request], Outcome]


def scrub(text: str) -> str:
    """A message fit for the CloudFormation console: credentials out of URLs, one line, bounded."""
    line = " ".join(text.split())
    return _CREDENTIALS.sub("://***@", line)[:REASON_LIMIT]


class Responder:
    """Sends the one answer a request gets; later attempts to answer are ignored."""

    def __init__(self, event: dict[str, Any]) -> None:
        self.event = event
        self._lock = threading.Lock()
        self.sent: Status | None = None

    def answer(self, status: Status, reason: str, physical_id: str | None, data: dict[str, str] | None = None) -> bool:
        with self._lock:
            if self.sent is not None:
                return False
            self.sent = status
        body = json.dumps(
            {
                "Status": status,
                "Reason": scrub(reason) or status,
                # A failed Create has no resource yet: any stable id will do.
                "PhysicalResourceId": physical_id or self.event.get("PhysicalResourceId") or self.event["RequestId"],
                "StackId": self.event["StackId"],
                "RequestId": self.event["RequestId"],
                "LogicalResourceId": self.event["LogicalResourceId"],
                "NoEcho": False,
                "Data": data or {},
            }
        ).encode()
        log.info("%s %s: %s (%s)", self.event["RequestType"], self.event["LogicalResourceId"], status, scrub(reason))
        _put(self.event["ResponseURL"], body)
        return True


def _put(url: str, body: bytes) -> None:
    # The URL is presigned without a content type: send none, or S3 refuses the signature.
    request = urllib.request.Request(  # noqa: S310  (CloudFormation's https URL; tests use a local one)
        url, data=body, method="PUT", headers={"Content-Type": "", "Content-Length": str(len(body))}
    )
    for attempt in range(1, PUT_ATTEMPTS + 1):
        try:
            with urllib.request.urlopen(request, timeout=PUT_TIMEOUT) as response:  # noqa: S310
                response.read()
            return
        except (urllib.error.URLError, OSError) as exc:
            # Never log the URL itself: it carries a signature.
            log.warning("response PUT failed (attempt %d of %d): %s", attempt, PUT_ATTEMPTS, type(exc).__name__)
            if attempt < PUT_ATTEMPTS:
                time.sleep(attempt)


def serve(event: dict[str, Any], context: Context, action: Action | None) -> Status:
    """Run the action for one request and answer CloudFormation, before the function times out."""
    responder = Responder(event)
    if action is None:
        responder.answer("FAILED", f"no deploy step for {event.get('ResourceType')}", None)
        return "FAILED"
    request = Request(event)
    budget = (context.get_remaining_time_in_millis() - TIMEOUT_MARGIN_MS) / 1000
    timer = threading.Timer(
        max(budget, 0.0),
        lambda: responder.answer("FAILED", "timed out before the step finished", request.physical_id),
    )
    timer.daemon = True
    timer.start()
    try:
        outcome = action(request)
    except Exception as exc:
        log.exception("%s %s failed", request.type, request.logical_id)
        responder.answer("FAILED", f"{type(exc).__name__}: {exc}", request.physical_id)
    else:
        responder.answer("SUCCESS", outcome.reason, outcome.physical_id, outcome.data)
    finally:
        timer.cancel()
    assert responder.sent is not None
    return responder.sent
