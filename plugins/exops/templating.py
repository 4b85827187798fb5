"""Every mail body and the report page, rendered from the Jinja2 templates of exops/templates/.

One environment for the whole package: HTML templates (``*.html.j2``) are autoescaped, so a
value from data (a product id, a campaign name, an error message) can never become markup;
text templates (``*.txt.j2``) are not, since ``&lt;5`` in a plain-text mail would be wrong.
Undefined names raise (StrictUndefined): a template that names a value the code does not
pass fails when it is rendered, in tests, instead of printing an empty string to readers.
How the folder is laid out and what its shared macros offer: exops/templates/README.md.

A shared piece below the stages: it imports nothing of exops, and every stage may use it.
"""

from __future__ import annotations

from functools import cache

import jinja2


@cache
def environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("exops", "templates"),
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html.j2", "html"), default_for_string=True, default=False
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def render(name: str, **context: object) -> str:
    """The template ``name`` (e.g. ``report.html.j2``) rendered with ``context``."""
    return environment().get_template(name).render(**context)


def template_names() -> list[str]:
    """Every template a message or page is rendered from (shared layouts and macros, whose
    names start with ``_``, left out)."""
    return [
        n
        for n in environment().list_templates(extensions=["j2"])
        if not n.rsplit("/", 1)[-1].startswith("_")
    ]
