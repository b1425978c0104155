"""Documents of single records in the official layout (docs/documents.md):
``/inspections/<id>/sheet.docx``, an inspection record's check sheet (现场核查记录单).

Who may download it is who may open the record's print page
(``services.photos.visible_inspection``: any account for a site's inspection, inspectors for
every record; otherwise 404, the same answer as an unknown id).
"""

from __future__ import annotations

from flask import Blueprint
from flask_login import current_user

from geoapp.services import check_sheet
from geoapp.web.common import core, send_download

bp = Blueprint("documents", __name__)

DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"


@bp.get("/inspections/<int:inspection_id>/sheet.docx")
def inspection_sheet(inspection_id: int):
    """The inspection's check sheet as a Word document."""
    data, name = check_sheet.sheet_docx(core(), inspection_id,
                                        sees_records=current_user.has_role("inspector"))
    return send_download(data, name, DOCX, ascii_name=f"check-sheet-{inspection_id}.docx")
