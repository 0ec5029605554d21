"""Password hashing, RSA login passwords, JWTs and the token store."""
