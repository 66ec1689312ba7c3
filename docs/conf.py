"""Sphinx configuration for the bgrefresh-policy documentation (``sphinx-build -W -n docs <out>``)."""

from __future__ import annotations

from typing import Any

from sphinx.application import Sphinx

import bgrefresh_policy

project = "bgrefresh-policy"
author = "the bgrefresh-policy developers"
copyright = "2026, the bgrefresh-policy developers"
release = bgrefresh_policy.__version__
version = release

extensions = ["sphinx.ext.autodoc", "sphinx.ext.intersphinx", "sphinx.ext.viewcode"]

# Signatures show the options with their defaults; the descriptions come from the docstrings.
autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
autoclass_content = "class"


# No network here or in CI: references to other projects' docs resolve from no inventory, and
# nitpicky mode is told which outside names it may leave unresolved.
intersphinx_mapping: dict[str, tuple[str, str | None]] = {}
nitpicky = True
nitpick_ignore_regex = [
    ("py:class", r"azure\..*"),
    ("py:exc", r"azure\..*"),
    ("py:obj", r"azure\..*"),
    ("py:class", r"(HTTPRequestType|HTTPResponseType|AsyncHTTPResponseType)"),
    ("py:class", r"(types\.)?TracebackType"),
    ("py:class", r"Any"),
    ("py:class", r"collections\.abc\..*"),
    ("py:class", r"bgrefresh_policy\._enable\.ClientT"),  # the client's own type, returned as it is
    # The options' TypedDicts (``**options: Unpack[...]``) are for type checkers: each public
    # docstring lists the keywords. CredentialT is the wrapped credential's type.
    ("py:class", r"bgrefresh_policy\._options\.(Face|Client|Policy|Credential)Options"),
    ("py:class", r"bgrefresh_policy\._credential_face\.CredentialT"),
    ("py:class", r"bgrefresh_policy\._face_(a?sync)\._FaceT"),  # what __enter__ returns: the object itself
]

html_theme = "alabaster"
html_static_path = ["_static"]
html_title = f"bgrefresh-policy {release}"
html_theme_options = {
    "description": "Background token refresh for Azure SDK clients",
    "fixed_sidebar": True,
    # The basic theme caps the text at 800 px; the page's own width (custom.css) is the limit instead.
    "body_max_width": "none",
}
templates_path: list[str] = []
exclude_patterns = ["_build"]
html_favicon = "_static/favicon.svg"  # browsers ask for one; without it, each first page logs a 404


def _source_listings_scroll(
    app: Sphinx, pagename: str, templatename: str, context: dict[str, Any], doctree: Any
) -> None:
    """Mark viewcode's module listings as scrolling by design (see docs/browser_check.py).

    They show the source as it is, 120 columns wide, which no 1280 px screen fits beside the sidebar.
    """
    if pagename.startswith("_modules/") and "body" in context:
        context["body"] = context["body"].replace(
            '<div class="highlight">', '<div class="highlight scrolls-by-design">'
        )


def setup(app: Sphinx) -> None:
    app.connect("html-page-context", _source_listings_scroll)
