"""Writes kastell/link/kastell-mcp.order: the functions `kastell-mcp` runs
to answer `initialize`, `tools/list` and a first `tools/call`, over stdio
and over Streamable HTTP (`--http`), which the release link places
together (kastell/build.rs, BENCHMARKS.md §1b).

Runs the given kastell-mcp under valgrind's callgrind (apt-get install
valgrind) in a temporary KASTELL_DIR, over stdio with SAFE_MODE off and on
and over HTTP with it off, and keeps the symbol names (mangled, as the
linker sees them) of every function of the binary itself that ran. The
names of functions ThinLTO promoted carry a `.llvm.<hash>` suffix that
changes from build to build, so the list goes stale as code changes. Run it after changes that move code on that path
(the listing reports how many names the current binary still has):

    cargo build --release -p kastell --bin kastell-mcp
    python3 bench/scripts/mcp_order.py target/release/kastell-mcp
"""
import http.client
import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time

REQUESTS = [
    {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "mcp-order", "version": "1"}}},
    {"jsonrpc": "2.0", "method": "notifications/initialized"},
    {"jsonrpc": "2.0", "id": 2, "method": "tools/list"},
    {"jsonrpc": "2.0", "id": 3, "method": "tools/call",
     "params": {"name": "server_info", "arguments": {"action": "list"}}},
]


def run(binary, home, safe_mode, out):
    env = {"HOME": home, "KASTELL_DIR": os.path.join(home, "kastell"),
           "KASTELL_SAFE_MODE": safe_mode, "PATH": "/usr/bin:/bin"}
    process = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--demangle=no", f"--callgrind-out-file={out}", binary],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    for request in REQUESTS:
        process.stdin.write((json.dumps(request) + "\n").encode())
        process.stdin.flush()
        if "id" in request:
            process.stdout.readline()
    process.stdin.close()
    process.wait(timeout=300)


HTTP_TOKEN = "mcp-order-token-0123456789abcdef"


def post(port, body, session=None):
    """One POST to /mcp on its own connection: the session id and the body."""
    headers = {"Authorization": f"Bearer {HTTP_TOKEN}", "Content-Type": "application/json",
               "Accept": "application/json, text/event-stream"}
    if session:
        headers["Mcp-Session-Id"] = session
        headers["Mcp-Protocol-Version"] = "2025-06-18"
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    connection.request("POST", "/mcp", json.dumps(body), headers)
    answer = connection.getresponse()
    data = answer.read()
    connection.close()
    return answer.getheader("mcp-session-id"), data


def run_http(binary, home, out):
    """The same requests over Streamable HTTP, one session, then SIGTERM
    (kastell-mcp stops cleanly, and callgrind writes its profile)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {"HOME": home, "KASTELL_DIR": os.path.join(home, "kastell"),
           "KASTELL_SAFE_MODE": "false", "KASTELL_MCP_TOKEN": HTTP_TOKEN,
           "PATH": "/usr/bin:/bin"}
    process = subprocess.Popen(
        ["valgrind", "--tool=callgrind", "--demangle=no", f"--callgrind-out-file={out}",
         binary, "--http", f"127.0.0.1:{port}"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    deadline = time.time() + 300
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=5).close()
            break
        except OSError:
            if time.time() > deadline:
                process.kill()
                raise SystemExit("kastell-mcp --http never listened under callgrind")
            time.sleep(0.2)
    session = None
    for request in REQUESTS:
        found, _ = post(port, request, session)
        session = session or found
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=300)


def functions(profile, binary):
    """The mangled names of the functions of `binary` that ran."""
    objects, names, found = {}, {}, set()
    current = None
    name = os.path.basename(binary)
    for line in open(profile):
        match = re.match(r"^(c?ob|c?fn)=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
        if not match:
            continue
        kind, number, text = match.groups()
        # An id is named where it first appears, as a callee (cob, cfn) too.
        table = objects if kind.endswith("ob") else names
        if text:
            table[number] = text
        if kind == "ob":
            current = objects.get(number, "")
        elif kind == "fn" and current and os.path.basename(current) == name:
            symbol = names.get(number, "")
            if symbol.startswith("_ZN") or symbol.startswith("_R"):
                found.add(symbol)
    return found


def main():
    binary = sys.argv[1]
    here = os.path.dirname(os.path.abspath(__file__))
    target = os.path.join(here, "..", "..", "kastell", "link", "kastell-mcp.order")
    found = set()
    with tempfile.TemporaryDirectory() as home:
        for safe_mode in ("false", "true"):
            profile = os.path.join(home, f"callgrind.{safe_mode}")
            run(binary, home, safe_mode, profile)
            found |= functions(profile, binary)
        profile = os.path.join(home, "callgrind.http")
        run_http(binary, home, profile)
        found |= functions(profile, binary)
    os.makedirs(os.path.dirname(target), exist_ok=True)
    with open(target, "w") as out:
        out.writelines(f"{symbol}\n" for symbol in sorted(found))
    print(f"{len(found)} functions written to {os.path.normpath(target)}")


if __name__ == "__main__":
    main()
