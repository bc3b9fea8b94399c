"""capabilities/seed."""
