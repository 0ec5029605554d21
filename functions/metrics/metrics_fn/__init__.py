"""The queue figures CloudWatch scales and alarms on (a scheduled function, no HTTP route)."""
