"""Signup pages: list, create, edit, disable and enable again. Their forwarding targets: forwarding.py."""

from __future__ import annotations

import sqlalchemy as sa
from flask import flash, redirect, render_template, request, url_for
from flask_babel import gettext
from sqlalchemy.exc import IntegrityError

from ... import embedding
from ... import forwarding as forwarding_service
from ...cli import change_slug, create_page
from ...extensions import db
from ...models import SignupPage
from . import bp, record
from .forms import EmptyForm, ForwardingTargetForm, SignupPageForm, issue_once

#: What a site's template needs to show a page's widget.
WIDGET_INCLUDE = '{% from "signup/_widget.html" import embedded_signup %}{{ embedded_signup(page) }}'
bp.add_app_template_global(embedding.embed_snippet, "embed_snippet")  # the iframe snippet, per page


def page_or_404(page_id: int) -> SignupPage:
    return db.get_or_404(SignupPage, page_id, description=gettext("There is no such signup page."))


@bp.get("/pages")
def pages():
    """Every signup page, enabled or not, with its public address."""
    rows = db.session.scalars(sa.select(SignupPage).order_by(SignupPage.enabled.desc(), SignupPage.slug))
    return render_template("admin/pages.html", rows=list(rows), button=EmptyForm())


@bp.route("/pages/new", methods=["GET", "POST"])
def new_page():
    """Create a signup page: slug, text, Meta configuration and the dialog's pre-fill."""
    form = SignupPageForm()
    if form.validate_on_submit():
        fields = form.page_fields()
        try:
            page = create_page(fields.pop("slug"), fields.pop("title"), **fields)
        except (ValueError, IntegrityError) as error:  # the slug was taken in the meantime
            db.session.rollback()
            form.slug.errors = [*form.slug.errors, str(error) if isinstance(error, ValueError) else gettext("Already taken.")]
        else:
            record("created_page", detail=page.slug, page=page)
            db.session.commit()
            flash(gettext("Created the signup page %(slug)s.", slug=page.slug), "ok")
            return redirect(url_for("admin.page", page_id=page.id))
    return render_template("admin/page.html", form=form, page=None, widget_include=WIDGET_INCLUDE, targets=[],
                           target_form=None)


@bp.route("/pages/<int:page_id>", methods=["GET", "POST"])
def page(page_id: int):
    """One signup page: its public address, the widget's include line, and its settings to edit."""
    signup_page = page_or_404(page_id)
    form = SignupPageForm(page=signup_page)
    if request.method == "GET":
        form.fill_from(signup_page)
    elif form.validate_on_submit():
        fields = form.page_fields()
        try:
            old_slug = change_slug(signup_page, fields.pop("slug"))
            for name, value in fields.items():
                setattr(signup_page, name, value)
            record("updated_page", detail=signup_page.slug if old_slug is None else
                   f"{signup_page.slug} (was {old_slug})", page=signup_page)
            db.session.commit()
        except IntegrityError:
            db.session.rollback()
            form.slug.errors = [*form.slug.errors, gettext("Already taken.")]
        else:
            flash(gettext("Saved the signup page %(slug)s.", slug=signup_page.slug), "ok")
            if old_slug is not None:
                flash(gettext("Its address changed: /signup/%(old)s now redirects to /signup/%(new)s, so links "
                              "already given out keep working.", old=old_slug, new=signup_page.slug), "ok")
            return redirect(url_for("admin.page", page_id=page_id))
    return render_page(signup_page, form)


def render_page(signup_page: SignupPage, form: SignupPageForm | None = None,
                target_form: ForwardingTargetForm | None = None):
    """A page's admin page: its settings form, and its forwarding targets with the form that adds one."""
    if form is None:
        form = SignupPageForm(page=signup_page, formdata=None)
        form.fill_from(signup_page)
    target_form = target_form or ForwardingTargetForm(formdata=None)
    if not target_form.once.data:
        target_form.once.data = issue_once()
    return render_template("admin/page.html", form=form, page=signup_page, widget_include=WIDGET_INCLUDE,
                           button=EmptyForm(), targets=forwarding_service.page_targets(signup_page),
                           target_form=target_form)


def _set_enabled(page_id: int, enabled: bool):
    signup_page = page_or_404(page_id)
    signup_page.enabled = enabled
    record("enabled_page" if enabled else "disabled_page", detail=signup_page.slug, page=signup_page)
    db.session.commit()
    flash(gettext("Enabled the signup page %(slug)s.", slug=signup_page.slug) if enabled else
          gettext("Disabled the signup page %(slug)s: its address now answers 404.", slug=signup_page.slug), "ok")
    back_to_list = request.form.get("back") == "list"
    return redirect(url_for("admin.pages") if back_to_list else url_for("admin.page", page_id=page_id))


@bp.post("/pages/<int:page_id>/disable")
def disable_page(page_id: int):
    """Take a signup page offline (its records stay)."""
    return _set_enabled(page_id, False)


@bp.post("/pages/<int:page_id>/enable")
def enable_page(page_id: int):
    """Put a disabled signup page back online."""
    return _set_enabled(page_id, True)
