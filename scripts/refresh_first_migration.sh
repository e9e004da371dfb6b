#!/bin/sh
# Regenerate migration 0001 from supportdesk/store/models.py.
# Only while the first schema has not been released: once a release ships, add new revisions.
set -eu
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
cat > "$tmp/alembic.ini" <<INI
[alembic]
script_location = $(pwd)/supportdesk/store/migrations
sqlalchemy.url = sqlite:///$tmp/gen.db
INI
mv supportdesk/store/migrations/versions/0001_first_schema.py "$tmp/old.py"
# later revisions must not be visible while generating 0001
mkdir -p "$tmp/later"
for f in supportdesk/store/migrations/versions/0*.py; do [ -e "$f" ] && mv "$f" "$tmp/later/"; done
if .venv/bin/alembic -c "$tmp/alembic.ini" revision --autogenerate --rev-id 0001 -m "first schema" >/dev/null; then
  sed -i 's/^Create Date.*/Create Date: 2026-11-25/' supportdesk/store/migrations/versions/0001_first_schema.py
else
  mv "$tmp/old.py" supportdesk/store/migrations/versions/0001_first_schema.py
fi
for f in "$tmp"/later/*.py; do [ -e "$f" ] && mv "$f" supportdesk/store/migrations/versions/; done
rm -rf "$tmp"
echo "0001 regenerated"
