"""The natural limit: Flask routes that do nothing, served by the same gunicorn config as the app."""

from flask import Flask

app = Flask(__name__)


@app.post("/webhooks/whatsapp")
def webhook():
    """Answer 200 to anything, as fast as Flask can."""
    return "", 200


@app.get("/signup/<slug>")
def signup(slug):
    """A page of about the signup page's size, with no template, database or session."""
    return "<!doctype html><title>bare</title>" + "x" * 2000
