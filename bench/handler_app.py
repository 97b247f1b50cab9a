"""The honest alternative to esu's webhook endpoint: what a user could write in about 30 lines.

Flask, a pooled psycopg connection per request, the HMAC checked, and one ``INSERT … ON CONFLICT DO
NOTHING`` per delivery keyed by the body's digest (so Meta's retries are kept once). It does none of esu's
other work (dedupe by Meta's own keys, applying, forwarding): esu should still not be slower.
PostgreSQL only (``DATABASE_URL``); its pool opens a connection whenever a thread of the worker needs one, up to
64, more than any worker here has threads: no request waits for a connection.
"""

import hashlib
import os

import psycopg
from flask import Flask
from psycopg_pool import ConnectionPool

from bench.signed import signed_body

app = Flask(__name__)
url = os.environ["DATABASE_URL"].replace("postgresql+psycopg://", "postgresql://")
pool = ConnectionPool(url, min_size=1, max_size=64, open=True)
try:
    with pool.connection() as connection:
        connection.execute("CREATE TABLE IF NOT EXISTS handler_deliveries "
                           "(digest bytea PRIMARY KEY, body jsonb NOT NULL, received_at timestamptz DEFAULT now())")
except psycopg.errors.UniqueViolation:  # the other worker, starting at the same moment, made it first
    pass


@app.post("/webhooks/whatsapp")
def webhook():
    body = signed_body()
    with pool.connection() as connection:
        connection.execute("INSERT INTO handler_deliveries (digest, body) VALUES (%s, %s) ON CONFLICT DO NOTHING",
                           (hashlib.sha256(body).digest(), body.decode()))
    return "", 200
