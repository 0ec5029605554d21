"""The roles function: role administration (the seed's /api/v1/roles)."""
