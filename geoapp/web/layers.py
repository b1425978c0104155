"""Blueprint placeholder: its routes are being written."""

from flask import Blueprint

bp = Blueprint("layers", __name__)
