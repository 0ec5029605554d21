"""Socket.IO client events: the registry (`registry.py`) and the application's handlers
(`handlers.py`), which the Socket.IO server imports explicitly. Loaded only by that server
and the catalogue generator, never by a Lambda function."""
