"""Use cases: one function per command, each one transaction that writes its state and its audit events."""
