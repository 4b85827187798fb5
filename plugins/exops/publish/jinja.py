"""Rendering the publish stage's Jinja2 templates (plugins/exops/templates/).

HTML templates (``*.html.j2``) are autoescaped: every value from the warehouse is escaped
unless a template says otherwise. Undefined variables fail loudly (a template bug must be a
render failure, recorded and told, not a silently empty email).
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

TEMPLATES_DIR = Path(__file__).resolve().parent.parent / "templates"


@cache
def _environment():
    import jinja2

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=jinja2.select_autoescape(enabled_extensions=("html.j2", "html")),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render(name: str, **context: object) -> str:
    """The template ``name`` rendered with ``context``."""
    return _environment().get_template(name).render(**context)
