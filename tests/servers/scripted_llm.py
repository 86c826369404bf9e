"""A tiny OpenAI-compatible server process for tests: its reply is computed from the prompt.

    python tests/servers/scripted_llm.py PORT

``POST /v1/chat/completions`` answers with the first sentence of passage 1 as it was sent,
cited ``[1]``, followed by one uncited sentence (which the answerer must drop). ``GET /v1/models``
lists one model, ``scripted``. It listens on 127.0.0.1 only.
"""

from __future__ import annotations

import http.server
import json
import re
import sys

UNCITED = "Every patient should also drink more water."


def reply_for(messages: list[dict]) -> str:
    user = next(m["content"] for m in messages if m["role"] == "user")
    found = re.search(r'<passage number="1"[^>]*>\n(.*?)</passage>', user, re.S)
    if not found:
        return "NOT_ADDRESSED_BY_SOURCES"
    text_lines = found.group(1).split("\n")[3:]  # after Source / Title / Section
    first = re.split(r"(?<=[.!?])\s", " ".join(text_lines).strip())[0]
    return f"{first} [1]\n\n{UNCITED}"


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self._send(200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]})

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        content = reply_for(body["messages"])
        self._send(
            200,
            {
                "id": "scripted-1",
                "object": "chat.completion",
                "created": 0,
                "model": body.get("model", "scripted"),
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": content},
                    }
                ],
            },
        )

    def _send(self, code: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


if __name__ == "__main__":
    http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
