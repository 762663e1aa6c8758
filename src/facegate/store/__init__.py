"""The catalog (SQLAlchemy over SQLite or PostgreSQL) and the vector indexes beside it.

The catalog is the source of truth; vector indexes are caches of it that can always be
rebuilt. Imports only `facegate.vision` types and `facegate.errors`.
"""
