"""Pieces the security tests share: a Gradio client that keeps one session across calls (as a
page does), and the secret file an attacker would like to read."""

from __future__ import annotations

import json
import uuid

SECRET = "TOPSECRET-5d1f0c"


class PageSession:
    """Calls any of the page's event handlers the way the browser does (queue join, then the
    event stream), all in one Gradio session, so server-side state carries from call to call."""

    def __init__(self, client) -> None:
        self.client = client
        self.config = client.get("config").json()
        self.session = uuid.uuid4().hex

    def fn_index(self, api_name: str) -> int:
        [dependency] = [d for d in self.config["dependencies"] if d.get("api_name") == api_name]
        return dependency["id"]

    def call(self, api_name: str, data: list) -> dict:
        """The final message of the event stream (its `output` holds the data, or an error)."""
        joined = self.client.post(
            "gradio_api/queue/join",
            json={"data": data, "fn_index": self.fn_index(api_name), "session_hash": self.session, "event_data": None},
        )
        if joined.status_code != 200:
            return {"status": joined.status_code, "text": joined.text}
        with self.client.stream("GET", f"gradio_api/queue/data?session_hash={self.session}") as stream:
            for line in stream.iter_lines():
                if line.startswith("data:"):
                    message = json.loads(line[5:])
                    if message.get("msg") == "process_completed":
                        return message
        raise AssertionError("the event stream ended without a result")


def file_payload(path: str) -> dict:
    return {"path": path, "orig_name": path.rsplit("/", 1)[-1], "meta": {"_type": "gradio.FileData"}}


def served_file_urls(payload: object) -> list[str]:
    """Every /gradio_api/file= URL (or cached path) anywhere in a JSON reply."""
    found: list[str] = []

    def visit(value: object) -> None:
        if isinstance(value, dict):
            for item in value.values():
                visit(item)
        elif isinstance(value, list):
            for item in value:
                visit(item)
        elif isinstance(value, str) and ("file=" in value or value.startswith("/tmp/gradio")):
            found.append(value)

    visit(payload)
    return found
