"""/sites/<id>: one site on a small map with its verdict at the top, then its current rule
hits, attributes, change history and the inspections recorded there; for enterprises, the
planners' progress form. An unknown id is a 404 page.

The form posts to /sites/<id>/progress with the version the planner saw. A bad value comes
back as 400 with the fields named above the form (the page opens there); a save that another
planner beat comes back as 409 showing their change beside the planner's own input, never
overwriting it.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Blueprint, flash, redirect, request, url_for
from flask_babel import gettext as _
from flask_login import current_user

from geoapp.domain.errors import Conflict, NotFound, ValidationFailed
from geoapp.domain.vocab import Classification, SiteType, Stage
from geoapp.services import progress, site_page
from geoapp.spatial.crs import crs_choices
from geoapp.web.auth import role_required
from geoapp.web.common import core, render_map_page

log = logging.getLogger(__name__)
bp = Blueprint("sites", __name__)
#: ``{{ stamp | local_time }}`` in every template: a stored UTC stamp as local time.
bp.add_app_template_filter(site_page.local_time, "local_time")


def _not_found(site_id: str) -> NotFound:
    return NotFound(_("没有找到编号为 %(id)s 的企业或点位", id=site_id))


def _page(site_id: str, *, form: dict[str, Any] | None = None, errors: list | None = None,
          conflict: Conflict | None = None, status: int = 200):
    try:
        data = site_page.view(core(), site_id, gettext=_, as_of=request.args.get("as_of"))
    except NotFound:
        raise _not_found(site_id) from None
    m = data.pop("map")
    editable = data["site"]["site_type"] == SiteType.ENTERPRISE
    ctx: dict[str, Any] = {"editable": editable}
    if editable:
        ctx.update(
            form=form or progress.form_values(data["site"]), fields=progress.LABELS,
            classifications=list(Classification), stages=list(Stage),
            crs_choices=crs_choices(), errors={e["field"]: e for e in errors or []},
            error_list=errors or [], conflict=conflict,
            conflict_details=(site_page.conflict_words(conflict.details, gettext=_)
                              if conflict else {}),
            can_edit=current_user.has_role("planner"))
    return render_map_page("site.html", m, **data, **ctx), status


@bp.get("/sites/<site_id>")
def show(site_id: str):
    """The site page; NotFound from the repository becomes the 404 page."""
    return _page(site_id)


@bp.post("/sites/<site_id>/progress")
@role_required("planner")
def save_progress(site_id: str):
    """Save the progress form; 400 names bad fields, 409 shows the other planner's change."""
    form = {k: request.form.get(k, "") for k in (*progress.LABELS, "new_crs", "version")}
    try:
        progress.save_progress(core(), site_id, form, user=current_user.username)
    except NotFound:
        raise _not_found(site_id) from None
    except ValidationFailed as exc:
        return _page(site_id, form=form, errors=list(exc.details or []), status=400)
    except Conflict as exc:
        # Keep the planner's input; the version becomes the current one, so saving again
        # is a deliberate decision taken after seeing the other change.
        form["version"] = str((exc.details or {}).get("current_version", form["version"]))
        return _page(site_id, form=form, conflict=exc, status=409)
    flash(_("已保存"))
    return redirect(url_for("sites.show", site_id=site_id) + "#history")
