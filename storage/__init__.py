"""TimescaleDB access with psycopg 3: connections, migrations, the batch writer, queries."""
