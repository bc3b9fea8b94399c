"""SHOW GRANTS lines, parsed: which privileges on which object for which account.

MariaDB prints password hashes in SHOW GRANTS (`IDENTIFIED BY PASSWORD '*...'`): `Grant` never keeps
them, so a parsed grant may be stored in the run state or printed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_GRANT = re.compile(r"^GRANT (?P<privs>.+?) ON (?P<on>(?:PROCEDURE |FUNCTION )?\S+) TO (?P<account>\S+@\S+)"
                    r"(?P<rest>.*)$", re.S)
_ROLE_GRANT = re.compile(r"^GRANT (?P<roles>.+?) TO (?P<account>\S+@\S+)", re.S)
# Privileges that read only; every other privilege can change data or schema and is blocked at cutover.
READ_PRIVILEGES = frozenset({
    "SELECT", "SHOW VIEW", "SHOW DATABASES", "PROCESS", "USAGE", "REPLICATION CLIENT", "BINLOG MONITOR",
    "SLAVE MONITOR", "REPLICA MONITOR", "GRANT OPTION",
})


@dataclass(frozen=True)
class Grant:
    privileges: tuple[str, ...]  # "SELECT", "INSERT (`col`)", "ALL PRIVILEGES"
    on: str  # `shop`.*  or  PROCEDURE `shop`.`p`
    account: str  # `app_rw`@`%`
    with_grant_option: bool = False

    @property
    def is_all(self) -> bool:
        return any(p.upper() in ("ALL", "ALL PRIVILEGES") for p in self.privileges)

    def write_privileges(self) -> tuple[str, ...]:
        """The privileges of this grant that can write; ALL PRIVILEGES counts as writing."""
        if self.is_all:
            return ("ALL PRIVILEGES",)
        return tuple(p for p in self.privileges if _base(p) not in READ_PRIVILEGES)

    def sql(self, privileges: tuple[str, ...] | None = None) -> str:
        privs = ", ".join(privileges or self.privileges)
        return f"GRANT {privs} ON {self.on} TO {self.account}" + (" WITH GRANT OPTION" if self.with_grant_option
                                                                 and privileges is None else "")

    def revoke_sql(self, privileges: tuple[str, ...]) -> str:
        return f"REVOKE {', '.join(privileges)} ON {self.on} FROM {self.account}"

    def as_dict(self) -> dict:
        return {"privileges": list(self.privileges), "on": self.on, "account": self.account,
                "with_grant_option": self.with_grant_option}

    @classmethod
    def from_dict(cls, d: dict) -> Grant:
        return cls(tuple(d["privileges"]), d["on"], d["account"], d.get("with_grant_option", False))


class RoleGrantFound(ValueError):
    """A role grant: privileges that REVOKE on the account itself cannot take away."""


def parse(line: str) -> Grant | None:
    """A Grant, or None for lines that grant nothing revocable (PROXY). Raises RoleGrantFound for roles."""
    line = line.strip().rstrip(";")
    if line.startswith("GRANT PROXY ON"):
        return None
    m = _GRANT.match(line)
    if not m:
        if _ROLE_GRANT.match(line):
            raise RoleGrantFound(line.split(" TO ")[0])
        raise ValueError(f"cannot read grant line: {line[:80]}")
    return Grant(tuple(_split_privileges(m["privs"])), m["on"], m["account"], "WITH GRANT OPTION" in m["rest"])


_DEFAULT_ROLE = re.compile(r"^SET DEFAULT ROLE `?(?P<role>[^`]+?)`? FOR ")


def default_role(lines: list[str]) -> str | None:
    """The role MariaDB enables at login (`SET DEFAULT ROLE` line of SHOW GRANTS), if any."""
    return next((m["role"] for m in map(_DEFAULT_ROLE.match, lines) if m), None)


def roles_granted(lines: list[str]) -> list[str]:
    """Role names granted by `GRANT `r1`, `r2` TO ...` lines (those without ON)."""
    out = []
    for line in lines:
        m = _ROLE_GRANT.match(line.strip())
        if m and " ON " not in m["roles"] and not _GRANT.match(line.strip()):
            out += [r.strip().strip("`") for r in m["roles"].split(",")]
    return out


def global_privileges(lines: list[str]) -> set[str]:
    """The privileges granted ON *.* by `lines`, upper case; "GRANT OPTION" when one of them is given with it."""
    out: set[str] = set()
    for line in lines:
        head = line.split(" ON ", 1)
        if len(head) == 2 and head[0].startswith("GRANT ") and head[1].startswith("*.*"):
            out |= {p.strip().upper() for p in head[0].removeprefix("GRANT ").split(",")}
            if "WITH GRANT OPTION" in head[1]:
                out.add("GRANT OPTION")
    return out


def may_grant_proxy(lines: list[str]) -> bool:
    """Whether `lines` hold PROXY ON ''@'%' WITH GRANT OPTION (what granting any PROXY needs)."""
    return any(g.replace("`", "'").startswith("GRANT PROXY ON ''@'%'") and "WITH GRANT OPTION" in g for g in lines)


def without_credentials(line: str) -> str:
    """The grant line minus any IDENTIFIED BY/VIA clause (MariaDB prints password hashes there)."""
    return re.sub(r" IDENTIFIED (BY|VIA|WITH) .*?(?= WITH | REQUIRE |$)", "", line.strip(), flags=re.S)


def comparable(line: str) -> str:
    """The grant line as two servers holding the same grant print it alike: no credentials, and the columns of a
    column grant in one order (servers list them in whatever order they keep them)."""
    head, on, rest = without_credentials(line).partition(" ON ")
    head = re.sub(r"\(([^)]*)\)", lambda m: "(" + ", ".join(sorted(c.strip() for c in m[1].split(","))) + ")", head)
    return head + on + rest


def _split_privileges(text: str) -> list[str]:
    """Split on commas outside parentheses: "SELECT, INSERT (`a`, `b`)" -> ["SELECT", "INSERT (`a`, `b`)"]."""
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current.strip())
    return parts


def _base(privilege: str) -> str:
    return privilege.split("(")[0].strip().upper()
