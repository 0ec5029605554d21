"""The routers function: the catalogue of every API route and its permission code."""
