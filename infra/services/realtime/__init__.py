"""The Socket.IO server (a container; port 3001 under `make dev`)."""
