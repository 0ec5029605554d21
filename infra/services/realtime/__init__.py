"""The Socket.IO server (a container; port 3001 under `make dev`), everything of it in one place:

    server.py     connections, rooms, revocations pushed from Redis, the sweep
    registry.py   client events declared like routes (RBAC per event, acks in the envelope)
    handlers.py   the application's client events
    limits.py     rate limits on client events, per connection and per user
    presence.py   who is connected, across every server (in Redis)

Not in the Lambda layer: functions and tasks reach it through `multidb.realtime` (emit) and
`multidb.notices` (revocations, grant changes), both plain Redis pub/sub."""
