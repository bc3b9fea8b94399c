"""The sandbox's application: a small shop schema with a trigger, a view and a routine, N orders,
an application account that connects through HAProxy, and a developer account that owns the code
objects (so their DEFINER is not the master user, as in real life)."""

from __future__ import annotations

import random
from collections.abc import Callable

from migrate.adapters.db import Session, quote_ident

SCHEMA = "shop"
APP_USER = "app_rw"
OWNER_USER = "shop_owner"
SKUS = [f"SKU-{i:04d}" for i in range(1, 201)]
BATCH = 2000
OWNER_PRIVILEGES = ("SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER, REFERENCES, CREATE VIEW, SHOW VIEW, "
                    "CREATE ROUTINE, ALTER ROUTINE, EXECUTE, TRIGGER, EVENT, LOCK TABLES, CREATE TEMPORARY TABLES")

TABLES = [
    """CREATE TABLE customers (
  id INT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  email VARCHAR(190) NOT NULL,
  name VARCHAR(100) NOT NULL,
  created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  UNIQUE KEY uk_email (email)
) ENGINE=InnoDB""",
    """CREATE TABLE orders (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  customer_id INT UNSIGNED NOT NULL,
  status ENUM('new','paid','shipped') NOT NULL DEFAULT 'new',
  total_cents BIGINT NOT NULL DEFAULT 0,
  created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
  KEY ix_customer (customer_id),
  CONSTRAINT fk_orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id)
) ENGINE=InnoDB""",
    """CREATE TABLE order_lines (
  order_id BIGINT UNSIGNED NOT NULL,
  line_no SMALLINT UNSIGNED NOT NULL,
  sku VARCHAR(32) NOT NULL,
  qty INT NOT NULL,
  price_cents INT NOT NULL,
  PRIMARY KEY (order_id, line_no),
  CONSTRAINT fk_lines_order FOREIGN KEY (order_id) REFERENCES orders (id)
) ENGINE=InnoDB""",
]

CODE_OBJECTS = [
    """CREATE TRIGGER order_lines_total AFTER INSERT ON order_lines FOR EACH ROW
  UPDATE orders SET total_cents = total_cents + NEW.qty * NEW.price_cents WHERE id = NEW.order_id""",
    """CREATE VIEW customer_totals AS
  SELECT c.id AS customer_id, c.email, COUNT(o.id) AS orders, COALESCE(SUM(o.total_cents), 0) AS total_cents
  FROM customers c LEFT JOIN orders o ON o.customer_id = c.id GROUP BY c.id, c.email""",
    """CREATE PROCEDURE place_order(IN p_customer INT UNSIGNED, IN p_sku VARCHAR(32), IN p_qty INT,
                                 IN p_price INT, OUT p_order BIGINT UNSIGNED)
  MODIFIES SQL DATA
BEGIN
  INSERT INTO orders (customer_id) VALUES (p_customer);
  SET p_order = LAST_INSERT_ID();
  INSERT INTO order_lines (order_id, line_no, sku, qty, price_cents) VALUES (p_order, 1, p_sku, p_qty, p_price);
END""",
]


def customers_for(rows: int) -> int:
    return max(10, rows // 10)


def create_accounts(master: Session, *, app_password: str, owner_password: str) -> None:
    """As the master user, the way a DBA would on RDS."""
    db = quote_ident(SCHEMA)
    master.run(f"CREATE DATABASE IF NOT EXISTS {db} CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    master.run(master.dialect.create_user(OWNER_USER, owner_password, if_not_exists=True))
    master.run(f"GRANT {OWNER_PRIVILEGES} ON {db}.* TO '{OWNER_USER}'@'%'")
    master.run(master.dialect.create_user(APP_USER, app_password, if_not_exists=True))
    master.run(f"GRANT SELECT, INSERT, UPDATE, DELETE, EXECUTE ON {db}.* TO '{APP_USER}'@'%'")


def load(owner: Session, rows: int, progress: Callable[[int, int], None] | None = None) -> None:
    """Recreate the schema's tables and code objects as the owner, then N orders with 1-3 lines each."""
    for table in ("order_lines", "orders", "customers"):
        owner.run(f"DROP TABLE IF EXISTS {quote_ident(table)}")
    owner.run("DROP VIEW IF EXISTS customer_totals")
    owner.run("DROP PROCEDURE IF EXISTS place_order")
    for ddl in TABLES + CODE_OBJECTS:
        owner.run(ddl)
    rnd = random.Random(20261125)
    n_customers = customers_for(rows)
    owner.run_many("INSERT INTO customers (id, email, name) VALUES (%s, %s, %s)",
                   [(i, f"customer{i}@example.com", f"Customer {i}") for i in range(1, n_customers + 1)])
    for start in range(1, rows + 1, BATCH):
        ids = range(start, min(rows, start + BATCH - 1) + 1)
        owner.run("START TRANSACTION")  # a batch's orders and lines land together or not at all
        owner.run_many("INSERT INTO orders (id, customer_id, status) VALUES (%s, %s, %s)",
                       [(i, rnd.randint(1, n_customers), rnd.choice(("new", "paid", "shipped"))) for i in ids])
        lines = [(i, n, rnd.choice(SKUS), rnd.randint(1, 5), rnd.randint(99, 99999))
                 for i in ids for n in range(1, rnd.randint(1, 3) + 1)]
        owner.run_many("INSERT INTO order_lines (order_id, line_no, sku, qty, price_cents) "
                       "VALUES (%s, %s, %s, %s, %s)", lines)
        owner.run("COMMIT")
        if progress:
            progress(ids[-1], rows)


def loaded(session: Session, rows: int) -> bool:
    try:
        orders = session.value(f"SELECT COUNT(*) FROM {quote_ident(SCHEMA)}.orders")
        objects = session.value(
            "SELECT (SELECT COUNT(*) FROM information_schema.triggers WHERE trigger_schema = %s) + "
            "(SELECT COUNT(*) FROM information_schema.views WHERE table_schema = %s) + "
            "(SELECT COUNT(*) FROM information_schema.routines WHERE routine_schema = %s)",
            (SCHEMA, SCHEMA, SCHEMA))
    except Exception:  # noqa: BLE001 - no schema yet means not loaded
        return False
    # ">=": batches commit in id order, so only a complete load reaches `rows`; the application may add more.
    return orders >= rows and objects == 3
