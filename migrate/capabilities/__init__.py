"""Capabilities: what migrate can observe and do on the servers (inspector, seeders, probe, report, ...)."""
