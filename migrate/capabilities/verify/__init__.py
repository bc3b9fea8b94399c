"""`migrate verify`'s capabilities: which tables (inventory), how they are cut (chunks), the checksum SQL
(checksum), the consistent comparison of a chunk and its re-checks (compare, where the argument is), when to
pause (throttle), and the result (result)."""
