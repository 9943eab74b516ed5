#!/usr/bin/python3
"""weather_stub.py - a local stand-in for the weather service (Python 3 stdlib only).

Run:
    /usr/bin/python3 tests/stubs/weather_stub.py --port 0 --port-file FILE \
        [--slow-ms 3000] [--delay-ms 100] [--mode ok] [--verbose]

Binds 127.0.0.1 (port 0 = any free port) and, once it accepts connections,
writes the chosen port to FILE (atomically: written to FILE.tmp, renamed).
One thread per connection (ThreadingHTTPServer), HTTP/1.1 keep-alive, so a
slow answer never holds up another client.

Endpoints:
    GET  /weather          answers according to the current mode (any query
                           string is ignored)
    POST /mode/<name>      switches the mode; answers 200 "mode <name>\n", or
                           404 for an unknown mode.  Optional ?ms=N sets the
                           wait of the slow or delay mode it switches to.
    GET  /stats            {"mode": ..., "connections": N, "requests": M}:
                           connections accepted and /weather requests served
                           since start (or since the last reset)
    POST /stats/reset      zeroes both counters

Modes:
    ok          200, Yahoo shape: condition temp "72", text "Sunny"
    openmeteo   200, Open-Meteo current_weather: temperature 21.3, weathercode 3
    current     200, Open-Meteo newer "current": temperature_2m 21.3, weather_code 3
    slow        the ok answer after --slow-ms (default 3000) or ?ms=
    delay       the ok answer after --delay-ms (default 100) or ?ms=, for benchmarks
    garbage     200 with a body that is not JSON
    wrongshape  200 with valid JSON that holds none of the expected fields
    http500     500 with a short JSON error body
    huge        200 with 2 MiB of valid JSON (over the client's 1 MiB cap)
"Down" is done by the test stopping the stub (SIGTERM; it exits 0).
"""

import argparse
import json
import os
import signal
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

YAHOO = json.dumps({"query": {"count": 1, "results": {"channel": {"item": {
    "condition": {"code": "32", "date": "Thu, 26 Nov 2026 09:00 AM CST",
                  "temp": "72", "text": "Sunny"}}}}}}).encode()
OPEN_METEO = json.dumps({
    "latitude": 30.27, "longitude": -97.74, "generationtime_ms": 0.05,
    "current_weather": {"time": "2026-11-26T09:00", "interval": 900, "temperature": 21.3,
                        "windspeed": 7.2, "winddirection": 180, "is_day": 1,
                        "weathercode": 3}}).encode()
CURRENT = json.dumps({
    "latitude": 30.27, "longitude": -97.74,
    "current_units": {"temperature_2m": "°C", "weather_code": "wmo code"},
    "current": {"time": "2026-11-26T09:00", "interval": 900, "temperature_2m": 21.3,
                "weather_code": 3}}).encode()
GARBAGE = b"<html><body>Service Temporarily Unavailable</body></html>\n"
WRONGSHAPE = json.dumps({"query": {"count": 0, "created": "2026-11-26T09:00:00Z",
                                   "results": None}}).encode()
HTTP500 = b'{"error": "internal server error"}\n'
HUGE = b'{"pad":"' + b"x" * (2 * 1024 * 1024) + b'"}'

MODES = ("ok", "openmeteo", "current", "slow", "delay", "garbage", "wrongshape",
         "http500", "huge")


class State:
    def __init__(self, mode, slow_ms, delay_ms):
        self.lock = threading.Lock()
        self.mode = mode
        self.wait_ms = {"slow": slow_ms, "delay": delay_ms}
        self.connections = 0
        self.requests = 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, so the client can reuse connections
    disable_nagle_algorithm = True  # headers and body go in separate writes: no 40 ms stall
    server_version = "weather-stub/1"
    verbose = False

    def setup(self):
        super().setup()
        with self.server.state.lock:
            self.server.state.connections += 1

    def log_message(self, fmt, *args):
        if self.verbose:
            sys.stderr.write("weather_stub: %s %s\n" % (self.address_string(), fmt % args))

    def answer(self, code, body, ctype="application/json"):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def drain_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n > 0:
            self.rfile.read(n)

    def do_GET(self):
        url = urlsplit(self.path)
        st = self.server.state
        if url.path == "/stats":
            with st.lock:
                body = json.dumps({"mode": st.mode, "connections": st.connections,
                                   "requests": st.requests}).encode()
            return self.answer(200, body)
        if url.path != "/weather":
            return self.answer(404, b"no such path\n", "text/plain")
        with st.lock:
            st.requests += 1
            mode = st.mode
            wait_ms = st.wait_ms.get(mode, 0)
        if wait_ms:
            time.sleep(wait_ms / 1000.0)
        if mode in ("ok", "slow", "delay"):
            return self.answer(200, YAHOO)
        if mode == "openmeteo":
            return self.answer(200, OPEN_METEO)
        if mode == "current":
            return self.answer(200, CURRENT)
        if mode == "garbage":
            return self.answer(200, GARBAGE, "text/html")
        if mode == "wrongshape":
            return self.answer(200, WRONGSHAPE)
        if mode == "huge":
            return self.answer(200, HUGE)
        return self.answer(500, HTTP500)

    do_HEAD = do_GET

    def do_POST(self):
        self.drain_body()
        url = urlsplit(self.path)
        st = self.server.state
        if url.path == "/stats/reset":
            with st.lock:
                st.connections = 0
                st.requests = 0
            return self.answer(200, b"reset\n", "text/plain")
        if not url.path.startswith("/mode/"):
            return self.answer(404, b"no such path\n", "text/plain")
        name = url.path[len("/mode/"):]
        if name not in MODES:
            return self.answer(404, ("unknown mode %r\n" % name).encode(), "text/plain")
        ms = parse_qs(url.query).get("ms")
        with st.lock:
            st.mode = name
            if ms and name in st.wait_ms:
                st.wait_ms[name] = int(ms[0])
        return self.answer(200, ("mode %s\n" % name).encode(), "text/plain")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024  # 200 clients connecting at once must not overflow the backlog

    def handle_error(self, request, client_address):
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return  # the client gave up (its timeout, its size cap): expected in fault tests
        super().handle_error(request, client_address)


def main():
    ap = argparse.ArgumentParser(description="local weather service stub")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--slow-ms", type=int, default=3000)
    ap.add_argument("--delay-ms", type=int, default=100)
    ap.add_argument("--mode", choices=MODES, default="ok")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()

    Handler.verbose = args.verbose
    srv = Server(("127.0.0.1", args.port), Handler)
    srv.state = State(args.mode, args.slow_ms, args.delay_ms)

    def stop(signum, frame):
        # shutdown() waits for serve_forever, so it must run on another thread
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, args.port_file)
    try:
        srv.serve_forever(poll_interval=0.1)
    finally:
        srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
