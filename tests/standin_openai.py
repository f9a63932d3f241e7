"""A stand-in OpenAI-compatible server for tests: ``python tests/standin_openai.py LOG_PATH``.

It prints ``PORT <n>`` once listening, answers ``POST /v1/chat/completions`` with a streamed
(server-sent events) JSON reply chosen by the request's schema, and appends every request body to
LOG_PATH as one JSON line. ``Authorization: Bearer wrong`` gets HTTP 401.

Like the real servers: the last event carries ``finish_reason`` ("stop"), then ``data: [DONE]``; yes/no
log-probabilities list case and spacing variants as their own tokens. The request's ``model`` picks a failure to
act out, as llama.cpp's server (``llama_cpp.server``) and others do:

- ``llamacpp``: takes the schema as ``response_format {"type": "json_object", "schema": ...}`` and answers a
  ``json_schema`` response format with HTTP 500, as llama-cpp-python 0.3.36's server does;
- ``cut``: the first request of each kind stops early, no ``finish_reason`` and no ``[DONE]`` (a stream
  interrupted by a second request); ``cut-always``: every one stops that way, after its first statement;
- ``length``: the reply stops half-way with ``finish_reason`` "length";
- ``fenced``: follow-up questions as a Markdown-fenced list of ``{"question", "source"}`` objects.
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOG = sys.argv[1]
SEEN: set[str] = set()  # (model, kind) pairs already answered, for "cut"

# Each point quotes the test corpus (tests/test_answer.py) as a real server's model would be asked to.
LOCAL = "Stereotactic radiotherapy treats oligoprogressive colorectal cancer lesions"
GUIDELINE = {
    "lead": [
        {
            "text": "Stereotactic radiotherapy treats oligoprogressive colorectal cancer lesions.",
            "quote": LOCAL,
            "cite": [1],
        }
    ],
    "groups": [
        {
            "heading": "Local therapy",
            "points": [{"text": "Stereotactic radiotherapy is an option.", "quote": LOCAL, "cite": [1]}],
        }
    ],
}
RESEARCH = {
    "groups": [
        {
            "heading": "",
            "points": [
                {
                    "text": "SBRT delayed a change of therapy.",
                    "quote": "sites delayed systemic treatment change",
                    "cite": [1, 7],
                }
            ],
        }
    ]
}
FOLLOW = {"questions": ["What about RAS-mutant tumours?", "And in elderly patients?"]}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        with open(LOG, "a", encoding="utf-8") as f:
            f.write(json.dumps({"path": self.path, "auth": self.headers.get("Authorization"), "body": body}) + "\n")
        if self.headers.get("Authorization") == "Bearer wrong":
            msg = b'{"error": {"message": "invalid api key"}}'
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(msg)))
            self.end_headers()
            self.wfile.write(msg)
            return
        if body.get("max_tokens") == 1 and body.get("logprobs"):  # a yes/no judge request
            user = body["messages"][-1]["content"]
            passage, claim = user.split("Claim: ", 1)
            word = claim.split()[0].lower()
            yes = word in passage.lower()
            # As real servers (llama.cpp's, OpenAI's) list them: case and spacing variants as their own tokens,
            # the strongest first. A judge that keeps the last variant of a side reads "Yes" -0.55 as -4.1.
            if yes:
                top = [
                    {"token": "Yes", "logprob": -0.55},
                    {"token": "No", "logprob": -0.86},
                    {"token": " Yes", "logprob": -3.2},
                    {"token": "YES", "logprob": -5.0},
                    {"token": "yes", "logprob": -4.1},
                ]
            else:
                top = [
                    {"token": "No", "logprob": -0.3},
                    {"token": "Yes", "logprob": -1.5},
                    {"token": " no", "logprob": -4.0},
                    {"token": "NO", "logprob": -5.2},
                    {"token": "yes", "logprob": -6.0},
                ]
            reply_body = {
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": "Yes" if yes else "No"},
                        "logprobs": {"content": [{"token": "Yes" if yes else "No", "top_logprobs": top}]},
                    }
                ]
            }
            data = json.dumps(reply_body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        model = str(body.get("model", ""))
        fmt = body.get("response_format") or {}
        if model == "llamacpp" and fmt.get("type") == "json_schema":
            msg = b'{"error": {"code": 500, "message": "Unknown response_format type: json_schema", "type": "server"}}'
            self.send_response(500)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(msg)))
            self.end_headers()
            self.wfile.write(msg)
            return
        schema = fmt.get("json_schema", {}).get("schema") or fmt.get("schema") or body.get("format") or {}
        props = schema.get("properties", {})
        kind = "follow" if "questions" in props else "guideline" if "lead" in props else "research"
        reply = FOLLOW if kind == "follow" else GUIDELINE if kind == "guideline" else RESEARCH
        text = json.dumps(reply)
        if model == "fenced" and kind == "follow":
            items = [{"question": q, "source": "[1]"} for q in FOLLOW["questions"]]
            text = "```json\n" + json.dumps(items) + "\n```"
        finish: str | None = "stop"
        if model == "length":
            text, finish = text[: len(text) // 2], "length"
        elif model == "cut" and (model, kind) not in SEEN:
            text, finish = text[:20], None  # before its first statement is whole
        elif model == "cut-always":
            text, finish = text[: len(text) * 3 // 5], None  # after it
        SEEN.add((model, kind))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        for i in range(0, len(text), 9):
            event = {"choices": [{"index": 0, "delta": {"content": text[i : i + 9]}, "finish_reason": None}]}
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
        if finish is not None:  # an interrupted stream just stops
            event = {"choices": [{"index": 0, "delta": {}, "finish_reason": finish}]}
            self.wfile.write(f"data: {json.dumps(event)}\n\ndata: [DONE]\n\n".encode())
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()
