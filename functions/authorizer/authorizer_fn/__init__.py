"""The HTTP API Lambda authorizer: JWT + Redis permission cache, no FastAPI."""
