"""The auth function: login, token refresh, logout, current user, published keys."""
