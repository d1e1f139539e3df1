"""The store the settings name (QA_STORE), opened: the local folder or a PostgreSQL database.

Above both stores, which implement `qa.storage.base`'s interface without knowing of each other."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qa.config import STORES
from qa.errors import QAError
from qa.storage.base import Store

if TYPE_CHECKING:
    from qa.config import Settings


def open_store(settings: Settings) -> Store:
    """The store the settings name (QA_STORE): the local folder or a PostgreSQL database."""
    if settings.store == "local":
        from qa.storage.local.store import LocalStore

        return LocalStore(settings.index_dir)
    if settings.store == "postgres":
        try:
            from qa.storage.postgres.store import PostgresStore
        except ImportError as exc:
            raise QAError(
                f"the postgres store needs psycopg and pgvector ({exc}); "
                "install them with `pip install -e '.[postgres]'`"
            ) from None
        return PostgresStore.from_settings(settings)
    raise QAError(f"QA_STORE must be one of {', '.join(STORES)} (got {settings.store!r})")
