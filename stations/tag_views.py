"""The CPO panel's ID tags page: list, add, edit, block, delete, CSV import and export,
and the CPO's local authorization lists.

A CPO is looked up among `Cpo.objects.for_user(user)` and a tag among that CPO's tags:
another CPO's is a 404. Everyone in the CPO reads; admins and technicians change tags
(a viewer's POST is a 403, from `id_tags_check_write`); the CPO setting is its admins'.
"""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_POST

from cpo.models import Cpo
from stations.forms import CpoTagSettingsForm, IdTagForm, IdTagImportForm
from stations.models import IdTag
from stations.services.id_tag_registry import (
    LIST_STATUSES,
    IdTagError,
    cpo_may_configure,
    cpo_one_session_per_tag_set,
    csv_lines,
    id_tag_delete,
    id_tag_list,
    id_tag_save,
    id_tag_set_status,
    id_tags_check_write,
    id_tags_csv_decode,
    id_tags_csv_rows,
    id_tags_import,
    id_tags_import_preview,
    id_tags_may_write,
)
from stations.services.local_list import local_list_sync_all

TAGS_PER_PAGE = 50


def _cpo(request: HttpRequest, cpo_pk: int) -> Cpo:
    return get_object_or_404(Cpo.objects.for_user(request.user), pk=cpo_pk)


def _tag(cpo: Cpo, tag_pk: int) -> IdTag:
    return get_object_or_404(IdTag.objects.filter(cpo=cpo), pk=tag_pk)


def _list_url(cpo: Cpo) -> str:
    return reverse("stations:id_tags", args=[cpo.pk])


@login_required
@require_GET
def id_tags_index(request: HttpRequest) -> HttpResponse:
    """ID tags: the user's CPO's tags, or the choice of CPO when they are in several."""
    cpos = list(Cpo.objects.for_user(request.user).order_by("name"))
    if len(cpos) == 1:
        return redirect("stations:id_tags", cpo_pk=cpos[0].pk)
    return render(request, "stations/id_tags_index.html", {"cpos": cpos})


@login_required
@require_GET
def id_tags(request: HttpRequest, cpo_pk: int) -> HttpResponse:
    """The CPO's tags, searchable, filtered by status, paginated by value."""
    cpo = _cpo(request, cpo_pk)
    query = request.GET.get("q", "").strip()
    status = request.GET.get("status", "")
    if status not in LIST_STATUSES:
        status = ""
    tags = id_tag_list(cpo=cpo, query=query, status=status)
    page = Paginator(tags, TAGS_PER_PAGE).get_page(request.GET.get("page"))
    filters = {"q": query, "status": status}
    return render(
        request,
        "stations/id_tags.html",
        {
            "cpo": cpo,
            "page": page,
            "tags": page.object_list,
            "query": query,
            "status": status,
            "statuses": LIST_STATUSES,
            "filtered": bool(query or status),
            "page_query": urlencode({k: v for k, v in filters.items() if v}),
            "can_edit": id_tags_may_write(user=request.user, cpo=cpo),
            "can_configure": cpo_may_configure(user=request.user, cpo=cpo),
            "settings_form": CpoTagSettingsForm(
                initial={"one_session_per_tag": cpo.one_session_per_tag}
            ),
            "now": timezone.now(),
        },
    )


@login_required
def id_tag_add(request: HttpRequest, cpo_pk: int) -> HttpResponse:
    cpo = _cpo(request, cpo_pk)
    id_tags_check_write(user=request.user, cpo=cpo)
    form = IdTagForm(request.POST or None, initial={"status": IdTag.Status.ACCEPTED})
    if request.method == "POST" and form.is_valid():
        try:
            tag = id_tag_save(cpo=cpo, user=request.user, values=form.values())
        except IdTagError as exc:
            form.add_service_errors(exc.errors)
        else:
            messages.success(request, f"ID tag {tag.tag} added.")
            return redirect(_list_url(cpo))
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "stations/id_tag_form.html",
        {"cpo": cpo, "form": form, "tag": None, "can_edit": True},
        status=status,
    )


@login_required
def id_tag_edit(request: HttpRequest, cpo_pk: int, tag_pk: int) -> HttpResponse:
    """A tag's values: admins and technicians edit, viewers read."""
    cpo = _cpo(request, cpo_pk)
    tag = _tag(cpo, tag_pk)
    if request.method == "POST":
        id_tags_check_write(user=request.user, cpo=cpo)
    can_edit = id_tags_may_write(user=request.user, cpo=cpo)
    initial = {name: getattr(tag, name) for name in IdTagForm.base_fields}
    form = IdTagForm(request.POST or None, initial=initial)
    if request.method == "POST" and form.is_valid():
        try:
            id_tag_save(cpo=cpo, user=request.user, values=form.values(), tag=tag)
        except IdTagError as exc:
            form.add_service_errors(exc.errors)
        else:
            messages.success(request, f"ID tag {tag.tag} saved.")
            return redirect(_list_url(cpo))
    if not can_edit:
        for field in form.fields.values():
            field.disabled = True
    status = 400 if request.method == "POST" else 200
    return render(
        request,
        "stations/id_tag_form.html",
        {"cpo": cpo, "form": form, "tag": tag, "can_edit": can_edit},
        status=status,
    )


@login_required
@require_POST
def id_tag_status(request: HttpRequest, cpo_pk: int, tag_pk: int) -> HttpResponse:
    """Block or unblock a tag (`status` Blocked / Accepted)."""
    cpo = _cpo(request, cpo_pk)
    tag = _tag(cpo, tag_pk)
    id_tags_check_write(user=request.user, cpo=cpo)
    status = request.POST.get("status", "")
    if status not in IdTag.Status.values:
        messages.error(request, "Choose Accepted or Blocked.")
        return redirect(_list_url(cpo))
    id_tag_set_status(tag=tag, user=request.user, status=status)
    done = "blocked" if status == IdTag.Status.BLOCKED else "unblocked"
    messages.success(request, f"ID tag {tag.tag} {done}.")
    return redirect(request.POST.get("next") or _list_url(cpo))


@login_required
def id_tag_delete_view(request: HttpRequest, cpo_pk: int, tag_pk: int) -> HttpResponse:
    """Delete a tag, after a confirmation page."""
    cpo = _cpo(request, cpo_pk)
    tag = _tag(cpo, tag_pk)
    id_tags_check_write(user=request.user, cpo=cpo)
    if request.method == "POST":
        id_tag_delete(tag=tag, user=request.user)
        messages.success(request, f"ID tag {tag.tag} deleted.")
        return redirect(_list_url(cpo))
    return render(request, "stations/id_tag_delete.html", {"cpo": cpo, "tag": tag})


@login_required
def id_tags_import_view(request: HttpRequest, cpo_pk: int) -> HttpResponse:
    """CSV import in two steps: Preview (the file checked, every row's errors listed,
    nothing saved) and Import (the same text checked again and saved, all or nothing)."""
    cpo = _cpo(request, cpo_pk)
    id_tags_check_write(user=request.user, cpo=cpo)
    context: dict = {"cpo": cpo, "form": IdTagImportForm(), "preview": None, "text": ""}
    status = 200
    if request.method == "POST" and "import" in request.POST:
        text = request.POST.get("text", "")
        preview = id_tags_import(cpo=cpo, user=request.user, text=text)
        if preview.ok:
            messages.success(
                request,
                f"Imported {len(preview.rows)} ID tags: "
                f"{preview.added} added, {preview.updated} updated.",
            )
            return redirect(_list_url(cpo))
        context.update(preview=preview, text=text)
        status = 400
    elif request.method == "POST":
        form = IdTagImportForm(request.POST, request.FILES)
        context["form"] = form
        if form.is_valid():
            try:
                text = id_tags_csv_decode(form.cleaned_data["file"].read())
            except ValueError as exc:
                form.add_error("file", str(exc))
                status = 400
            else:
                preview = id_tags_import_preview(cpo=cpo, text=text)
                context.update(preview=preview, text=text)
                status = 200 if preview.ok else 400
        else:
            status = 400
    return render(request, "stations/id_tags_import.html", context, status=status)


@login_required
@require_GET
def id_tags_export(request: HttpRequest, cpo_pk: int) -> StreamingHttpResponse:
    """The CPO's tags as CSV (the import's columns), streamed."""
    cpo = _cpo(request, cpo_pk)
    response = StreamingHttpResponse(
        csv_lines(id_tags_csv_rows(cpo=cpo)), content_type="text/csv; charset=utf-8"
    )
    stamp = timezone.now().strftime("%Y%m%d-%H%M")
    response["Content-Disposition"] = f'attachment; filename="id-tags-{stamp}.csv"'
    return response


@login_required
@require_POST
def id_tags_settings(request: HttpRequest, cpo_pk: int) -> HttpResponse:
    """The CPO's authorization setting: one session at a time per tag (admins)."""
    cpo = _cpo(request, cpo_pk)
    if not cpo_may_configure(user=request.user, cpo=cpo):
        raise PermissionDenied("Only admins of the CPO change its settings.")
    form = CpoTagSettingsForm(request.POST)
    form.is_valid()
    value = bool(form.cleaned_data.get("one_session_per_tag"))
    cpo_one_session_per_tag_set(cpo=cpo, user=request.user, value=value)
    messages.success(
        request,
        "One session at a time per ID tag." if value else "ID tags may be in several sessions.",
    )
    return redirect(_list_url(cpo))


@login_required
@require_POST
def id_tags_sync(request: HttpRequest, cpo_pk: int) -> HttpResponse:
    """Send every connected OCPP station of the CPO its local list changes (or the full
    list where the charger's copy is unknown or was refused)."""
    cpo = _cpo(request, cpo_pk)
    id_tags_check_write(user=request.user, cpo=cpo)
    result = local_list_sync_all(cpo=cpo, user=request.user)
    messages.success(
        request,
        f"Local list sent to {result.sent} stations; {result.in_sync} already in sync, "
        f"{result.offline} offline (they get it when they are synced again).",
    )
    return redirect(_list_url(cpo))
