"""migrate: move a live MySQL/MariaDB database off Amazon RDS onto self-managed servers, measured."""

__version__ = "0.1.0"
