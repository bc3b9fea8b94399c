"""Makes a MariaDB server behave like RDS for MariaDB where `migrate` cares.

- The master user gets RDS's grant list: no SUPER, no RELOAD (so no FLUSH TABLES WITH READ LOCK), no
  READ_ONLY ADMIN (no SET GLOBAL read_only), no BINLOG ADMIN (no SET sql_log_bin=0), no CONNECTION
  ADMIN (no KILL of other users' sessions).
- The `mysql.rds_*` procedures, with RDS's signatures, defined by `rdsadmin`, an account that holds
  what the master user lacks and that nobody can log in as.
"""

from __future__ import annotations

from migrate.adapters.db import Session, quote_string

# RDS for MariaDB's master-user privileges, minus RELOAD (RDS's RELOAD does not allow a global read lock).
MASTER_USER_PRIVILEGES = (
    "SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, PROCESS, REFERENCES, INDEX, ALTER, SHOW DATABASES, "
    "CREATE TEMPORARY TABLES, LOCK TABLES, EXECUTE, REPLICATION SLAVE, BINLOG MONITOR, SLAVE MONITOR, "
    "CREATE VIEW, SHOW VIEW, CREATE ROUTINE, ALTER ROUTINE, CREATE USER, EVENT, TRIGGER"
)

CONFIGURATION = [
    ("binlog retention hours", None,
     "binlog retention hours specifies the duration in hours before binary logs are automatically deleted."),
    ("source delay", "0", "source delay specifies replication delay in seconds between current instance "
                          "and its master."),
    ("target delay", "0", "target delay specifies replication delay in seconds between current instance "
                          "and its future read-replica."),
]

_DEFINER = "DEFINER='rdsadmin'@'localhost'"



def _kill_procedure(name: str, what: str) -> str:
    """rds_kill / rds_kill_query: KILL with the definer's rights, never of rdsadmin's own sessions."""
    return f"""
CREATE {_DEFINER} PROCEDURE mysql.{name}(IN thread BIGINT)
SQL SECURITY DEFINER
BEGIN
  IF (SELECT user FROM information_schema.processlist WHERE id = thread) = 'rdsadmin' THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'ERROR: Not allowed to kill this thread';
  END IF;
  KILL {what} thread;
END"""


PROCEDURES = {
    "rds_set_configuration": f"""
CREATE {_DEFINER} PROCEDURE mysql.rds_set_configuration(IN name VARCHAR(30), IN value INT)
SQL SECURITY DEFINER
BEGIN
  IF name NOT IN ('binlog retention hours', 'source delay', 'target delay') THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'Invalid configuration name';
  END IF;
  IF name = 'binlog retention hours' AND value IS NOT NULL AND (value < 1 OR value > 2160) THEN
    SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'binlog retention hours must be between 1 and 2160';
  END IF;
  UPDATE mysql.rds_configuration c SET c.value = value WHERE c.name = name;
END""",
    "rds_show_configuration": f"""
CREATE {_DEFINER} PROCEDURE mysql.rds_show_configuration()
SQL SECURITY DEFINER
BEGIN
  SELECT name, value, description FROM mysql.rds_configuration ORDER BY name;
END""",
    "rds_kill": _kill_procedure("rds_kill", "CONNECTION"),
    "rds_kill_query": _kill_procedure("rds_kill_query", "QUERY"),
    "rds_stop_replication": f"""
CREATE {_DEFINER} PROCEDURE mysql.rds_stop_replication()
SQL SECURITY DEFINER
BEGIN
  STOP SLAVE;
  SELECT 'Slave is down or disabled' AS Message;
END""",
    "rds_start_replication": f"""
CREATE {_DEFINER} PROCEDURE mysql.rds_start_replication()
SQL SECURITY DEFINER
BEGIN
  START SLAVE;
  SELECT 'Slave running normally.' AS Message;
END""",
    "rds_set_external_master": f"""
CREATE {_DEFINER} PROCEDURE mysql.rds_set_external_master(
  IN host_name VARCHAR(255), IN host_port INT, IN replication_user_name VARCHAR(255),
  IN replication_user_password VARCHAR(255), IN mysql_binary_log_file_name VARCHAR(255),
  IN mysql_binary_log_file_location BIGINT, IN ssl_encryption INT)
SQL SECURITY DEFINER
BEGIN
  SET @rds_sql = CONCAT('CHANGE MASTER TO MASTER_HOST=', QUOTE(host_name), ', MASTER_PORT=', host_port,
    ', MASTER_USER=', QUOTE(replication_user_name), ', MASTER_PASSWORD=', QUOTE(replication_user_password),
    ', MASTER_LOG_FILE=', QUOTE(mysql_binary_log_file_name), ', MASTER_LOG_POS=', mysql_binary_log_file_location,
    ', MASTER_USE_GTID=no, MASTER_SSL=', IF(ssl_encryption = 1, 1, 0));
  PREPARE rds_stmt FROM @rds_sql;
  SET @rds_sql = NULL;
  EXECUTE rds_stmt;
  DEALLOCATE PREPARE rds_stmt;
END""",
    "rds_set_external_master_gtid": f"""
CREATE {_DEFINER} PROCEDURE mysql.rds_set_external_master_gtid(
  IN host_name VARCHAR(255), IN host_port INT, IN replication_user_name VARCHAR(255),
  IN replication_user_password VARCHAR(255), IN gtid VARCHAR(255), IN ssl_encryption INT)
SQL SECURITY DEFINER
BEGIN
  SET GLOBAL gtid_slave_pos = gtid;
  SET @rds_sql = CONCAT('CHANGE MASTER TO MASTER_HOST=', QUOTE(host_name), ', MASTER_PORT=', host_port,
    ', MASTER_USER=', QUOTE(replication_user_name), ', MASTER_PASSWORD=', QUOTE(replication_user_password),
    ', MASTER_USE_GTID=slave_pos, MASTER_SSL=', IF(ssl_encryption = 1, 1, 0));
  PREPARE rds_stmt FROM @rds_sql;
  SET @rds_sql = NULL;
  EXECUTE rds_stmt;
  DEALLOCATE PREPARE rds_stmt;
END""",
    "rds_reset_external_master": f"""
CREATE {_DEFINER} PROCEDURE mysql.rds_reset_external_master()
SQL SECURITY DEFINER
BEGIN
  STOP SLAVE;
  RESET SLAVE ALL;
  SELECT 'Slave has been reset' AS Message;
END""",
}


def install(root: Session, *, master_user: str, master_password: str, rdsadmin_password: str) -> None:
    """Run as the server's root: the rdsadmin definer, the procedures, the master user with RDS's grants."""
    root.run(root.dialect.create_user("rdsadmin", rdsadmin_password, "localhost", if_not_exists=True))
    root.run("ALTER USER 'rdsadmin'@'localhost' ACCOUNT LOCK")
    root.run("GRANT ALL PRIVILEGES ON *.* TO 'rdsadmin'@'localhost' WITH GRANT OPTION")
    root.run("CREATE TABLE IF NOT EXISTS mysql.rds_configuration (name VARCHAR(100) NOT NULL PRIMARY KEY, "
             "value VARCHAR(100) NULL, description VARCHAR(300) NOT NULL) ENGINE=InnoDB")
    for name, value, description in CONFIGURATION:
        root.run("INSERT IGNORE INTO mysql.rds_configuration (name, value, description) VALUES (%s, %s, %s)",
                 (name, value, description))
    for name, body in PROCEDURES.items():
        root.run(f"DROP PROCEDURE IF EXISTS mysql.{name}")
        root.run(body)
    account = f"{quote_string(master_user)}@'%'"
    root.run(root.dialect.create_user(master_user, master_password, if_not_exists=True))
    root.run(f"GRANT {MASTER_USER_PRIVILEGES} ON *.* TO {account} WITH GRANT OPTION")


def installed(root: Session, master_user: str) -> bool:
    count = root.value("SELECT COUNT(*) FROM information_schema.routines WHERE routine_schema = 'mysql' "
                       "AND routine_name IN (" + ", ".join(["%s"] * len(PROCEDURES)) + ")", tuple(PROCEDURES))
    user = root.value("SELECT COUNT(*) FROM mysql.user WHERE User = %s AND Host = '%%'", (master_user,))
    return count == len(PROCEDURES) and user == 1
