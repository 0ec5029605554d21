"""The users function: user administration (list, get, create, update, reset password, delete)."""
