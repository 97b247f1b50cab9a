"""Forwarding targets: add one to a signup page, edit, switch off and on, new secret, delete; a target's
deliveries with their attempts, replay, and a test event. The rules are esu.forwarding's."""

from __future__ import annotations

from datetime import timedelta
from urllib.parse import urlsplit

from flask import abort, current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext, ngettext

from ... import forwarding as forwarding_service
from ...extensions import db
from ...forwarding import DestinationRefused, ForwardingError
from ...models import now_utc
from ...models.forwarding import DeliveryStatus, ForwardDelivery, ForwardingTarget
from .. import MAX_ID
from . import bp, field_errors, record, shown_once
from .forms import DeliveryFilterForm, EmptyForm, ForwardingTargetForm, once_is_used, use_once
from .pages import page_or_404, render_page
from .paging import BAD_CURSOR, PAGE_SIZE

#: The README section a receiver's developer needs, named next to a new secret.
VERIFY_HINT = "README, “Forwarding to clients' own systems”"


def target_or_404(target_id: int) -> ForwardingTarget:
    return db.get_or_404(ForwardingTarget, target_id, description=gettext("There is no such forwarding target."))


def describe(target: ForwardingTarget) -> str:
    """The target in the admin action log: its id and host. Not the whole URL: receivers put tokens in
    paths and query strings."""
    return f"target {target.id} ({urlsplit(target.url).hostname or '?'})"


def refused(form: ForwardingTargetForm, error: ForwardingError) -> None:
    """Show the policy's refusal on the field it is about."""
    field = form.url if isinstance(error, DestinationRefused) else form.fields
    field.errors = [*field.errors, gettext("Not allowed: %(reason)s.", reason=error)]


def status_filter(value: str | None) -> str | tuple[str, ...] | None:
    """What a status filter value selects (``undelivered``: failed or dead)."""
    if value == "undelivered":
        return forwarding_service.UNDELIVERED
    return value or None


def render_target(target: ForwardingTarget, form: ForwardingTargetForm | None = None,
                  revealed_secret: str | None = None, created: bool = False):
    """The target's page; ``revealed_secret`` only in the one view the POST that made it granted."""
    filters_form = DeliveryFilterForm(formdata=request.args)
    if not filters_form.validate():
        abort(400, description="; ".join(field_errors(filters_form[name].label.text, errors)
                                         for name, errors in filters_form.errors.items()))
    after = request.args.get("after", "")
    if after and not (after.isascii() and after.isdigit() and int(after) <= MAX_ID):
        abort(400, description=gettext(BAD_CURSOR))
    before_id = int(after) if after else None
    rows = forwarding_service.deliveries(target, status=status_filter(filters_form.status.data), limit=PAGE_SIZE + 1,
                                         before_id=before_id, with_attempts=True)
    filters = {"status": filters_form.status.data} if filters_form.status.data else {}
    if form is None:
        form = ForwardingTargetForm(formdata=None, current_fields=target.fields)
        form.url.data, form.fields.data = target.url, list(target.fields)
    return render_template(
        "admin/target.html", target=target, page=target.page, form=form, filters_form=filters_form,
        rows=rows[:PAGE_SIZE], filters=filters, paged=before_id is not None,
        next_url=url_for("admin.target", target_id=target.id, **filters, after=rows[PAGE_SIZE - 1].id)
        if len(rows) > PAGE_SIZE else None,
        counts=forwarding_service.delivery_counts(target), undelivered=forwarding_service.UNDELIVERED,
        button=EmptyForm(),
        revealed_secret=revealed_secret, created=created, verify_hint=VERIFY_HINT,
    )


@bp.post("/pages/<int:page_id>/forwarding")
def new_target(page_id: int):
    """Add a forwarding target to a signup page; the redirect's GET shows its signing secret once (never
    in the session, a URL or a log)."""
    signup_page = page_or_404(page_id)
    form = ForwardingTargetForm()
    if form.validate_on_submit():
        if once_is_used(form.once.data):
            flash(gettext("This form was sent already: the target was added then, and its secret shown once. If "
                          "the secret was not kept, give the target a new one."), "error")
            return redirect(url_for("admin.page", page_id=page_id) + "#forwarding")
        try:
            target, secret = forwarding_service.create_target(signup_page, form.url.data, form.fields.data)
        except ForwardingError as error:
            db.session.rollback()
            refused(form, error)
        else:
            record("created_forwarding_target", detail=describe(target), page=signup_page)
            db.session.commit()
            use_once(form.once.data)
            return show_secret(target, created=True)
    return render_page(signup_page, target_form=form)


@bp.route("/forwarding/<int:target_id>", methods=["GET", "POST"])
def target(target_id: int):
    """One forwarding target: its state, its settings to edit, and its deliveries newest first (filter
    by status), each with every attempt: status code, time, duration, the receiver's answer, the error."""
    forwarding_target = target_or_404(target_id)
    form = None
    if request.method == "GET" and shown_once.PARAM in request.args:
        view = shown_once.take(f"secret:{target_id}", request.args[shown_once.PARAM])
        if view is not None:
            return render_target(forwarding_target, revealed_secret=forwarding_target.secret,
                                 created=view.get("created", False))
        flash(gettext("The signing secret was shown once and is not shown again on reload. If it was not kept, "
                      "give the target a new one."), "error")
    if request.method == "POST":
        form = ForwardingTargetForm(current_fields=forwarding_target.fields)
        if form.validate_on_submit():
            try:
                forwarding_service.update_target(forwarding_target, url=form.url.data, fields=form.fields.data)
            except ForwardingError as error:
                db.session.rollback()
                refused(form, error)
            else:
                record("updated_forwarding_target", detail=describe(forwarding_target), page=forwarding_target.page)
                db.session.commit()
                flash(gettext("Saved the forwarding target."), "ok")
                return redirect(url_for("admin.target", target_id=target_id))
    return render_target(forwarding_target, form)


@bp.post("/forwarding/<int:target_id>/disable")
def disable_target(target_id: int):
    """Stop forwarding to a target; its pending deliveries become failed (replayable once enabled)."""
    forwarding_target = target_or_404(target_id)
    reason = f"disabled in the admin on {now_utc():%Y-%m-%d %H:%M} UTC"
    stopped = forwarding_service.disable_target(forwarding_target, reason)
    record("disabled_forwarding_target", detail=f"{describe(forwarding_target)}, {stopped} pending stopped",
           page=forwarding_target.page)
    db.session.commit()
    flash(gettext("Disabled the target. %(stopped)s pending deliveries were stopped; replay them after enabling it.",
                  stopped=stopped), "ok")
    return redirect(url_for("admin.target", target_id=target_id))


@bp.post("/forwarding/<int:target_id>/enable")
def enable_target(target_id: int):
    """Forward to a disabled target again (what failed meanwhile waits for a replay)."""
    forwarding_target = target_or_404(target_id)
    forwarding_service.enable_target(forwarding_target)
    record("enabled_forwarding_target", detail=describe(forwarding_target), page=forwarding_target.page)
    db.session.commit()
    flash(gettext("Enabled the target: new events are forwarded to it again."), "ok")
    return redirect(url_for("admin.target", target_id=target_id))


@bp.post("/forwarding/<int:target_id>/rotate-secret")
def rotate_secret(target_id: int):
    """Give a target a new signing secret, shown once by the redirect's GET; the old one keeps signing beside
    it for ``FORWARD_SECRET_OVERLAP_HOURS``, so the client's receiver can switch without missing a delivery."""
    forwarding_target = target_or_404(target_id)
    overlap = timedelta(hours=current_app.config["FORWARD_SECRET_OVERLAP_HOURS"])
    forwarding_service.rotate_secret(forwarding_target, overlap)
    until = forwarding_target.previous_secret_until
    record("rotated_forwarding_secret", detail=describe(forwarding_target) + (
        f", the old one signs too until {until:%Y-%m-%d %H:%M} UTC" if until else ""), page=forwarding_target.page)
    db.session.commit()
    return show_secret(forwarding_target, created=False)


def show_secret(target: ForwardingTarget, *, created: bool):
    """To the target's page, which shows the secret just made, once."""
    nonce = shown_once.grant(f"secret:{target.id}", created=created)
    return redirect(url_for("admin.target", target_id=target.id, **{shown_once.PARAM: nonce}))


@bp.post("/forwarding/<int:target_id>/delete")
def delete_target(target_id: int):
    """Delete a disabled target with its deliveries and their attempts."""
    forwarding_target = target_or_404(target_id)
    signup_page, detail = forwarding_target.page, describe(forwarding_target)
    try:
        forwarding_service.delete_target(forwarding_target)
    except ForwardingError as error:
        db.session.rollback()
        flash(gettext("Not deleted: %(error)s.", error=error), "error")
        return redirect(url_for("admin.target", target_id=target_id))
    record("deleted_forwarding_target", detail=detail, page=signup_page)
    db.session.commit()
    flash(gettext("Deleted the forwarding %(target)s.", target=detail), "ok")
    return redirect(url_for("admin.page", page_id=signup_page.id) + "#forwarding")


@bp.post("/forwarding/<int:target_id>/test")
def send_test_event(target_id: int):
    """Send a signed test event to the target now, and say how the receiver answered."""
    forwarding_target = target_or_404(target_id)
    try:
        delivery = forwarding_service.send_test_event(forwarding_target)
    except ForwardingError as error:
        flash(gettext("No test event sent: %(error)s.", error=error), "error")
        return redirect(url_for("admin.target", target_id=target_id))
    delivered = delivery.status == DeliveryStatus.DELIVERED
    outcome = f"delivered (HTTP {delivery.last_status_code})" if delivered else f"failed: {delivery.last_error}"
    record("sent_forwarding_test", detail=f"{describe(forwarding_target)}, {outcome}", page=forwarding_target.page)
    db.session.commit()
    flash(gettext("Test event delivered (HTTP %(status)s).", status=delivery.last_status_code) if delivered
          else gettext("Test event failed: %(error)s.", error=delivery.last_error), "ok" if delivered else "error")
    return redirect(url_for("admin.target", target_id=target_id))


def back_to_list(target_id: int):
    """The target's page, with the status filter the button was pressed under."""
    status = request.form.get("status", "")
    valid = status in {choice.value for choice in DeliveryFilterForm(formdata=None).status.choices}
    return redirect(url_for("admin.target", target_id=target_id, **({"status": status} if status and valid else {})))


@bp.post("/forwarding/<int:target_id>/replay-failed")
def replay_failed(target_id: int):
    """Queue every failed or dead delivery of the target to be sent again (same ``webhook-id``)."""
    forwarding_target = target_or_404(target_id)
    try:
        queued = forwarding_service.replay_failed(forwarding_target)
    except ForwardingError as error:
        flash(gettext("Nothing replayed: %(error)s.", error=error), "error")
        return back_to_list(target_id)
    record("replayed_failed_deliveries", detail=f"{describe(forwarding_target)}, {queued} queued",
           page=forwarding_target.page)
    db.session.commit()
    flash(ngettext("Queued %(num)s failed delivery to be sent again; the forwarding worker sends it shortly.",
                   "Queued %(num)s failed deliveries to be sent again; the forwarding worker sends them shortly.",
                   queued), "ok")
    return back_to_list(target_id)


def delivery_of_target(target_id: int, delivery_id: int) -> ForwardDelivery:
    """The delivery with this id, of this target; 404 otherwise."""
    delivery = db.get_or_404(ForwardDelivery, delivery_id, description=gettext("There is no such delivery."))
    if delivery.target_id != target_id:
        abort(404, description=gettext("There is no such delivery."))
    return delivery


@bp.post("/forwarding/<int:target_id>/deliveries/<int:delivery_id>/replay")
def replay_delivery(target_id: int, delivery_id: int):
    """Queue one failed or dead delivery to be sent again (same ``webhook-id``)."""
    delivery = delivery_of_target(target_id, delivery_id)
    try:
        forwarding_service.replay(delivery)
    except ForwardingError as error:
        flash(gettext("Not replayed: %(error)s.", error=error), "error")
        return back_to_list(target_id)
    record("replayed_delivery", detail=f"delivery {delivery.id} to {describe(delivery.target)}",
           page=delivery.target.page)
    db.session.commit()
    flash(gettext("Queued delivery %(id)s to be sent again; the forwarding worker sends it shortly.", id=delivery.id),
          "ok")
    return back_to_list(target_id)
