"""Blueprint placeholder: its routes are being written."""

from flask import Blueprint

bp = Blueprint("ledger", __name__)
