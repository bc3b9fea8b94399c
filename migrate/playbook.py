"""The playbook: one YAML file per migration, validated on load into immutable typed models.

An error names the file, the line, the key path and what was expected. Unknown keys are errors.
Secrets are never inline: each account names `password_env`, `password_file` or `password_secret`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from migrate.errors import PlaybookError

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$"
Port = Annotated[int, Field(ge=1, le=65535)]
Seconds = Annotated[float, Field(gt=0)]


def _expand(path: Path | None) -> Path | None:
    return None if path is None else Path(path).expanduser()


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class SecretRef(Model):
    """Where an account's password comes from. Exactly one source, never the password itself."""

    password_env: str | None = None
    password_file: Path | None = None
    password_secret: str | None = None

    _expand_file = field_validator("password_file")(_expand)

    @model_validator(mode="after")
    def _exactly_one_source(self) -> SecretRef:
        given = [k for k in ("password_env", "password_file", "password_secret") if getattr(self, k)]
        if len(given) > 1:
            raise ValueError(f"give one of password_env, password_file, password_secret, not {' and '.join(given)}")
        if not given and self.password_required:
            raise ValueError("a password source is required: password_env, password_file or password_secret")
        return self

    password_required: ClassVar[bool] = True

    @property
    def has_password(self) -> bool:
        return bool(self.password_env or self.password_file or self.password_secret)


class Aws(Model):
    region: str = "us-east-1"
    profile: str | None = None
    endpoint_url: str | None = None  # the sandbox and tests point this at a moto server
    credentials_file: Path | None = None  # a shared-credentials file other than ~/.aws/credentials

    _expand_file = field_validator("credentials_file")(_expand)


class Tls(Model):
    mode: Literal["required", "preferred", "disabled"] = "required"
    ca_file: Path | None = None

    _expand_file = field_validator("ca_file")(_expand)


class Ssh(Model):
    host: str
    port: Port = 22
    user: str
    key_file: Path = Path("~/.ssh/id_ed25519")
    known_hosts: Path = Path("~/.ssh/known_hosts")
    sudo: bool = False
    connect_timeout_s: Seconds = 10

    _expand_files = field_validator("key_file", "known_hosts")(_expand)


class Source(SecretRef):
    kind: Literal["rds", "mysql"] = "rds"
    rds_instance_id: str | None = None
    host: str | None = None  # resolved through the RDS API when absent
    port: Port = 3306
    user: str
    tls: Tls = Tls()
    ssh: Ssh | None = None  # a self-managed source's host (physical seeding)
    datadir: Path | None = None

    @model_validator(mode="after")
    def _kind_needs(self) -> Source:
        if self.kind == "rds" and not self.rds_instance_id:
            raise ValueError("kind 'rds' needs rds_instance_id")
        if self.kind == "mysql" and not self.host:
            raise ValueError("kind 'mysql' needs host")
        return self


class Service(Model):
    """How to stop and start the target's server on its host (a physical seed replaces its datadir)."""

    stop: str = "systemctl stop mariadb || systemctl stop mysql"
    start: str = "systemctl start mariadb || systemctl start mysql"


class Target(SecretRef):
    host: str
    port: Port = 3306
    user: str
    tls: Tls = Tls(mode="preferred")
    ssh: Ssh | None = None  # None: `migrate` runs on the target host itself
    datadir: Path = Path("/var/lib/mysql")
    service: Service = Service()


class Replication(SecretRef):
    user: str = "repl"
    mode: Literal["auto", "gtid", "file"] = "auto"
    source_host: str | None = None  # how the target reaches the source; default: source.host
    target_host: str | None = None  # how the source reaches the target (reverse replication); default: target.host


class Seed(Model):
    method: Literal["dump", "physical"] = "dump"
    tool: Literal["auto", "mydumper", "mysqldump"] = "auto"
    threads: Annotated[int, Field(ge=1, le=128)] = 4
    databases: list[str] | None = None
    consistency: Literal["auto", "lock", "replica"] = "auto"
    keep_replica: bool = False
    # consistency: replica — where the temporary read replica is reachable (default: the RDS API's endpoint)
    replica_host: str | None = None
    replica_port: Port | None = None
    replica_timeout_s: Seconds = 3600
    stall_timeout_s: Seconds = 60  # a dump that writes nothing this long is stopped (it may hold locks)
    # all: every account of the source but the service's own and the tool's; listed: only the application's,
    # the probe's and the DEFINERs (which `all` carries too). skip_accounts: "user" or "user@host".
    accounts: Literal["all", "listed"] = "all"
    skip_accounts: list[str] = []


class HaproxyRepoint(Model):
    socket: Path
    backend: str = "mysql"
    server: str = "db"
    via_ssh: Ssh | None = None

    _expand_socket = field_validator("socket")(_expand)


class Route53Repoint(Model):
    zone_id: str
    record: str
    ttl: Annotated[int, Field(ge=0)] = 5


class SshFileRepoint(Model):
    hosts: list[Ssh]
    path: Path
    template: str
    reload: str | None = None
    # Checks a candidate file, {file} standing for it (`haproxy -c -q -f haproxy.cfg -f {file}`, `nginx -t -c {file}`):
    # run on each host on the file rendered for the new primary during the gates, before writes are blocked.
    check: str | None = None


class CommandRepoint(Model):
    run: str


class Repoint(Model):
    method: Literal["haproxy", "route53", "ssh_file", "command"] = "haproxy"
    haproxy: HaproxyRepoint | None = None
    route53: Route53Repoint | None = None
    ssh_file: SshFileRepoint | None = None
    command: CommandRepoint | None = None

    @model_validator(mode="after")
    def _method_configured(self) -> Repoint:
        if getattr(self, self.method) is None:
            raise ValueError(f"method '{self.method}' needs a '{self.method}' section")
        return self


class Cutover(Model):
    max_lag_s: Seconds = 1
    stable_for_s: Annotated[float, Field(ge=0)] = 10
    write_block: Literal["revoke_and_kill", "read_only", "parameter_group"] = "revoke_and_kill"
    app_users: list[str] = []
    timeout_s: Seconds = 30
    repoint: Repoint
    reverse_replication: bool = True
    require_verify: bool = False  # the gates ask for a clean `migrate verify` newer than the last start


class Rehearsal(Target):
    """The fire drill's own server (`migrate rehearse`): seeded as a copy of the real target (`clone_target`: a
    physical backup taken on the target host, never touching RDS) or from the source (`dump`), made a replica of
    the source, then switched to by the cutover's own steps while production keeps serving."""

    seed: Literal["clone_target", "dump"] = "clone_target"
    repoint: Repoint  # the rehearsal's own endpoint (never the application's)
    probe_host: str | None = None  # where the drill's probe connects: the endpoint `repoint` moves
    probe_port: Port | None = None  # default: the probe follows the repoint
    drill_user: Annotated[str, Field(pattern=r"^[A-Za-z0-9_]{1,32}$")] = "migrate_drill"
    teardown: bool = False  # afterwards: forget replication, endpoint back on the source, server stopped
    timeout_s: Seconds = 3600  # the seed's bound


class Probe(SecretRef):
    password_required: ClassVar[bool] = False

    enabled: bool = True
    rate: Annotated[float, Field(gt=0, le=2000)] = 50
    host: str | None = None  # the application endpoint; default: the source
    port: Port | None = None
    user: str | None = None  # default: the first of cutover.app_users


class Hooks(Model):
    before_cutover: str | None = None
    after_cutover: str | None = None
    on_failure: str | None = None


class Heartbeat(Model):
    """The heartbeat lag is read from (`migrate heartbeat`, and the writers of status --watch and the switches)."""

    interval_s: Annotated[float, Field(ge=0.05, le=60)] = 0.5
    # `start` installs an event on the source that writes it (its event scheduler must be on): nothing else
    # needs to run beside the migration. Off: `start` drops the event an earlier run installed.
    event: bool = False


class Estimates(Model):
    """Throughput figures `migrate plan` estimates with; unset ones use the defaults measured by bench/."""

    seed_mb_per_s: Annotated[float, Field(gt=0)] | None = None
    apply_mb_per_s: Annotated[float, Field(gt=0)] | None = None
    cutover_downtime_ms: Annotated[float, Field(gt=0)] | None = None
    binlog_sample_s: Annotated[float, Field(gt=0, le=60)] = 2.0


class Playbook(Model):
    name: Annotated[str, Field(pattern=NAME_PATTERN)]
    state_dir: Path = Path("~/.migrate")
    aws: Aws = Aws()
    source: Source
    target: Target
    replication: Replication
    seed: Seed = Seed()
    cutover: Cutover
    probe: Probe = Probe()
    rehearsal: Rehearsal | None = None
    hooks: Hooks = Hooks()
    heartbeat: Heartbeat = Heartbeat()
    estimates: Estimates = Estimates()

    _expand_state = field_validator("state_dir")(_expand)

    @property
    def run_dir(self) -> Path:
        """`<state_dir>/<name>/`: state, journal and reports of this migration."""
        return self.state_dir / self.name


# ---------------------------------------------------------------------------------------------
# Loading, with errors that point at the file, the line and the key path.


def load(path: str | Path) -> Playbook:
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise PlaybookError(f"{path}: no such playbook", hint="pass the path of a playbook YAML with -p") from None
    except OSError as exc:
        raise PlaybookError(f"{path}: cannot read the playbook: {exc.strerror}") from None
    return parse(text, source=str(path))


def parse(text: str, *, source: str = "<playbook>") -> Playbook:
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise PlaybookError(f"{source}: not valid YAML: {exc}") from None
    if root is None:
        raise PlaybookError(f"{source}: the playbook is empty")
    _refuse_duplicate_keys(root, source, ())
    data = yaml.safe_load(text)
    if not isinstance(data, dict):
        raise PlaybookError(f"{source}: the playbook must be a mapping of keys (name, source, target, ...)")
    try:
        return Playbook.model_validate(data)
    except ValidationError as exc:
        lines = [_describe(err, root, source) for err in exc.errors()]
        raise PlaybookError(
            f"{source}: {len(lines)} problem(s) in the playbook:\n  " + "\n  ".join(lines),
            hint="fix the keys named above; playbooks/ has annotated examples",
        ) from None


def _refuse_duplicate_keys(node: yaml.Node, source: str, path: tuple) -> None:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if key.value in seen:
                where = _dotted(path + (key.value,))
                raise PlaybookError(f"{source}:{key.start_mark.line + 1}: {where}: key given twice")
            seen.add(key.value)
            _refuse_duplicate_keys(value, source, path + (key.value,))
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _refuse_duplicate_keys(item, source, path + (i,))


_SECRET_WORDS = re.compile(r"pass|secret|token|key", re.I)


def _describe(err: dict[str, Any], root: yaml.Node, source: str) -> str:
    loc = tuple(p for p in err["loc"] if not isinstance(p, str) or not p.startswith("function-"))
    where = _dotted(loc) or "(top level)"
    line = _line_of(root, loc)
    prefix = f"{source}:{line}" if line else source
    kind = err["type"]
    if kind == "extra_forbidden":
        key = str(loc[-1]) if loc else ""
        if key == "password":
            what = "inline passwords are not allowed; use password_env, password_file or password_secret"
        else:
            allowed = _allowed_keys(loc[:-1])
            what = "unknown key" + (f" (allowed here: {', '.join(allowed)})" if allowed else "")
    elif kind == "missing":
        what = "required key is missing"
    else:
        what = err["msg"].removeprefix("Value error, ")
        shown = err.get("input")
        if not isinstance(shown, dict | list) and shown is not None and not _SECRET_WORDS.search(where):
            what += f" (got {shown!r})"
    return f"{prefix}: {where}: {what}"


def _dotted(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _line_of(root: yaml.Node, loc: tuple) -> int | None:
    """The 1-based line of the deepest node of `loc` present in the YAML."""
    node, line = root, None
    for part in loc:
        if isinstance(node, yaml.MappingNode):
            match = next(((k, v) for k, v in node.value if k.value == part), None)
            if match is None:
                break
            line, node = match[0].start_mark.line + 1, match[1]
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            node = node.value[part]
            line = node.start_mark.line + 1
        else:
            break
    return line


def _allowed_keys(loc: tuple) -> list[str]:
    model: Any = Playbook
    for part in loc:
        if isinstance(part, int):
            continue
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        model = _model_in(field.annotation)
        if model is None:
            return []
    return list(getattr(model, "model_fields", {}))


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found:
            return found
    return None
