"""What the long-running containers run beside Celery's own commands: the Socket.IO server,
and the image that packs the worker, beat and it."""
