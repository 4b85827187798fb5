"""Provision Superset for exops, in Superset's own environment: ``python -m exops_bi.provision``.

Idempotent, in one process (each ``superset`` CLI call would start the app again):

1. migrates the metadata store (``superset db upgrade``) and syncs roles (``superset init``);
2. makes sure the admin exists with the password given (``EXOPS_BI_ADMIN_USER``,
   ``EXOPS_BI_ADMIN_PASSWORD``);
3. imports the bundle built from ``bi/dashboards/`` and the marts' dbt YAML with overwrite
   (Superset's ImportAssetsCommand): the bi_reader connection (``EXOPS_BI_READER_URL``, its
   password stored encrypted with ``SUPERSET_SECRET_KEY``), a dataset per mart, the charts
   and the dashboards, each under its stable UUID;
4. deletes the charts an earlier bundle provisioned that the dashboards no longer have.

Prints one JSON line: the dashboards (id, slug, title, charts), datasets and charts counts.
Started by ``exops bi start`` (``make bi``) and by the docker-compose ``superset`` service.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from exops_bi.bundle import BundleError, build_bundle

ROOT = Path(__file__).resolve().parents[2]


class ProvisionError(RuntimeError):
    pass


def _env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, "").strip() or default
    if not value:
        raise ProvisionError(f"{name} is not set")
    return value


def sqlalchemy_uri(url: str) -> str:
    """A postgresql:// URL as SQLAlchemy 1.4's psycopg2 dialect wants it."""
    parts = urlsplit(url)
    if parts.scheme not in ("postgresql", "postgres", "postgresql+psycopg2"):
        raise ProvisionError(
            f"EXOPS_BI_READER_URL must be a postgresql:// URL, got scheme {parts.scheme!r}"
        )
    return urlunsplit(parts._replace(scheme="postgresql+psycopg2"))


def _ensure_admin(username: str, password: str):
    from superset import security_manager

    role = security_manager.find_role("Admin")
    user = security_manager.find_user(username=username)
    if user is None:
        user = security_manager.add_user(
            username, "exops", "admin", f"{username}@exops.local", role, password=password
        )
        if not user:
            raise ProvisionError(f"could not create the Superset admin {username!r}")
    else:
        # the password in the environment is the login, also after it changed
        security_manager.reset_password(user.id, password)
        if role not in user.roles:
            user.roles.append(role)
            security_manager.update_user(user)
    return user


def provision() -> dict:
    from superset.app import create_app

    reader_url = sqlalchemy_uri(_env("EXOPS_BI_READER_URL"))
    admin_user = _env("EXOPS_BI_ADMIN_USER", "admin")
    admin_password = _env("EXOPS_BI_ADMIN_PASSWORD")
    dashboards_dir = Path(_env("EXOPS_BI_DASHBOARDS_DIR", str(ROOT / "bi" / "dashboards")))
    marts_dir = Path(_env("EXOPS_BI_MARTS_DIR", str(ROOT / "dbt_project" / "models" / "marts")))
    contents, dashboards = build_bundle(dashboards_dir, marts_dir, reader_url)

    app = create_app()
    with app.app_context():
        from flask_migrate import upgrade
        from superset import db, security_manager
        from superset.commands.importers.v1.assets import ImportAssetsCommand
        from superset.extensions import appbuilder
        from superset.utils.core import override_user

        upgrade(directory=str(Path(sys.modules["superset"].__file__).parent / "migrations"))
        appbuilder.add_permissions(update_perms=True)
        security_manager.sync_role_definitions()
        db.session.commit()
        admin = _ensure_admin(admin_user, admin_password)
        db.session.commit()
        with override_user(admin):
            ImportAssetsCommand(contents).run()
        return _summary(dashboards, contents)


def _summary(dashboards, contents: dict[str, str]) -> dict:
    import yaml
    from superset import db
    from superset.connectors.sqla.models import SqlaTable
    from superset.models.dashboard import Dashboard
    from superset.models.slice import Slice

    wanted = {
        yaml.safe_load(text)["uuid"]
        for name, text in contents.items()
        if name.startswith("charts/")
    }
    stale = [
        chart
        for chart in db.session.query(Slice).filter(Slice.is_managed_externally.is_(True))
        if str(chart.uuid) not in wanted
    ]
    for chart in stale:
        db.session.delete(chart)
    db.session.commit()
    out = []
    for d in dashboards:
        row = db.session.query(Dashboard).filter_by(slug=d.slug).one()
        out.append(
            {"id": row.id, "slug": d.slug, "title": row.dashboard_title, "charts": len(row.slices)}
        )
    return {
        "dashboards": out,
        "datasets": db.session.query(SqlaTable).filter_by(schema="marts").count(),
        "charts": db.session.query(Slice).count(),
        "stale_charts_deleted": len(stale),
    }


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    try:
        result = provision()
    except (ProvisionError, BundleError) as exc:
        print(f"exops bi: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
