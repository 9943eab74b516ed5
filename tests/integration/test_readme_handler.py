"""The README's "Adding a handler" example builds and answers.

The example (routes/ned.c, its method table and its route row) is taken
from README.md as written, put into a copy of the tree the way the README
says (declared in routes/handlers.h, the rows in routes/table.c, the file
in Makefile.am), built, and asked for: an example that no longer compiles,
or that the router does not reach, fails here.
"""

import os
import re
import subprocess

import fcgi_client as fc
import servers

README = os.path.join(servers.REPO, "README.md")
BUILD_TIMEOUT = 900


def run(cmd, cwd):
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, timeout=BUILD_TIMEOUT,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 0, "%s failed:\n%s" % (" ".join(cmd), r.stderr.decode()[-3000:])
    return r


def readme_example():
    """(ned.c, the method-table line, the route-row line) from the README."""
    text = open(README, encoding="utf-8").read()
    start = text.index("## Adding a handler")
    section = text[start:text.index("\n## ", start + 1)]
    blocks = re.findall(r"```c\n(.*?)```", section, re.S)
    assert len(blocks) >= 2, "the handler section has no two C blocks"
    handler, rows = blocks[0], blocks[1]
    assert handler.startswith("/* routes/ned.c */"), handler[:80]
    methods = [l for l in rows.splitlines() if l.startswith("static const struct route_method")]
    route = [l.strip() for l in rows.splitlines() if '"/api/v1/ned"' in l]
    assert len(methods) == 1 and len(route) == 1, rows
    return handler, methods[0], route[0]


def add_after(path, anchor, text):
    with open(path) as f:
        body = f.read()
    at = body.index(anchor) + len(anchor)
    with open(path, "w") as f:
        f.write(body[:at] + text + body[at:])


def test_the_readme_handler_builds_and_answers(workdir, launch):
    handler, methods, route = readme_example()
    src = os.path.join(workdir, "src")
    run(["make", "distdir", "distdir=" + src], servers.REPO)
    with open(os.path.join(src, "routes", "ned.c"), "w") as f:
        f.write(handler)
    add_after(os.path.join(src, "routes", "handlers.h"),
              "void flanders_get(struct fcgi_request *r, const struct route_match *m);\n",
              "void ned_get(struct fcgi_request *r, const struct route_match *m);\n")
    add_after(os.path.join(src, "routes", "table.c"), '#include "routes/kv_route.h"\n\n',
              methods + "\n")
    add_after(os.path.join(src, "routes", "table.c"), "const struct route route_rows[] = {\n",
              "    " + route + "\n")
    add_after(os.path.join(src, "Makefile.am"), "\troutes/flanders.c \\\n", "\troutes/ned.c \\\n")
    run(["autoreconf", "-fi"], src)
    run(["./configure", "--quiet"], src)
    build = run(["make", "-j2", "springfield"], src)
    assert b"warning:" not in build.stderr, build.stderr.decode()[-3000:]
    sf = launch(servers.Springfield, binary=os.path.join(src, "springfield"))
    status, _, body = fc.request(sf.sock, "GET", "/api/v1/ned").http()
    assert (status, body) == (200, b"Okily dokily!"), (status, body)
    status, headers, _ = fc.request(sf.sock, "POST", "/api/v1/ned").http()
    assert status == 405, status
    assert fc.request(sf.sock, "GET", "/api/v1/flanders").http()[0] == 200
