"""Tooling around the functions, by purpose: `local` (make dev: the gateway, embedded
datastores), `deploy` (the template reader, stacks, keys, migrations, catalogue, initdb)
and `services` (the Socket.IO server and the containers' image). Imports point one way:
local may use deploy, deploy uses only the shared layer, services only the shared layer."""
