"""MkDocs hook: render the Sphinx roles of the docstrings (``:class:`~a.B```) as code.

The docstrings keep Sphinx's cross-reference roles; mkdocstrings renders Markdown, where a
role would show as ``:class:`` before the name. Like Sphinx, a leading ``~`` shows only the
last component. An RST literal-block marker (``::`` ending a paragraph) becomes ``:``.
"""

from __future__ import annotations

import re
from typing import Any

ROLE = re.compile(r":(?:class|func|meth|mod|data|attr|exc):<code>(~?)([^<]+)</code>")
LITERAL_MARKER = re.compile(r"::</p>")


def _shown(match: re.Match[str]) -> str:
    tilde, target = match.groups()
    return f"<code>{target.rsplit('.', 1)[-1] if tilde else target}</code>"


def on_page_content(html: str, **kwargs: Any) -> str:
    """Rewrite the roles and literal markers in a rendered page."""
    return LITERAL_MARKER.sub(":</p>", ROLE.sub(_shown, html))
