"""The issue's yardstick: a handler that only checks the HMAC and inserts one row through Flask-SQLAlchemy.

It does none of esu's work (no dedupe, no apply, no outbox, no security headers): the app should beat
its ratio to the bare route while doing all of that.
"""

import hashlib
import hmac
import os

from flask import Flask, abort, request
import sqlalchemy as sa
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, mapped_column

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
db = SQLAlchemy(app)
SECRET = os.environ["META_APP_SECRET"].encode()


class Delivery(db.Model):
    __tablename__ = "minimal_deliveries"
    id: Mapped[int] = mapped_column(primary_key=True)
    body: Mapped[str]


with app.app_context():
    try:
        db.create_all()
    except sa.exc.DatabaseError:  # the other worker, importing at the same moment, made it first
        pass


@app.post("/webhooks/whatsapp")
def webhook():
    body = request.get_data()
    expected = "sha256=" + hmac.new(SECRET, body, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, request.headers.get("X-Hub-Signature-256", "")):
        abort(403)
    db.session.add(Delivery(body=body.decode()))
    db.session.commit()
    return "", 200


@app.get("/signup/<slug>")
def signup(slug):
    return "ok"
