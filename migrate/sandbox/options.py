"""What a sandbox is made with (`migrate sandbox up --write-block M --repoint R --source S`): light on purpose,
the command line's parser reads these choices without importing the sandbox (boto3 alone costs 0.1 s)."""

from __future__ import annotations

from dataclasses import dataclass

from migrate.errors import BadInput

WRITE_BLOCKS = ("revoke_and_kill", "read_only", "parameter_group")
REPOINTS = ("haproxy", "command", "ssh_file", "route53")
SOURCES = ("rds", "self-managed")


@dataclass(frozen=True)
class Options:
    """How the sandbox's playbook blocks writes and repoints, and what kind of source it migrates from: each
    wired for real (`migrate sandbox up --write-block M --repoint R --source S`)."""

    write_block: str = "revoke_and_kill"
    repoint: str = "haproxy"
    source: str = "rds"

    def __post_init__(self) -> None:
        for name, allowed in (("write_block", WRITE_BLOCKS), ("repoint", REPOINTS), ("source", SOURCES)):
            if getattr(self, name) not in allowed:
                raise BadInput(f"sandbox {name.replace('_', '-')} {getattr(self, name)!r} is not one of "
                               f"{', '.join(allowed)}")
        if self.write_block == "parameter_group" and self.source != "rds":
            raise BadInput("write block parameter_group needs an RDS source (it sets read_only in the instance's "
                           "parameter group)", hint="use --source rds, or --write-block read_only")
        if self.write_block == "read_only" and self.source == "rds":
            raise BadInput("write block read_only needs a self-managed source: RDS's master user cannot set "
                           "read_only", hint="use --source self-managed, or --write-block parameter_group")

    def as_dict(self) -> dict[str, str]:
        return {"write_block": self.write_block, "repoint": self.repoint, "source": self.source}
