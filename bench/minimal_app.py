"""The issue's yardstick: a handler that only checks the HMAC and inserts one row through Flask-SQLAlchemy.

It does none of esu's work (no dedupe, no apply, no outbox, no security headers): the app should beat
its ratio to the bare route while doing all of that.
"""

import os

import sqlalchemy as sa
from flask import Flask
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import Mapped, mapped_column

from bench.signed import signed_body

app = Flask(__name__)
app.config["SQLALCHEMY_DATABASE_URI"] = os.environ["DATABASE_URL"]
db = SQLAlchemy(app)


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
    db.session.add(Delivery(body=signed_body().decode()))
    db.session.commit()
    return "", 200


@app.get("/signup/<slug>")
def signup(slug):
    return "ok"
