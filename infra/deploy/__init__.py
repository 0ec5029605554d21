"""Deploy tooling: the SAM template reader, the stacks, keys, migrations, the route
catalogue, initdb and the image pusher. The deploy function carries part of it."""
