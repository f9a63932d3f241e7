"""A stand-in OpenAI-compatible server for tests: ``python tests/standin_openai.py LOG_PATH``.

It prints ``PORT <n>`` once listening, answers ``POST /v1/chat/completions`` with a streamed
(server-sent events) JSON reply chosen by the request's schema, and appends every request body to
LOG_PATH as one JSON line. ``Authorization: Bearer wrong`` gets HTTP 401.
"""

from __future__ import annotations

import json
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOG = sys.argv[1]

# Each point quotes the test corpus (tests/test_answer.py) as a real server's model would be asked to.
LOCAL = "Stereotactic radiotherapy treats oligoprogressive colorectal cancer lesions"
GUIDELINE = {
    "lead": [
        {"text": "The guideline recommends local therapy for oligoprogressive sites.", "quote": LOCAL, "cite": [1]}
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
        schema = body.get("response_format", {}).get("json_schema", {}).get("schema", {})
        props = schema.get("properties", {})
        reply = FOLLOW if "questions" in props else GUIDELINE if "lead" in props else RESEARCH
        text = json.dumps(reply)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Connection", "close")
        self.end_headers()
        for i in range(0, len(text), 9):
            event = {"choices": [{"index": 0, "delta": {"content": text[i : i + 9]}}]}
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")
        self.wfile.flush()
        self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


if __name__ == "__main__":
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()
