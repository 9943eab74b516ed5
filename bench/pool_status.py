#!/usr/bin/env python3
"""springfield's workers as its status page sees them, for bench/workers.sh.

    bench/pool_status.py HOST:PORT|unix:PATH [PROCESSES]

Asks GET /status?format=json straight over FastCGI and prints a line per
worker row: pid, requests answered, connections open.  With PROCESSES > 1
(independent processes sharing a port through SO_REUSEPORT, each with its
own status page), it asks on fresh connections until that many different
processes have answered (the kernel picks one per connection), 200 tries
at most, and prints the rows of all of them.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                "tests", "integration"))
import fcgi_client  # noqa: E402


def main():
    where = sys.argv[1]
    processes = int(sys.argv[2]) if len(sys.argv) > 2 else 1
    if where.startswith("unix:"):
        address = where[5:]
    else:
        host, _, port = where.rpartition(":")
        address = (host, int(port))
    rows = {}
    seen = set()
    for _ in range(200):
        doc = fcgi_client.status_json(address)
        seen.add(doc["answered_by"])
        for w in doc["workers"]:
            rows[w["pid"]] = (w["answered"], w["connections"])
        if len(seen) >= processes:
            break
    else:
        sys.exit("pool_status.py: %d of %d processes answered" % (len(seen), processes))
    for pid in sorted(rows):
        print(int(pid), int(rows[pid][0]), int(rows[pid][1]))


if __name__ == "__main__":
    main()
