"""Files made to hurt a server: small to send, costly to process."""

from __future__ import annotations

import io

import pikepdf
from PIL import Image


def nested_xobject_pdf(levels: int, fanout: int = 10, behind_pattern: bool = False) -> bytes:
    """A one-page PDF (a few KB) whose content draws Form XObject X1 ``fanout`` times,
    X1 draws X2 ``fanout`` times, and so on down to X``levels``, which fills a
    rectangle: ``fanout ** levels`` draws. Seven levels ask PDFium for gigabytes.
    ``behind_pattern``: the page fills itself with a tiling pattern whose cell draws
    X1, out of sight of the forms the page itself draws."""
    first = 4  # objects 1-3: catalog, pages, page; then the forms; then the content

    def draw(name: str) -> bytes:
        return " ".join(f"q 0.9 0 0 0.9 {i} {i} cm /{name} Do Q" for i in range(fanout)).encode()

    def stream(dictionary: bytes, data: bytes) -> bytes:
        return b"<< " + dictionary + b" /Length %d >>\nstream\n" % len(data) + data + \
            b"\nendstream"

    content, pattern = first + levels, first + levels + 1
    forms = b"/XObject << /X1 %d 0 R >>" % first
    objects = {
        1: b"<< /Type /Catalog /Pages 2 0 R >>",
        2: b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        3: b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Resources << %s >> "
           b"/Contents %d 0 R >>" % (b"/Pattern << /P1 %d 0 R >>" % pattern if behind_pattern
                                     else forms, content),
        content: stream(b"", b"/Pattern cs /P1 scn 0 0 612 792 re f" if behind_pattern
                        else draw("X1")),
    }
    if behind_pattern:
        objects[pattern] = stream(
            b"/Type /Pattern /PatternType 1 /PaintType 1 /TilingType 1 /BBox [0 0 612 792] "
            b"/XStep 612 /YStep 792 /Resources << %s >>" % forms, draw("X1"))
    for level in range(1, levels + 1):
        number = first + level - 1
        form = b"/Type /XObject /Subtype /Form /BBox [0 0 612 792]"
        if level < levels:
            objects[number] = stream(
                form + b" /Resources << /XObject << /X%d %d 0 R >> >>" % (level + 1, number + 1),
                draw(f"X{level + 1}"))
        else:
            objects[number] = stream(form, b"0 0 1 rg 0 0 600 780 re f")
    out = bytearray(b"%PDF-1.4\n")
    offsets = {}
    for number in sorted(objects):
        offsets[number] = len(out)
        out += b"%d 0 obj\n" % number + objects[number] + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for number in sorted(objects):
        out += b"%010d 00000 n \n" % offsets[number]
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1, xref)
    return bytes(out)


def tiny_tile_pdf(step: float = 0.01, fills: int = 1) -> bytes:
    """A page filled ``fills`` times with a tiling pattern whose cell repeats every
    ``step`` points: at 0.01, 5 billion tiles, over 10 s of PDFium's time per fill."""
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(612, 792))
    pattern = pdf.make_stream(b"0 0 1 1 re f", Type=pikepdf.Name.Pattern, PatternType=1,
                              PaintType=1, TilingType=1, BBox=[0, 0, 1, 1], XStep=step,
                              YStep=step, Resources=pikepdf.Dictionary())
    page = pdf.pages[0].obj
    page.Resources = pikepdf.Dictionary(Pattern=pikepdf.Dictionary(P=pattern))
    page.Contents = pdf.make_stream(b"/Pattern cs /P scn 0 0 612 792 re f " * fills)
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def calculator_shading_pdf(ops: int = 100_000) -> bytes:
    """A page filled with a shading whose colour is a PostScript calculator function of
    ``ops`` operators, run for every pixel: 2 KB to send, over 10 s of PDFium's time at
    a thumbnail's size. No count of content streams sees it (a function is not one):
    the sandbox's limits stop it."""
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(612, 792))
    function = pdf.make_stream(b"{ " + b"dup pop " * ops + b"pop pop 0.5 }", FunctionType=4,
                               Domain=[0, 1, 0, 1], Range=[0, 1])
    shading = pikepdf.Dictionary(ShadingType=1, ColorSpace=pikepdf.Name.DeviceGray,
                                 Domain=[0, 1, 0, 1], Matrix=[612, 0, 0, 792, 0, 0],
                                 Function=function)
    page = pdf.pages[0].obj
    page.Resources = pikepdf.Dictionary(Shading=pikepdf.Dictionary(S=shading))
    page.Contents = pdf.make_stream(b"/S sh")
    out = io.BytesIO()
    pdf.save(out)
    return out.getvalue()


def ordinary_pdf(pages: int = 1) -> bytes:
    """An A4 scan-like PDF (Pillow), as a kiosk's scanner would send."""
    images = [Image.new("RGB", (1240, 1754), (250, 250, 245 - i)) for i in range(pages)]
    out = io.BytesIO()
    images[0].save(out, "PDF", resolution=150.0, save_all=True, append_images=images[1:])
    return out.getvalue()
