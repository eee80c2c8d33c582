"""Memory of `kastell-mcp --http` under many sessions (BENCHMARKS.md §9).

Sends N MCP `initialize` requests over Streamable HTTP, one after another on
one keep-alive connection, each opening a new session that is never used
again, and prints the server's RSS before and after and whether the first
session is still alive. Loopback only; the server runs in a temporary
KASTELL_DIR and is stopped at the end.

    python3 bench/scripts/http_sessions.py target/release/kastell-mcp 20000 \
        [KASTELL_MCP_MAX_SESSIONS=100 ...]
"""
import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

TOKEN = "bench-token-0123456789abcdef"


def main():
    binary, count = sys.argv[1], int(sys.argv[2])
    port = 18765
    home = tempfile.mkdtemp()
    env = dict(os.environ, KASTELL_DIR=home, HOME=home, KASTELL_MCP_TOKEN=TOKEN)
    for setting in sys.argv[3:]:
        name, value = setting.split("=", 1)
        env[name] = value
    server = subprocess.Popen([binary, "--http", f"127.0.0.1:{port}"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), 0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        report = run(server.pid, port, count)
        print(json.dumps(report))
    finally:
        server.terminate()
        server.wait()


def rss_mb(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS"):
                return round(int(line.split()[1]) / 1024, 1)
    return None


def run(pid, port, count):
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "bench", "version": "1"}}})
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json",
               "Accept": "application/json, text/event-stream"}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)

    def initialize():
        conn.request("POST", "/mcp", body, headers)
        response = conn.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"initialize answered {response.status}")
        return response.getheader("mcp-session-id")

    first = initialize()
    before = rss_mb(pid)
    started = time.time()
    for _ in range(count):
        initialize()
    took = time.time() - started
    time.sleep(1)
    after = rss_mb(pid)
    conn.request("POST", "/mcp", json.dumps({"jsonrpc": "2.0", "method": "notifications/initialized"}),
                 dict(headers, **{"mcp-session-id": first}))
    answer = conn.getresponse()
    answer.read()
    return {"initializes": count, "rss_before_mb": before, "rss_after_mb": after,
            "seconds": round(took, 1), "first_session_status": answer.status}


if __name__ == "__main__":
    main()
