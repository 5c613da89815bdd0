"""A loopback fake LLM provider that the official SDKs can talk to unchanged.

It speaks OpenAI's and Mistral's `/v1/chat/completions`, Anthropic's `/v1/messages`
and Hugging Face's TGI-flavoured chat completions (see `wire.py`), answers schema
requests with `schema_fill.fill`, and can misbehave on purpose: latency, rate
limits, server errors, dropped connections, hangs and bad content.

Determinism. The *content* of a reply is a function of the request (a sha256 over
model, messages, system prompt and schema), so identical requests get identical
answers. *Whether* a request gets a fault is drawn from one RNG per server,
seeded with `fault_seed` and advanced once per request in arrival order. That
keeps a run reproducible for a fixed order of requests while letting a retried,
byte-identical request succeed where the first attempt failed; hashing the body
instead would make a faulted request fail forever and retries pointless.

Use it in-process::

    with FakeProvider(rpm=60, fault_rate=0.1) as fake:
        client = OpenAI(base_url=fake.base_url("openai"), api_key="k", max_retries=0)
        ...
        assert fake.stats()["over_limit_served"] == 0

or as a process: `python -m panel.testing.fake_provider --port 8400 --rpm 60`.
Control endpoints: `GET /_fake/stats`, `POST /_fake/reset`, `GET|POST /_fake/config`.
The three Batch APIs (OpenAI files + batches, Anthropic message batches, Mistral batch jobs),
their knobs (`batch_*`) and `POST /_fake/batches/advance` are described in `batches`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import signal
import socket
import struct
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

from panel.testing import batches, hostile, wire
from panel.testing.state import FAULT_KINDS, Knobs, State
from panel.testing.wire import PROVIDERS, ParsedRequest, Provider, RateState

__all__ = ["FAULT_KINDS", "FakeProvider", "Knobs", "main"]

_CONTENT_FAULTS = ("malformed", "schema_violation", "length")
_HOST = "127.0.0.1"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Dozens of clients connect at once; the default backlog of 5 refuses some.
    request_queue_size = 256

    def __init__(self, port: int, state: State, verbose: bool) -> None:
        self.state = state
        self.verbose = verbose
        self.stopping = threading.Event()
        #: set when a request killed the server (`die_after`, `crash_max_length`)
        self.dead = False
        self._conns: set[socket.socket] = set()
        self._conns_cv = threading.Condition()
        super().__init__((_HOST, port), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._conns_cv:
            self._conns.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        super().shutdown_request(request)
        with self._conns_cv:
            self._conns.discard(request)
            self._conns_cv.notify_all()

    def drop_connections(self, timeout: float) -> None:
        """Wake every handler blocked on a kept-alive socket and wait for them to close it."""
        with self._conns_cv:
            for conn in list(self._conns):
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
            self._conns_cv.wait_for(lambda: not self._conns, timeout)

    def die(self, current: socket.socket) -> None:
        """Close the port and every other connection, as a process that died would."""
        self.dead = True
        self.shutdown()
        self.server_close()
        with self._conns_cv:
            for conn in list(self._conns):
                if conn is not current:
                    with contextlib.suppress(OSError):
                        conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that time out or hang up mid-reply are part of the job, not news.
        if isinstance(sys.exc_info()[1], OSError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, the second waits for the
    # client's delayed ACK (~40 ms on Linux) and a zero-latency provider answers in 40 ms.
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)

    def do_GET(self) -> None:
        if self._batch_api(b""):
            return
        if self.path.split("?")[0] in ("/_fake/stats", "/_fake/config"):
            self._control()
        else:
            self._send(404, {"error": {"message": f"no route for GET {self.path}"}}, {})

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        raw = self.rfile.read(length) if length else b""
        if self._batch_api(raw):
            return
        if self.path.startswith("/_fake/"):
            self._control(raw)
        else:
            self._api(raw)

    def _batch_api(self, raw: bytes) -> bool:
        headers = {k.lower(): v for k, v in self.headers.items()}
        reply = batches.handle(self.server.state, self.command, self.path, headers, raw)
        if reply is not None:
            self._send_bytes(reply.status, reply.body, reply.content_type, {})
        return reply is not None

    def _control(self, raw: bytes = b"") -> None:
        state = self.server.state
        path = self.path.split("?")[0]
        with state.lock:
            try:
                if path == "/_fake/reset" and self.command == "POST":
                    state.reset()
                elif path == "/_fake/config" and self.command == "POST":
                    state.configure(json.loads(raw or b"{}"))
                elif path not in ("/_fake/stats", "/_fake/config"):
                    raise LookupError(path)
            except LookupError:
                body, status = {"error": f"unknown control endpoint {path}"}, 404
            except (ValueError, TypeError) as exc:
                body, status = {"error": str(exc)}, 400
            else:
                body = state.snapshot() if path == "/_fake/stats" else state.config()
                status = 200
        self._send(status, body, {})

    def _api(self, raw: bytes) -> None:
        state = self.server.state
        headers = {k.lower(): v for k, v in self.headers.items()}
        provider, route = wire.attribute(self.path, headers)
        request_id = wire.new_id("req_")
        scheme, key_hash = wire.auth_of(headers)
        record: dict[str, Any] = {
            "request_id": request_id,
            "provider": provider or "unknown",
            "path": self.path,
            "model": None,
            "user_agent": headers.get("user-agent"),
            "auth_scheme": scheme,
            "auth_key_sha256": key_hash,
            # what else the client sent (organization, project, a member's own headers)
            "headers": {k: v for k, v in headers.items() if k not in wire.SECRET_HEADERS},
            "form": "none",
            "schema": None,
            "tool_name": None,
            "body_sha256": wire.sha256_hex(raw),
            "body": None,
            "status": None,
            "fault": None,
        }
        parsed: ParsedRequest | None = None
        clean: wire.Reply | None = None
        error: tuple[int, str] | None = None
        try:
            body = json.loads(raw) if raw else None
            record["body"] = body
            record["body_sha256"] = wire.sha256_hex(wire.canonical(body))
            if route is None or provider is None:
                error = (404, f"no route for POST {self.path}")
            else:
                parsed = wire.parse(provider, route, body)
                record.update(
                    model=parsed.model, form=parsed.form, schema=parsed.schema, tool_name=parsed.tool_name
                )
                clean = wire.make_reply(parsed, None)
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            # Real APIs reject schemas they cannot compile; so does the fake.
            error = (400, str(exc) or type(exc).__name__)
        with state.lock:
            state.requests += 1
            state.by_provider[record["provider"]] += 1
            state.by_form[record["form"]] += 1
            state.body_hashes[record["body_sha256"]] += 1
            state.recent.append(record)
            state.in_flight += 1
            state.in_flight_max = max(state.in_flight_max, state.in_flight)
        self._counted = True
        try:
            if parsed is None or clean is None:
                assert error is not None
                self._reply_error(provider, error[0], error[1], request_id, record, None)
            else:
                self._serve(parsed, clean, request_id, record)
        finally:
            self._done()  # dropped or hung: no reply was sent

    def _done(self) -> None:
        """The request is no longer in flight (once, whichever way it ends)."""
        if getattr(self, "_counted", False):
            self._counted = False
            with self.server.state.lock:
                self.server.state.in_flight -= 1

    def _serve(self, req: ParsedRequest, clean: wire.Reply, request_id: str, record: dict[str, Any]) -> None:
        state = self.server.state
        with state.lock:
            knobs = state.knobs
        if req.form in knobs.refuse_forms:
            body = wire.refusal_body(req.form)
            return self._finish(500, body, request_id, req.provider, record, None)
        if self.server.dead or _kills(knobs, req, state.requests):
            return self._die(record)
        if req.form in knobs.ignore_forms:
            clean = wire.make_reply(replace(req, schema=wire.BARE_JSON_SCHEMA), None)
        with state.lock:
            now = state.clock()
            admitted, rate = state.window.decide(knobs, req.prompt_tokens + clean.completion_tokens, now)
            if admitted:
                state.admitted += 1
                state.admitted_span = [state.admitted_span[0] if state.admitted_span else now, now]
            if admitted and state.window.over(knobs):
                state.over_limit_served += 1
            fault: str | None = None
            if admitted and state.fault_rng.random() < knobs.fault_rate:
                fault = state.fault_rng.choice(knobs.faults)
                state.faults[fault] += 1
                record["fault"] = fault
            delay = knobs.latency + knobs.latency_jitter * state.jitter_rng.random()
            if delay:
                state.delays.append(delay)
        if delay and self.server.stopping.wait(delay):
            return self._drop(record)
        if not admitted:
            with state.lock:
                state.rate_limited += 1
            limit = "requests" if knobs.rpm and rate.remaining_requests == 0 else "tokens"
            message = f"Rate limit reached for {limit} (fake provider); retry later."
            return self._reply_error(req.provider, 429, message, request_id, record, rate)
        if fault == "reset":
            return self._drop(record)
        if fault == "hang":
            with state.lock:
                state.delays.append(knobs.hang_seconds)
        if fault == "hang" and self.server.stopping.wait(knobs.hang_seconds):
            return self._drop(record)
        if fault in ("500", "503", "529"):
            status = int(fault)
            if status == 529 and req.provider != "anthropic":
                status = 503  # 529 is Anthropic's private code; others say 503
            text = {500: "Internal server error", 503: "Service unavailable", 529: "Overloaded"}
            return self._reply_error(
                req.provider, status, f"{text[status]} (fake fault)", request_id, record, rate
            )
        reply = clean
        if fault in _CONTENT_FAULTS:
            reply = wire.make_reply(req, cast(wire.ContentFault, fault))
        body = wire.success_body(req, reply, request_id)
        with state.lock:
            state.prompt_tokens += req.prompt_tokens
            state.completion_tokens += reply.completion_tokens
        if knobs.poison and knobs.poison_match in json.dumps(record["body"], ensure_ascii=False):
            record["fault"] = f"poison:{knobs.poison}"
            data = hostile.live_body(knobs.poison, req.provider, body)
            return self._finish(200, data, request_id, req.provider, record, rate)
        self._finish(200, body, request_id, req.provider, record, rate)

    def _reply_error(
        self,
        provider: Provider | None,
        status: int,
        message: str,
        request_id: str,
        record: dict[str, Any],
        rate: RateState | None,
    ) -> None:
        body = wire.error_body(provider, status, message, request_id)
        self._finish(status, body, request_id, provider, record, rate)

    def _finish(
        self,
        status: int,
        body: Any,
        request_id: str,
        provider: Provider | None,
        record: dict[str, Any],
        rate: RateState | None,
    ) -> None:
        headers = {wire.request_id_header(provider): request_id}
        if rate is not None:
            headers.update(wire.rate_headers(provider, rate, limits=self.server.state.knobs.rate_headers))
        with self.server.state.lock:
            self.server.state.by_status[str(status)] += 1
            record["status"] = status
        self._send(status, body, headers)

    def _drop(self, record: dict[str, Any]) -> None:
        """Close the connection with no response; linger 0 turns the close into a RST."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        with self.server.state.lock:
            self.server.state.by_status["reset"] += 1
            record["status"] = "reset"

    def _die(self, record: dict[str, Any]) -> None:
        """The request killed the server: the port is closed before its connection drops."""
        if not self.server.dead:
            # shutdown() waits for the serving loop, which runs on another thread than this.
            closer = threading.Thread(target=self.server.die, args=(self.connection,), daemon=True)
            closer.start()
            closer.join(5.0)
        self._drop(record)

    def _send(self, status: int, body: Any, headers: dict[str, str]) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode()
        self._send_bytes(status, data, "application/json", headers)

    def _send_bytes(self, status: int, data: bytes, content_type: str, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        # Out of flight before the client can read the reply, so a client that has its answer
        # never sees the request still counted.
        self._done()
        self.wfile.write(data)


def _kills(knobs: Knobs, req: ParsedRequest, requests: int) -> bool:
    """Whether this request kills the server (see `Knobs.die_after`, `Knobs.crash_max_length`)."""
    if knobs.die_after and requests > knobs.die_after:
        return True
    return bool(knobs.crash_max_length) and _longest_cap(req.schema) > knobs.crash_max_length


def _longest_cap(node: Any) -> int:
    """The longest string cap in a schema, counted beyond its minLength (0: none)."""
    if isinstance(node, list):
        return max((_longest_cap(item) for item in node), default=0)
    if not isinstance(node, dict):
        return 0
    own = node.get("maxLength")
    cap = own - int(node.get("minLength", 0)) if isinstance(own, int) else 0
    return max([cap, *(_longest_cap(value) for value in node.values())])


class FakeProvider:
    """The fake server, run on a background thread. Knob kwargs are `Knobs` fields."""

    def __init__(
        self,
        port: int = 0,
        *,
        verbose: bool = False,
        clock: Callable[[], float] = time.monotonic,
        **knobs: Any,
    ) -> None:
        self._requested_port = port
        self._verbose = verbose
        # The rate window reads `clock`, so a test can move time on instead of sleeping.
        self._state = State(Knobs().updated(knobs), clock)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> FakeProvider:
        if self._server is not None:
            raise RuntimeError("already started")
        self._server = _Server(self._requested_port, self._state, self._verbose)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"fake-provider-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.stopping.set()  # wakes latency sleeps and hangs
        server.shutdown()
        server.drop_connections(timeout=5.0)
        server.server_close()
        thread.join()
        self._server = self._thread = None

    def __enter__(self) -> FakeProvider:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("not started")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{_HOST}:{self.port}"

    def base_url(self, provider: Provider) -> str:
        """The base URL to give that provider's SDK so its requests are attributed to it."""
        if provider not in PROVIDERS:
            raise ValueError(f"unknown provider {provider!r}")
        return f"{self.url}/{provider}" + ("/v1" if provider == "openai" else "")

    def stats(self) -> dict[str, Any]:
        with self._state.lock:
            return self._state.snapshot()

    def reset(self) -> None:
        with self._state.lock:
            self._state.reset()

    def configure(self, **knobs: Any) -> dict[str, Any]:
        with self._state.lock:
            self._state.configure(knobs)
            return self._state.config()

    def advance_batches(self, seconds: float | None = None, batch_id: str | None = None) -> None:
        """Move every batch (or `batch_id`) on by `seconds` of server time; None: to its end."""
        with self._state.lock:
            self._state.batches.advance(seconds, batch_id, self._state.clock())

    @property
    def config(self) -> dict[str, Any]:
        with self._state.lock:
            return self._state.config()


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m panel.testing.fake_provider",
        description="Loopback fake of the OpenAI, Anthropic, Mistral and HF chat APIs.",
    )
    d = Knobs()
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--latency", type=float, default=d.latency)
    p.add_argument("--latency-jitter", type=float, default=d.latency_jitter)
    p.add_argument("--rpm", type=int, default=d.rpm, help="0 = unlimited")
    p.add_argument("--tpm", type=int, default=d.tpm, help="0 = unlimited")
    p.add_argument("--rate-window", type=float, default=d.rate_window)
    p.add_argument(
        "--limit-period", type=float, default=d.limit_period, help="period the limit headers state (s)"
    )
    p.add_argument(
        "--no-rate-headers",
        dest="rate_headers",
        action="store_false",
        help="send no x-ratelimit-*/anthropic-ratelimit-* headers (retry-after still)",
    )
    p.add_argument("--fault-rate", type=float, default=d.fault_rate)
    p.add_argument(
        "--faults", default=",".join(d.faults), help=f"comma-separated subset of {','.join(FAULT_KINDS)}"
    )
    p.add_argument("--fault-seed", type=int, default=d.fault_seed)
    p.add_argument("--hang-seconds", type=float, default=d.hang_seconds)
    p.add_argument("--history", type=int, default=d.history)
    p.add_argument(
        "--refuse-forms", default="", help="structured forms answered with llama-cpp-python's HTTP 500"
    )
    p.add_argument("--ignore-forms", default="", help="structured forms whose schema is ignored")
    p.add_argument("--batch-seconds", type=float, default=d.batch_seconds, help="batch processing time")
    p.add_argument("--batch-error-rate", type=float, default=d.batch_error_rate)
    p.add_argument("--batch-expire-rate", type=float, default=d.batch_expire_rate)
    p.add_argument("--batch-partial", action="store_true", help="cut batch output files mid-line")
    p.add_argument("--batch-fail-validation", action="store_true", help="every new batch fails validation")
    p.add_argument("--poison", default="", help=f"poison live replies: one of {','.join(hostile.LIVE)}")
    p.add_argument("--poison-match", default="", help="poison only requests whose body contains this text")
    p.add_argument(
        "--batch-poison", default="", help=f"poison batch result lines: one of {','.join(hostile.LINES)}"
    )
    p.add_argument("--batch-rotate", action="store_true", help="answer each batch line under another's id")
    p.add_argument(
        "--batch-status-poison", default="", help=f"bend batch objects: one of {','.join(hostile.STATUS)}"
    )
    p.add_argument("--die-after", type=int, default=d.die_after, help="requests before one kills the server")
    p.add_argument(
        "--crash-max-length", type=int, default=d.crash_max_length, help="longest string cap that does not"
    )
    p.add_argument("--verbose", action="store_true", help="log each request to stderr")
    return p


def main(argv: list[str] | None = None) -> int:
    args = vars(_parser().parse_args(argv))
    port, verbose = args.pop("port"), args.pop("verbose")
    try:
        fake = FakeProvider(port, verbose=verbose, **args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    done = threading.Event()

    def _on_signal(signum: int, frame: object) -> None:
        done.set()

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    with fake:
        print(f"listening on {fake.url}", flush=True)
        # Short waits so the signal handler gets to run on every platform.
        while not done.wait(0.2):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
