"""The database: schema, engine, migrations, and the writers that keep requests off it (audit, webhooks)."""
