"""The sandbox's application-tier scripts, as a DBA's own would be: the standard library only, run by path
(`python3 -I -S haproxy_tool.py ...`: no site-packages), so that starting one costs ~20 ms. Run as
`python -m migrate...`, the same work paid migrate's imports first (0.3 s, measured), which the bench then counted as
repoint time.

    point SOCKET HOST PORT   set HAProxy's application server (mysql/db) to HOST:PORT, shut its open sessions
    reload                   in an application host's directory: reload its HAProxy gracefully (SIGUSR2 to the
                             master), wait until the new worker serves backend.cfg's server. The configuration is
                             checked before, by the playbook's ssh_file `check` (`haproxy -c`), out of the write gap
"""

from __future__ import annotations

import os
import re
import signal
import socket
import sys
import time
from pathlib import Path

TARGET = "mysql/db"  # the sandbox's backend/server (migrate.sandbox.haproxy BACKEND/SERVER)
REFUSED = ("Unknown command", "Permission denied", "No such", "Can't find", "Require ", "usage:", "Invalid ")


def command(path: str, line: str) -> str:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(line.encode() + b"\n")
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    text = answer.decode().strip()
    if text.startswith(REFUSED):
        raise SystemExit(f"HAProxy refused `{line}`: {text}")
    return text


def point(path: str, host: str, port: str) -> str:
    said = command(path, f"set server {TARGET} addr {host} port {int(port)}")
    command(path, f"shutdown sessions server {TARGET}")
    return f"{said or 'unchanged'}; sessions on the old server shut"


def reload() -> str:
    wanted = re.search(r"server db (\S+):(\d+)", Path("backend.cfg").read_text())
    if not wanted:
        raise SystemExit("backend.cfg has no `server db host:port` line")
    master = int(Path("haproxy.pid").read_text().strip())
    os.kill(master, signal.SIGUSR2)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            lines = command("admin.sock", "show servers state mysql").splitlines()
        except (OSError, SystemExit):
            lines = []  # the new worker is still starting
        names = next((line[1:].split() for line in lines if line.startswith("#")), [])
        rows = [dict(zip(names, line.split(), strict=False)) for line in lines if line[:1].isdigit() and " " in line]
        row = next((r for r in rows if r.get("srv_name") == "db"), None)
        if row and (row.get("srv_addr"), row.get("srv_port")) == wanted.groups():
            return f"HAProxy (master {master}) reloaded: {TARGET} -> {wanted.group(1)}:{wanted.group(2)}"
        time.sleep(0.01)
    raise SystemExit(f"HAProxy did not serve {wanted.group(1)}:{wanted.group(2)} within 10 s of its reload")


if __name__ == "__main__":
    what, *args = sys.argv[1:] or ["--help"]
    if what == "point" and len(args) == 3:
        print(point(*args))
    elif what == "reload" and not args:
        print(reload())
    else:
        raise SystemExit(__doc__)
