"""The audit function: reading the audit log (who did what, when, from where)."""
