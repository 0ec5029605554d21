"""Shared layer of the Async-FastAPI-MultiDB serverless edition."""
