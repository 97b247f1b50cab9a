"""onboardings: the business name in lower case, searched for any part of it

The admin's search finds any part of a business name whatever its case (``LIKE '%term%'``), which no
B-tree serves: at 100,000 onboardings every search read them all, lower-casing each name as it went
(SQLite through a Python function, since its own lower() folds ASCII only): p95 97 ms on SQLite, 57 ms on
PostgreSQL, on a 2-core machine. ``business_name_lower`` holds the name lower-cased once, when it is
written: SQLite's own LIKE scans it (20 ms), and on PostgreSQL a trigram GIN index serves it (pg_trgm,
which ships with PostgreSQL and, since PostgreSQL 13, any role that can create in the database may
install; where it cannot, searches scan the column). The pattern index on ``lower(business_name)``
(prefixes only) goes.

Revision ID: b6d8f0a2c4e6
Revises: a4c6e8f0b2d4
"""
import logging

import sqlalchemy as sa
from alembic import op

revision = 'b6d8f0a2c4e6'
down_revision = 'a4c6e8f0b2d4'
branch_labels = None
depends_on = None

NAME = 'ix_onboardings_business_name_lower'
log = logging.getLogger('alembic.runtime.migration')
onboardings = sa.table('onboardings', sa.column('id', sa.Integer), sa.column('business_name', sa.String),
                       sa.column('business_name_lower', sa.String))


def upgrade():
    bind = op.get_bind()
    op.drop_index(NAME, table_name='onboardings')
    op.add_column('onboardings', sa.Column('business_name_lower', sa.String(length=200), nullable=True))
    if bind.dialect.name == 'postgresql':
        op.execute('UPDATE onboardings SET business_name_lower = lower(business_name) WHERE business_name IS NOT NULL')
    else:
        # SQLite's lower() folds ASCII only: Python's, as the model's listener does.
        rows = bind.execute(sa.select(onboardings.c.id, onboardings.c.business_name)
                            .where(onboardings.c.business_name.is_not(None))).all()
        if rows:
            bind.execute(onboardings.update().where(onboardings.c.id == sa.bindparam('row_id'))
                         .values(business_name_lower=sa.bindparam('lowered')),
                         [{'row_id': row_id, 'lowered': name.lower()} for row_id, name in rows])
        op.create_index(NAME, 'onboardings', ['business_name_lower'], unique=False)  # as the model declares it
        return
    try:
        with bind.begin_nested():
            bind.exec_driver_sql('CREATE EXTENSION IF NOT EXISTS pg_trgm')
    except sa.exc.DBAPIError as error:
        log.warning('pg_trgm could not be installed (%s): name searches scan the onboardings', error.orig)
        op.create_index(NAME, 'onboardings', ['business_name_lower'], unique=False)
        return
    # The extension may live in a schema of its own (a host's "extensions"): name its operator class there.
    schema = bind.exec_driver_sql("SELECT n.nspname FROM pg_extension e JOIN pg_namespace n "
                                  "ON n.oid = e.extnamespace WHERE e.extname = 'pg_trgm'").scalar_one()
    op.execute(f'CREATE INDEX {NAME} ON onboardings USING gin (business_name_lower "{schema}".gin_trgm_ops)')


def downgrade():
    bind = op.get_bind()
    op.drop_index(NAME, table_name='onboardings')
    with op.batch_alter_table('onboardings', schema=None) as batch_op:
        batch_op.drop_column('business_name_lower')
    if bind.dialect.name == 'postgresql':
        op.execute(f'CREATE INDEX {NAME} ON onboardings (lower(business_name) text_pattern_ops)')
    else:
        op.create_index(NAME, 'onboardings', [sa.text('lower(business_name)')], unique=False)
