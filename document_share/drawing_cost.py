"""How much content a PDF page asks PDFium to parse, counted before PDFium sees it.

A page's content may draw Form XObjects, which may draw others: a page a few KB long can
draw one form 10 times, each drawing the next 10 times, seven deep (10**7 drawings).
PDFium expands every drawing while it loads the page, before any render size applies:
gigabytes and seconds of a worker (tests/security/hostile_files.py). Here the page is
read with qpdf (pikepdf) as a graph, each form's content parsed once whatever the
number of times it is drawn, so the cost of counting stays that of the file's size.

The count covers the page's content, the forms it draws, and its annotations'
appearances. It is the cheap first check, not the only one: what it does not see
(patterns, Type 3 glyphs, huge images) the sandbox's memory and CPU limits still stop.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pikepdf


class Cost(NamedTuple):
    """Bytes of content parsed and forms drawn; PDFium spends more per form drawn (an
    object each) than per byte."""

    content_bytes: int
    forms_drawn: int

    def __add__(self, other):
        return Cost(self.content_bytes + other.content_bytes, self.forms_drawn + other.forms_drawn)


NOTHING = Cost(0, 0)


class DrawsItself(ValueError):
    """A form that draws itself, directly or through others: PDFium would stop at a
    depth, a check cannot give it a size."""


def page_costs(path: Path) -> list[Cost]:
    """Per page, what drawing it means parsing, every form counted each time it is
    drawn. Raises :class:`pikepdf.PdfError` for what qpdf cannot read and
    :class:`DrawsItself`."""
    with pikepdf.open(path) as pdf:
        return [_page_cost(page.obj) for page in pdf.pages]


def _page_cost(page: pikepdf.Dictionary) -> Cost:
    memo: dict[tuple, Cost] = {}
    resources = page.get("/Resources")
    contents = page.get("/Contents")
    streams = [contents] if isinstance(contents, pikepdf.Stream) else list(contents or [])
    total = Cost(sum(len(s.read_bytes()) for s in streams if isinstance(s, pikepdf.Stream)), 0)
    if streams:
        total += _drawn(page, resources, page.objgen, memo, set())
    for annotation in page.get("/Annots") or []:
        appearance = annotation.get("/AP") if isinstance(annotation, pikepdf.Dictionary) else None
        normal = appearance.get("/N") if isinstance(appearance, pikepdf.Dictionary) else None
        states = [normal] if isinstance(normal, pikepdf.Stream) else (
            list(normal.values()) if isinstance(normal, pikepdf.Dictionary) else [])
        for state in states:
            if isinstance(state, pikepdf.Stream):
                total += _form_cost(state, resources, page.objgen, memo, set())
    return total


def _drawn(container, resources, scope: tuple, memo: dict, drawing: set) -> Cost:
    """What the forms ``container``'s content draws cost, drawing by drawing; ``scope``
    names the page or form whose ``resources`` they are (a direct object has no name
    of its own)."""
    xobjects = resources.get("/XObject") if isinstance(resources, pikepdf.Dictionary) else None
    if not isinstance(xobjects, pikepdf.Dictionary):
        return NOTHING
    total = NOTHING
    for operands, _ in pikepdf.parse_content_stream(container, "Do"):
        target = xobjects.get(operands[0]) if operands else None
        if isinstance(target, pikepdf.Stream) and target.get("/Subtype") == pikepdf.Name.Form:
            total += _form_cost(target, resources, scope, memo, drawing)
    return total


def _form_cost(form: pikepdf.Stream, inherited, inherited_scope: tuple, memo: dict,
               drawing: set) -> Cost:
    own = form.get("/Resources")
    if own is None:  # old files let a form use the resources of what draws it
        resources, scope = inherited, inherited_scope
    else:
        resources, scope = own, form.objgen
    key = (form.objgen, scope)
    if key in memo:
        return memo[key]
    if key in drawing:
        raise DrawsItself("a form in the document draws itself")
    drawing.add(key)
    cost = Cost(len(form.read_bytes()), 1) + _drawn(form, resources, scope, memo, drawing)
    drawing.discard(key)
    memo[key] = cost
    return cost
