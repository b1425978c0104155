"""/sites/<id>: one site's attributes, its current rule hits, its change history and the
inspections recorded there. An unknown id is a 404 page."""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, render_template
from flask_babel import gettext as _

from geoapp.domain.errors import NotFound
from geoapp.services import Geoapp
from geoapp.services import inspection as svc

log = logging.getLogger(__name__)
bp = Blueprint("sites", __name__)


def core() -> Geoapp:
    return current_app.extensions["geoapp"]


@bp.get("/sites/<site_id>")
def show(site_id: str):
    """The site page; NotFound from the repository becomes the 404 page."""
    try:
        data = svc.site_page(core(), site_id)
    except NotFound:
        raise NotFound(_("没有找到编号为 %(id)s 的企业或点位", id=site_id)) from None
    return render_template("site.html", city=core().city, **data)
