"""Local-only tooling: the Docker-free API gateway, the embedded datastores, `make dev`'s
supervisor and `sam local`'s environment. Nothing deployed imports it."""
