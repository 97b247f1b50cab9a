"""Coming back to an onboarding on its signup page: the admin's resume link, and the widget trading the token
it kept (or the link brought) for the onboarding. See ``esu.resume_links``."""

from __future__ import annotations

from flask import abort, current_app, jsonify, redirect, request, url_for
from flask_babel import gettext

from .. import resume_links
from .signup import BadInput, bp, enabled_page, json_body, onboarding_answer, onboarding_calls

#: The fragment the link's redirect carries the token in: the browser keeps it, no server or log sees it.
FRAGMENT = "resume="


@bp.get("/<slug>/resume")
def resume_link(slug: str):
    """The link the admin sends: a plain page (4xx) when it is expired, forged or names nothing; else the
    signup page, whose widget picks the onboarding up."""
    page = enabled_page(slug)
    token = request.args.get("token", "")
    try:
        resume_links.onboarding_for(token, page)
    except resume_links.ResumeRefused as refused:
        abort(refused.status, description=gettext(refused.message))
    response = redirect(url_for("signup.page", slug=page.slug) + f"#{FRAGMENT}{token}", 303)
    response.headers["Cache-Control"] = "no-store"
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


@bp.post("/<slug>/resume")
@onboarding_calls
def resume(slug: str):
    """The onboarding a resume token names, with the reference the widget follows it by."""
    page = enabled_page(slug)
    token = json_body(current_app.config["CALLBACK_MAX_BYTES"]).get("token")
    if not isinstance(token, str) or not token:
        raise BadInput({"token": gettext("is required: the resume token the widget kept or the link brought")})
    try:
        onboarding = resume_links.onboarding_for(token, page)
    except resume_links.ResumeRefused as refused:
        return jsonify(error=gettext(refused.message)), refused.status
    reference = resume_links.reference_of(onboarding)
    return jsonify({**onboarding_answer(onboarding), "client_ref": reference})
