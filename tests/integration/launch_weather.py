"""The local weather stub (tests/stubs/weather_stub.py) as a launcher.

    w = WeatherStub(tmpdir, slow_ms=3000)
    w.start()
    w.uri                  # http://127.0.0.1:PORT/weather, for WEATHER_URI
    w.mode("garbage")      # switch the answer; w.mode("slow", ms=3000)
    w.stats()              # {"mode", "connections", "requests"}; w.reset_stats()
    w.stop(); w.start()    # "down" and back, on the same port

Ready when the stub has written its port file and accepts connections.
"""

import http.client
import json
import os

from servers import REPO, Server, ServerError, free_port, tail, tcp_ready

STUB = os.path.join(REPO, "tests", "stubs", "weather_stub.py")
PYTHON = "/usr/bin/python3"


class WeatherStub(Server):
    name = "weather"

    def __init__(self, tmpdir, mode="ok", slow_ms=None, delay_ms=None):
        super().__init__(tmpdir)
        self.port = free_port()
        self.initial_mode = mode
        self.slow_ms = slow_ms
        self.delay_ms = delay_ms
        self.port_file = os.path.join(self.dir, "port")

    @property
    def uri(self):
        return "http://127.0.0.1:%d/weather" % self.port

    def write_config(self):
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)

    def command(self):
        if not os.path.exists(STUB):
            raise ServerError("weather stub %s is missing" % STUB)
        cmd = [PYTHON, "-B", STUB, "--port", str(self.port),
               "--port-file", self.port_file, "--mode", self.initial_mode]
        if self.slow_ms is not None:
            cmd += ["--slow-ms", str(self.slow_ms)]
        if self.delay_ms is not None:
            cmd += ["--delay-ms", str(self.delay_ms)]
        return cmd

    def ready(self):
        return os.path.exists(self.port_file) and tcp_ready(self.port)

    def _call(self, method, path):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=5)
        try:
            conn.request(method, path)
            r = conn.getresponse()
            return r.status, r.read()
        except OSError as e:
            raise ServerError("weather stub %s %s: %s\n--- log tail ---\n%s"
                              % (method, path, e, tail(self.log_path)))
        finally:
            conn.close()

    def mode(self, name, ms=None):
        path = "/mode/" + name + ("?ms=%d" % ms if ms is not None else "")
        status, body = self._call("POST", path)
        if status != 200:
            raise ServerError("weather stub refused mode %r: %d %r" % (name, status, body))

    def reset_stats(self):
        status, body = self._call("POST", "/stats/reset")
        if status != 200:
            raise ServerError("weather stub /stats/reset: %d %r" % (status, body))

    def stats(self):
        status, body = self._call("GET", "/stats")
        if status != 200:
            raise ServerError("weather stub /stats: %d %r" % (status, body))
        return json.loads(body)
