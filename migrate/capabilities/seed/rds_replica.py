"""The consistent seed AWS documents for RDS, where no global read lock is allowed: a temporary read
replica, its replication stopped with `mysql.rds_stop_replication`, the primary's coordinates read from
its replica status (Relay_Master_Log_File / Exec_Master_Log_Pos), the dump taken from it while nothing
moves, then its replication restarted or the replica deleted.
"""

from __future__ import annotations

import dataclasses
import time

from migrate import log
from migrate.adapters import aws
from migrate.adapters.db import Endpoint, Session, connect
from migrate.adapters.dialect import BinlogPosition
from migrate.errors import MigrateError
from migrate.playbook import Playbook

POLL_S = 5.0


class ReplicaError(MigrateError):
    pass


def replica_id(pb: Playbook) -> str:
    return f"{pb.source.rds_instance_id}-migrate-seed"[:63]


def ensure(pb: Playbook, source: Endpoint, *, say=lambda text: None) -> Endpoint:
    """Create the read replica unless it exists, wait until it is available, return how to reach it."""
    rds = aws.client(pb.aws, "rds")
    name = replica_id(pb)
    try:
        instance = rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]
        say(f"read replica {name} exists ({instance['DBInstanceStatus']})")
    except rds.exceptions.DBInstanceNotFoundFault:
        rds.create_db_instance_read_replica(DBInstanceIdentifier=name,
                                            SourceDBInstanceIdentifier=pb.source.rds_instance_id,
                                            Tags=[{"Key": "created-by", "Value": "migrate"}])
        say(f"read replica {name} requested")
        instance = rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]
    deadline = time.monotonic() + pb.seed.replica_timeout_s
    while instance["DBInstanceStatus"] != "available":
        if time.monotonic() > deadline:
            raise ReplicaError(f"read replica {name} is still {instance['DBInstanceStatus']} after "
                               f"{pb.seed.replica_timeout_s:g} s", hint="rerun `migrate start` later: it waits again")
        time.sleep(POLL_S)
        instance = rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]
    endpoint = instance.get("Endpoint") or {}
    host = pb.seed.replica_host or endpoint.get("Address")
    port = pb.seed.replica_port or int(endpoint.get("Port") or source.port)
    if not host:
        raise ReplicaError(f"read replica {name} has no endpoint address", hint="set seed.replica_host")
    return dataclasses.replace(source, host=host, port=port, label="read replica")


def stop_at_position(replica: Session, primary: Session) -> BinlogPosition:
    """Stop the replica's replication and return the primary's coordinates it stopped at."""
    d = replica.dialect
    replica.run(d.rds_stop_replication())
    status = d.parse_replica_status(replica.one(d.replica_status()), gtid=replica.value(d.replica_gtid_position()))
    if not status.configured or status.sql_running:
        raise ReplicaError("the read replica did not stop replicating", hint="check it with SHOW REPLICA STATUS")
    if status.last_sql_errno:
        raise ReplicaError(f"the read replica stopped on an error: {status.last_error}",
                           hint="it does not hold a consistent copy; delete it and rerun `migrate start`")
    file, pos = status.exec_source_log_file, status.exec_source_log_pos
    gtid = None
    if d.is_mariadb:
        gtid = primary.value(primary.dialect.gtid_at(file, pos)) or status.executed_gtid_set
    elif status.executed_gtid_set:
        gtid = status.executed_gtid_set
    return BinlogPosition(file, pos, gtid)


def release(pb: Playbook, replica: Endpoint) -> str:
    """Start the replica's replication again; delete it unless seed.keep_replica."""
    with connect(replica, attempts=2) as s:
        s.run(s.dialect.rds_start_replication())
    if pb.seed.keep_replica:
        return f"read replica {replica_id(pb)} replicating again (seed.keep_replica)"
    rds = aws.client(pb.aws, "rds")
    try:
        rds.delete_db_instance(DBInstanceIdentifier=replica_id(pb), SkipFinalSnapshot=True)
    except Exception as exc:  # noqa: BLE001 - the seed is done; a leftover replica is reported, not fatal
        log.get().warning("could not delete the temporary read replica", replica=replica_id(pb), error=str(exc))
        return f"read replica {replica_id(pb)} could NOT be deleted ({exc}): delete it by hand"
    return f"read replica {replica_id(pb)} deleted"
