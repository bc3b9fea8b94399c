"""Adapters: the only code that talks to MySQL, hosts and AWS."""
