"""A scripted OpenAI-compatible /v1/chat/completions server on 127.0.0.1, for judge and
rollout tests.

Each request's prompt (its messages' contents, joined by newlines) is matched against the
script's markers (substrings); the n-th request carrying a marker gets the marker's n-th
reply (the last one repeats). A request matching no marker goes to `respond` if given (a
function of the prompt); otherwise, or where it returns None, it is answered "是" for every
checklist id found in the prompt (lines "{id}. {content} | {type}"), so whole sessions can
be judged. A request with `n` gets n choices; "{choice}" in a reply becomes the index.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from rpo_bench.openai_client import PING

ECHO_AUTH = "{auth}"  # in a reply's text: replaced by the request's Authorization header
CHOICE = "{choice}"  # in a reply's text: replaced by the choice's index (requests with n)


@dataclass
class Reply:
    status: int = 200
    content: str | None = None  # the completion text (status 200)
    body: str | None = None  # a raw response body instead (errors, broken payloads)
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    reset: bool = False  # close the connection without answering (a connection reset)
    finish_reason: str = "stop"  # "length": the server cut the reply at a token limit
    usage: dict[str, int] | None = None  # the response's usage block, where given


def verdict_json(verdicts: dict[str, Any], reasoning: str = "逐条核对") -> str:
    return json.dumps({"reasoning": reasoning, "verdicts": verdicts}, ensure_ascii=False)


def official_json(verdicts: dict[str, Any], reasoning: str = "逐条核对") -> str:
    """A completion in SysBench's own format: a ```json fence around a Python dict literal
    with 评判理由 and 评判结果 (integer ids), as GPT-4o answers the official prompt."""
    body = ", ".join(f"{int(k)}: {json.dumps(v, ensure_ascii=False)}" for k, v in verdicts.items())
    reason = json.dumps(reasoning, ensure_ascii=False)
    return f'```json\n{{"评判理由": {reason}, "评判结果": {{{body}}}}}\n```'


_CRITERION = re.compile(r"^(\d+)\. .* \| \S+$", flags=re.M)


class FakeJudgeServer:
    """Use as a context manager; `url` is the base URL (…/v1)."""

    def __init__(
        self,
        script: dict[str, list[Reply]] | None = None,
        respond: Callable[[str], Reply | None] | None = None,
        props: dict[str, Any] | None = None,
    ) -> None:
        self.script = script or {}
        self.props = props  # GET /props answers this (llama.cpp's server), else 404
        self.respond = respond  # a prompt no marker matches: its reply, or None for the default
        self.requests: list[dict[str, Any]] = []
        self.counts: dict[str, int] = defaultdict(int)
        self.in_flight = 0
        self.pings = 0  # pre-flight requests (openai_client.PING) answered
        self.max_in_flight = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                found = self.path == "/props" and server.props is not None
                data = json.dumps(server.props if found else {"error": "not found"}).encode()
                self.send_response(200 if found else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                with server._lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                try:
                    server._handle(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and hung up: that is the test
                finally:
                    with server._lock:
                        if not getattr(self, "answered", False):
                            server.in_flight -= 1

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def __enter__(self) -> FakeJudgeServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def count(self, marker: str) -> int:
        with self._lock:
            return self.counts[marker]

    def _handle(self, h: BaseHTTPRequestHandler) -> None:
        body = json.loads(h.rfile.read(int(h.headers["Content-Length"])))
        prompt = "\n".join(m["content"] for m in body["messages"])
        auth = h.headers.get("Authorization", "")
        marker = next((m for m in self.script if m in prompt), None)
        if marker is None and prompt == PING:  # a client's pre-flight: answered, not logged
            with self._lock:
                self.pings += 1
            self._send(h, Reply(content="OK"), body, auth)
            return
        with self._lock:
            self.requests.append(
                {"path": h.path, "body": body, "auth": auth, "marker": marker, "prompt": prompt}
            )
            n = self.counts[marker] if marker else 0
            if marker:
                self.counts[marker] += 1
        if marker is None and self.respond and (own := self.respond(prompt)) is not None:
            reply = own
        elif marker is None:
            if "<评判细则>" in prompt:  # SysBench's official prompt
                ids = _CRITERION.findall(prompt.split("<评判细则>", 1)[-1])
                reply = Reply(content=official_json(dict.fromkeys(ids, "是")))
            else:
                ids = _CRITERION.findall(prompt.split("【评判细则】", 1)[-1])
                reply = Reply(content=verdict_json(dict.fromkeys(ids, "是")))
        else:
            replies = self.script[marker]
            reply = replies[min(n, len(replies) - 1)]
        time.sleep(reply.delay)
        # Answered from here on: the client may send its next request before this thread
        # finishes writing, and that must not count as one more in flight.
        with self._lock:
            self.in_flight -= 1
            h.answered = True
        self._send(h, reply, body, auth)

    def _send(self, h: BaseHTTPRequestHandler, reply: Reply, body: dict, auth: str) -> None:
        if reply.reset:
            import socket
            import struct

            # SO_LINGER 0: close sends RST, the client sees "connection reset by peer"
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            h.connection.close()
            h.close_connection = True
            return
        if reply.body is not None:
            payload = reply.body.replace(ECHO_AUTH, auth)
        else:
            content = (reply.content or "").replace(ECHO_AUTH, auth)
            payload = json.dumps(
                {
                    "id": "fake",
                    "object": "chat.completion",
                    "model": body["model"],
                    "choices": [
                        {
                            "index": i,
                            "message": {
                                "role": "assistant",
                                "content": content.replace(CHOICE, str(i)),
                            },
                            "finish_reason": reply.finish_reason,
                        }
                        for i in range(body.get("n", 1))
                    ],
                    **({"usage": reply.usage} if reply.usage else {}),
                },
                ensure_ascii=False,
            )
        data = payload.encode("utf-8")
        h.send_response(reply.status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        for k, v in reply.headers.items():
            h.send_header(k, v)
        h.end_headers()
        h.wfile.write(data)
