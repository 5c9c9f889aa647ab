"""A DynamoDB endpoint on loopback that refuses some IAM actions as AWS does, and passes every other request to a
real DynamoDB-API server (moto): for the doctor's "permissions denied" tests.

A refused request gets AWS's answer: HTTP 400, `AccessDeniedException`, and a message naming the action. IAM
checks a `TransactWriteItems` per action (`dynamodb:PutItem` for a `Put`, `dynamodb:UpdateItem` for an `Update`,
...), so a transaction is refused when any of its actions is.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

_TRANSACTION_ACTIONS = {
    "Put": "PutItem",
    "Update": "UpdateItem",
    "Delete": "DeleteItem",
    "ConditionCheck": "ConditionCheckItem",
}
_PASSED_HEADERS = ("Content-Type", "x-amzn-RequestId", "x-amz-crc32")


class DenyingProxy:
    """`DenyingProxy(upstream, {"PutItem"})`: refuses `dynamodb:PutItem`; `.endpoint_url`; `.stop()`."""

    def __init__(self, upstream: str, denied: set[str]) -> None:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                refused = proxy.refused(self.headers.get("X-Amz-Target", ""), body)
                if refused:
                    proxy.refusals.append(refused)
                    self._answer(
                        400,
                        {"Content-Type": "application/x-amz-json-1.0"},
                        json.dumps(refused_body(refused, json.loads(body or b"{}"))).encode(),
                    )
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
                request = urllib.request.Request(upstream, data=body, headers=headers, method="POST")
                try:
                    with urllib.request.urlopen(request, timeout=30) as response:
                        self._answer(response.status, dict(response.headers), response.read())
                except urllib.error.HTTPError as error:
                    self._answer(error.code, dict(error.headers), error.read())

            def _answer(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for name in _PASSED_HEADERS:
                    value = next((v for k, v in headers.items() if k.lower() == name.lower()), None)
                    if value is not None:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.denied = denied
        self.refusals: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def refused(self, target: str, body: bytes) -> str | None:
        """The IAM action that refuses this request, or None."""
        operation = target.rsplit(".", 1)[-1]
        actions = [operation]
        if operation == "TransactWriteItems":
            items = json.loads(body or b"{}").get("TransactItems", [])
            actions = [_TRANSACTION_ACTIONS[kind] for item in items for kind in item]
        return next((action for action in actions if action in self.denied), None)

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def refused_body(action: str, request: dict[str, object]) -> dict[str, str]:
    table = request.get("TableName") or "ai-usage"
    if not isinstance(table, str):
        table = "ai-usage"
    resource = f"arn:aws:dynamodb:us-east-1:123456789012:table/{table}"
    return {
        "__type": "com.amazon.coral.service#AccessDeniedException",
        "Message": f"User: arn:aws:iam::123456789012:user/doctor-test is not authorized to perform: "
        f"dynamodb:{action} on resource: {resource} because no identity-based policy allows the "
        f"dynamodb:{action} action",
    }
