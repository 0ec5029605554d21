"""FastAPI pieces every API function uses; the authorizer never imports this package."""
