"""The sandbox's moto server: moto's own server, with what the sandbox needs of RDS's parameter groups that
moto (5.x) lacks or does differently from AWS, added here before the server starts.

    python -m migrate.sandbox.moto_server --dir SANDBOX -H 127.0.0.1 -p PORT

- `reset_db_parameter_group`, which moto answers with "The reset_db_parameter_group action has not been
  implemented": as on AWS, the named parameters (or, with ResetAllParameters, all of them) leave the group,
  so the engine's default applies again. The `parameter_group` write blocker's rollback calls it when the
  group did not set read_only before the cutover.
- Modifying or resetting a `default.*` group is refused, as AWS refuses it ("InvalidParameterValue: Cannot
  modify a default parameter group."); moto would change its stored copy.
- `describe_db_parameters` keeps moto's answer (only the parameters the group sets: moto knows no engine
  defaults, where AWS lists hundreds with Source engine-default) but labels them Source "user" as AWS does,
  and honours the Source filter: Source=user gives them, engine-default or system gives none.

Everything else is moto's. `--dir` only names the sandbox on the command line, so that `sandbox down` can
find the process after a crash (see procs.processes_mentioning).
"""

from __future__ import annotations

import sys
from typing import Any

DEFAULT_GROUP_REFUSED = "Cannot modify a default parameter group."


def _refuse_default(name: str) -> None:
    from moto.rds.exceptions import InvalidParameterValue

    if name.lower().startswith("default."):
        raise InvalidParameterValue(DEFAULT_GROUP_REFUSED)


def _backend_reset(self: Any, name: str, reset_all: bool, parameters: list[dict[str, Any]]) -> Any:
    """RDSBackend.reset_db_parameter_group: the named parameters (or all) leave the group."""
    from moto.rds.exceptions import DBParameterGroupNotFoundError, InvalidParameterCombination

    if name not in self.db_parameter_groups:
        raise DBParameterGroupNotFoundError(name)
    _refuse_default(name)
    if reset_all == bool(parameters):
        raise InvalidParameterCombination("Specify either ResetAllParameters or Parameters, not both or neither")
    group = self.db_parameter_groups[name]
    if reset_all:
        group.parameters.clear()
    for parameter in parameters:
        group.parameters.pop(parameter["ParameterName"], None)
    return group


def _response_reset(self: Any) -> Any:
    """RDSResponse.reset_db_parameter_group (Action=ResetDBParameterGroup)."""
    from moto.core.responses import ActionResult

    name = self.params.get("DBParameterGroupName")
    parameters = [p.original_dict() if hasattr(p, "original_dict") else dict(p)
                  for p in self.params.get("Parameters", [])]
    reset_all = str(self.params.get("ResetAllParameters", False)).lower() == "true"
    group = self.backend.reset_db_parameter_group(name, reset_all, parameters)
    return ActionResult({"DBParameterGroupName": group.name})


def _labelled_by_source(describe: Any) -> Any:
    def describe_db_parameters(self: Any) -> Any:
        result = describe(self)
        wanted = self.params.get("Source")
        listed = [{"Source": "user", **p} for p in result.result["Parameters"]]
        result.result["Parameters"] = [] if wanted and wanted != "user" else listed
        return result

    return describe_db_parameters


def install() -> None:
    """Add the above to moto's RDS backend and responses (in this process only)."""
    from moto.rds.models import RDSBackend
    from moto.rds.responses import RDSResponse

    modify = RDSBackend.modify_db_parameter_group

    def modify_refusing_defaults(self: Any, name: str, parameters: Any) -> Any:
        if name in self.db_parameter_groups:  # an unknown group stays moto's "not found"
            _refuse_default(name)
        return modify(self, name, parameters)

    RDSBackend.modify_db_parameter_group = modify_refusing_defaults
    RDSBackend.reset_db_parameter_group = _backend_reset
    RDSResponse.reset_db_parameter_group = _response_reset
    RDSResponse.describe_db_parameters = _labelled_by_source(RDSResponse.describe_db_parameters)


def main(argv: list[str] | None = None) -> None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--dir" in argv:  # ours, not moto's
        at = argv.index("--dir")
        del argv[at:at + 2]
    install()
    from moto.server import main as moto_main

    moto_main(argv)


if __name__ == "__main__":
    main()
