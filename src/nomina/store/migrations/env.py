"""Alembic environment: runs migrations on the engine the workspace passes in."""

from alembic import context

from nomina.store.schema import Base

config = context.config
engine = config.attributes["engine"]

with engine.begin() as connection:
    context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
    context.run_migrations()
