"""An OpenAI-compatible server on 127.0.0.1 whose replies come from a script file.

It stands in for a model in fault and injection tests: a real process speaking
``GET /v1/models`` and ``POST /v1/chat/completions`` over HTTP, whose behaviour is fixed in
advance. The script is JSON: ``{"rules": [...]}``. The first rule whose ``match`` occurs in the
request's user message (a rule without ``match`` matches everything) decides the reply:

- ``reply``: the message text; ``{passage:WORDS}`` becomes the number of the first numbered
  passage that contains WORDS (case-insensitive), ``{passage_text:WORDS}`` that passage's text,
  ``{passage_sentence:WORDS}`` its first sentence;
- ``status``: an HTTP status other than 200, with an OpenAI-style error body;
- ``delay_s``: seconds to wait before answering (a slow model);
- ``raw``: a body sent as it is, instead of a chat completion (a garbled reply).

The script file is read again on each request, so a test can change the behaviour of a running
server. Every request is appended, as one JSON line, to ``--log`` when given.

    python scripts/scripted_llm_server.py --port 8099 --script rules.json [--log requests.jsonl]
"""

from __future__ import annotations

import argparse
import contextlib
import http.server
import json
import re
import time
from pathlib import Path

_PASSAGE = re.compile(r'<passage number="(\d+)"[^>]*>\n(.*?)</passage>', re.S)
_SLOT = re.compile(r"\{(passage|passage_text|passage_sentence):([^}]+)\}")


def passages(user: str) -> dict[int, str]:
    return {int(n): body for n, body in _PASSAGE.findall(user)}


def fill(template: str, user: str) -> str:
    """The reply with its passage slots filled from the request ("0" when no passage has it)."""
    found = passages(user)

    def slot(match: re.Match[str]) -> str:
        words = match.group(2).strip().lower()
        hits = [n for n, text in sorted(found.items()) if words in text.lower()]
        if match.group(1) == "passage":
            return str(hits[0]) if hits else "0"
        if not hits:
            return ""
        lines = found[hits[0]].strip().split("\n")
        text = " ".join(lines[3:]).strip()  # after Source / Title / Section
        if match.group(1) == "passage_sentence":
            return re.split(r"(?<=[.!?])\s", text)[0]
        return text

    return _SLOT.sub(slot, template)


def make_handler(script: Path, log: Path | None) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            if self.path.rstrip("/").endswith("/models"):
                self._json(200, {"object": "list", "data": [{"id": "scripted", "object": "model"}]})
            else:
                self._json(404, {"error": {"message": f"no route {self.path}"}})

        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
            user = "\n".join(
                m.get("content", "") for m in body.get("messages", []) if m.get("role") == "user"
            )
            if log is not None:
                with log.open("a") as fh:
                    fh.write(json.dumps(body) + "\n")
            rules = json.loads(script.read_text()).get("rules", [])
            rule = next((r for r in rules if r.get("match", "") in user), {})
            time.sleep(float(rule.get("delay_s", 0)))
            if "raw" in rule:
                self._send(int(rule.get("status", 200)), rule["raw"].encode(), "text/plain")
                return
            status = int(rule.get("status", 200))
            if status != 200:
                self._json(status, {"error": {"message": rule.get("reply", "scripted error")}})
                return
            text = fill(rule.get("reply", ""), user)
            self._json(
                200,
                {
                    "id": "scripted-1",
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body.get("model", "scripted"),
                    "choices": [
                        {
                            "index": 0,
                            "finish_reason": "stop",
                            "message": {"role": "assistant", "content": text},
                        }
                    ],
                },
            )

        def _json(self, status: int, payload: dict) -> None:
            self._send(status, json.dumps(payload).encode(), "application/json")

        def _send(self, status: int, data: bytes, kind: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            with contextlib.suppress(OSError):  # the client gave up (a timeout test)
                self.wfile.write(data)

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--script", type=Path, required=True)
    parser.add_argument("--log", type=Path, default=None)
    args = parser.parse_args()
    handler = make_handler(args.script, args.log)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), handler)
    server.serve_forever()


if __name__ == "__main__":
    main()
