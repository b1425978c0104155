#!/usr/bin/env sh
# Refresh the English catalog: extract msgids (the Chinese text) from templates/ and geoapp/,
# merge them into geoapp/translations/en/LC_MESSAGES/messages.po, compile messages.mo.
# Run from anywhere: scripts/i18n.sh. Then translate the new empty msgstr entries in the .po
# and run it again (or just `compile`) so the committed .mo matches the .po.
#   scripts/i18n.sh            extract + update + compile
#   scripts/i18n.sh compile    compile only
set -eu
cd "$(dirname "$0")/.."
PYBABEL="${PYBABEL:-.venv/bin/pybabel}"
CATALOG=geoapp/translations
POT=build/messages.pot
PO="$CATALOG/en/LC_MESSAGES/messages.po"

if [ "${1:-}" != "compile" ]; then
    mkdir -p build
    "$PYBABEL" extract -F babel.cfg -k lazy_gettext -k _l --no-location --sort-output \
        --project=geoapp --copyright-holder="geoapp" -o "$POT" templates geoapp
    if [ -f "$PO" ]; then
        "$PYBABEL" update -i "$POT" -d "$CATALOG" -l en --no-fuzzy-matching --ignore-obsolete
    else
        "$PYBABEL" init -i "$POT" -d "$CATALOG" -l en
    fi
fi
"$PYBABEL" compile -d "$CATALOG" -l en --statistics
