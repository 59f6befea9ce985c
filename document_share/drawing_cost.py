"""How much work a PDF page asks of PDFium, counted before PDFium sees it.

A page's content may draw Form XObjects, which may draw others: a page a few KB long can
draw one form 10 times, each drawing the next 10 times, seven deep (10**7 drawings).
PDFium expands every drawing while it loads the page, before any render size applies:
gigabytes and seconds of a worker (tests/security/hostile_files.py). A tiling pattern
whose cell is a hundredth of a point repeats it 10**9 times over a page. Here the page
is read with qpdf (pikepdf) as a graph, each content stream parsed once whatever the
number of times it is drawn, so the cost of counting stays that of the file's size.

The count covers every content stream drawing the page parses: its content, the forms,
tiling patterns, soft masks and Type 3 glyphs that draws, theirs in turn, and its
annotations' appearances. It is the cheap first check, not the only one: what it does
not see (what images cost to decode, what paths cost to fill) the sandbox's memory and
CPU limits still stop.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import pikepdf


class Cost(NamedTuple):
    """Bytes of content parsed, content streams drawn (PDFium spends more per form drawn,
    an object each, than per byte) and pattern tiles laid."""

    content_bytes: int = 0
    forms_drawn: int = 0
    tiles: int = 0

    def __add__(self, other):
        return Cost(*(a + b for a, b in zip(self, other, strict=True)))


class DrawsItself(ValueError):
    """A form that draws itself, directly or through others: PDFium would stop at a
    depth, a check cannot give it a size."""


def page_costs(path: Path) -> list[Cost]:
    """Per page, what drawing it means, every content stream counted each time it is
    drawn. Raises :class:`pikepdf.PdfError` for what qpdf cannot read and
    :class:`DrawsItself`."""
    with pikepdf.open(path) as pdf:
        return [_PageCount(page.obj).total() for page in pdf.pages]


# Which resource category an operator's name is looked up in.
CATEGORY = {"Do": "/XObject", "scn": "/Pattern", "SCN": "/Pattern", "gs": "/ExtGState",
            "Tf": "/Font"}


class _PageCount:
    """One page's count: each content stream's cost worked out once (``memo``), keyed by
    the stream and the scope of the resources its names are looked up in."""

    def __init__(self, page: pikepdf.Dictionary) -> None:
        self.page = page
        box = [float(v) for v in page.get("/MediaBox") or (0, 0, 612, 792)][:4]
        self.area = abs((box[2] - box[0]) * (box[3] - box[1])) if len(box) == 4 else 0.0
        self.memo: dict[tuple, Cost] = {}
        self.drawing: set[tuple] = set()

    def total(self) -> Cost:
        page, resources = self.page, self.page.get("/Resources")
        contents = page.get("/Contents")
        streams = [contents] if isinstance(contents, pikepdf.Stream) else list(contents or [])
        total = Cost(sum(len(s.read_bytes()) for s in streams if isinstance(s, pikepdf.Stream)))
        if streams:
            total += self._drawn(page, resources, page.objgen)
        for annotation in page.get("/Annots") or []:
            appearance = (annotation.get("/AP") if isinstance(annotation, pikepdf.Dictionary)
                          else None)
            normal = appearance.get("/N") if isinstance(appearance, pikepdf.Dictionary) else None
            states = [normal] if isinstance(normal, pikepdf.Stream) else (
                list(normal.values()) if isinstance(normal, pikepdf.Dictionary) else [])
            for state in states:
                if isinstance(state, pikepdf.Stream):
                    total += self._stream_cost(state, resources, page.objgen)
        return total

    def _drawn(self, container, resources, scope: tuple) -> Cost:
        """What the content streams ``container``'s content draws cost, drawing by
        drawing: forms (``Do``), tiling patterns (``scn``), soft masks (``gs``) and Type 3
        fonts' glyphs (``Tf``). ``scope`` names the page or form whose ``resources``
        they are (a direct object has no name of its own)."""
        if not isinstance(resources, pikepdf.Dictionary):
            return Cost()
        total = Cost()
        for instruction in pikepdf.parse_content_stream(container, "Do scn SCN gs Tf"):
            operands, op = instruction.operands, str(instruction.operator)
            name = operands[-1] if op in ("scn", "SCN") else operands[0] if operands else None
            if not isinstance(name, pikepdf.Name):
                continue
            for stream, inherited, inherited_scope in _contents_of(op, name, resources, scope):
                total += self._stream_cost(stream, inherited, inherited_scope)
        return total

    def _stream_cost(self, stream: pikepdf.Stream, inherited, inherited_scope: tuple) -> Cost:
        own = stream.get("/Resources")
        if own is None:  # old files let a form use the resources of what draws it
            resources, scope = inherited, inherited_scope
        else:
            resources, scope = own, stream.objgen
        key = (stream.objgen, scope)
        if key in self.memo:
            return self.memo[key]
        if key in self.drawing:
            raise DrawsItself("a form in the document draws itself")
        self.drawing.add(key)
        inner = self._drawn(stream, resources, scope)
        self.drawing.discard(key)
        # PDFium draws a pattern's cell once and lays the image tile by tile.
        cost = Cost(len(stream.read_bytes()), 1, self._tiles(stream)) + inner
        self.memo[key] = cost
        return cost

    def _tiles(self, stream: pikepdf.Stream) -> int:
        """How many tiles a tiling pattern lays over the whole page (0 for other streams)."""
        if stream.get("/PatternType") != 1:
            return 0
        try:
            step = abs(float(stream.get("/XStep", 0)) * float(stream.get("/YStep", 0)))
            a, b, c, d, *_ = [float(v) for v in stream.get("/Matrix") or (1, 0, 0, 1, 0, 0)]
        except (TypeError, ValueError):
            return 0
        cell = step * abs(a * d - b * c)  # a tile's area on the page
        return int(self.area / cell) + 1 if cell > 0 else 0


def _contents_of(op: str, name: pikepdf.Name, resources: pikepdf.Dictionary, scope: tuple):
    """The content streams the resource ``name`` draws when used by ``op``, each with the
    resources it falls back on and their scope."""
    category = resources.get(CATEGORY[op])
    target = category.get(name) if isinstance(category, pikepdf.Dictionary) else None
    if isinstance(target, pikepdf.Stream):
        if target.get("/Subtype") == pikepdf.Name.Form or target.get("/PatternType") == 1:
            yield target, resources, scope
    elif isinstance(target, pikepdf.Dictionary):
        mask = target.get("/SMask") if op == "gs" else None
        group = mask.get("/G") if isinstance(mask, pikepdf.Dictionary) else None
        if isinstance(group, pikepdf.Stream):
            yield group, resources, scope
        procs = target.get("/CharProcs") if target.get("/Subtype") == pikepdf.Name.Type3 else None
        if isinstance(procs, pikepdf.Dictionary):
            own = target.get("/Resources")
            font_scope = target.objgen if target.is_indirect else (scope, str(name))
            for proc in procs.values():
                if isinstance(proc, pikepdf.Stream):
                    yield proc, own if own is not None else resources, \
                        font_scope if own is not None else scope
