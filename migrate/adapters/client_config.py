"""MySQL client option files: how passwords reach mysqldump, mydumper and friends without ever being
on a command line. Written 0600 on the host that runs the tool, deleted when the tool is done."""

from __future__ import annotations

from migrate.adapters.db import Endpoint


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def defaults_file(ep: Endpoint, *, mysql_tools: bool = False) -> bytes:
    """A [client] section for `ep`. `mysql_tools`: Oracle's clients spell TLS `ssl-mode`, MariaDB's `ssl`."""
    lines = ["[client]", f"user={_quote(ep.user)}", f"password={_quote(ep.password.get_secret_value())}",
             f"host={_quote(ep.host)}", f"port={int(ep.port)}"]
    if ep.tls != "disabled":
        if mysql_tools:
            lines.append("ssl-mode=" + ("VERIFY_CA" if ep.ca_file else "REQUIRED" if ep.tls == "required" else "PREFERRED"))
        else:
            lines.append("ssl=1")
            if ep.tls == "required" and ep.ca_file:
                lines.append("ssl-verify-server-cert=1")
        if ep.ca_file:
            lines.append(f"ssl-ca={_quote(ep.ca_file)}")
    return ("\n".join(lines) + "\n").encode()
