"""The check of what a PDF page's content costs to parse, before PDFium sees it: forms
counted each time they are drawn, each parsed once however often, loops refused."""

from __future__ import annotations

from pathlib import Path

import pikepdf
import pytest

from document_share import drawing_cost, pages
from tests.security.hostile_files import nested_xobject_pdf, ordinary_pdf, tiny_tile_pdf


def saved(tmp_path: Path, data: bytes) -> Path:
    path = tmp_path / "doc.pdf"
    path.write_bytes(data)
    return path


def one_page(tmp_path: Path, build) -> Path:
    """A blank page that ``build(pdf, page)`` fills in, saved."""
    pdf = pikepdf.new()
    pdf.add_blank_page(page_size=(612, 792))
    build(pdf, pdf.pages[0].obj)
    path = tmp_path / "built.pdf"
    pdf.save(path)
    return path


def form(pdf: pikepdf.Pdf, content: bytes, resources=None) -> pikepdf.Stream:
    stream = pdf.make_stream(content, Type=pikepdf.Name.XObject, Subtype=pikepdf.Name.Form,
                             BBox=[0, 0, 612, 792])
    if resources is not None:
        stream.Resources = resources
    return stream


def test_nested_forms_are_counted_as_drawn_and_refused_before_pdfium(tmp_path):
    costs = drawing_cost.page_costs(saved(tmp_path, nested_xobject_pdf(7)))
    assert [c.forms_drawn for c in costs] == [sum(10 ** k for k in range(1, 8))]
    with pytest.raises(pages.PageError, match="draws 11,111,110 forms"):
        pages.count_pdf_pages(saved(tmp_path, nested_xobject_pdf(7)))


def test_ordinary_documents_pass(tmp_path):
    assert pages.count_pdf_pages(saved(tmp_path, ordinary_pdf(3))) == 3
    assert pages.count_pdf_pages(saved(tmp_path, nested_xobject_pdf(3))) == 1  # 1,110 forms


def test_a_form_that_draws_itself_is_refused(tmp_path):
    def build(pdf, page):
        loop = pdf.make_indirect(form(pdf, b"/Me Do"))
        loop.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(Me=loop))
        page.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(F=loop))
        page.Contents = pdf.make_stream(b"/F Do")

    with pytest.raises(pages.PageError, match="draws itself"):
        pages.count_pdf_pages(one_page(tmp_path, build))


def test_a_form_without_resources_is_counted_with_those_of_what_draws_it(tmp_path):
    """A form with no resources of its own names forms in its drawer's: counted once in
    a cheap place must not make it cheap where its names mean costly forms."""
    def build(pdf, page):
        leaf = pdf.make_indirect(form(pdf, b"0 0 1 1 re f"))
        costly = pdf.make_indirect(form(pdf, b"/L Do " * 100,
                                        pikepdf.Dictionary(XObject=pikepdf.Dictionary(L=leaf))))
        shared = pdf.make_indirect(form(pdf, b"/N Do"))  # no resources: the drawer's /N
        cheap_scope = pdf.make_indirect(form(pdf, b"/S Do", pikepdf.Dictionary(
            XObject=pikepdf.Dictionary(S=shared, N=leaf))))
        costly_scope = pdf.make_indirect(form(pdf, b"/S Do " * 300, pikepdf.Dictionary(
            XObject=pikepdf.Dictionary(S=shared, N=costly))))
        page.Resources = pikepdf.Dictionary(XObject=pikepdf.Dictionary(A=cheap_scope,
                                                                        B=costly_scope))
        page.Contents = pdf.make_stream(b"/A Do /B Do")

    [cost] = drawing_cost.page_costs(one_page(tmp_path, build))
    # A, its S, S's N (a leaf); B, 300 × (S, S's N = costly, costly's 100 leaves).
    assert cost.forms_drawn == 3 + 1 + 300 * 102
    with pytest.raises(pages.PageError, match="draws 30,604 forms"):
        pages.count_pdf_pages(one_page(tmp_path, build))


def test_annotation_appearances_are_counted(tmp_path):
    def build(pdf, page):
        leaf = pdf.make_indirect(form(pdf, b"0 0 1 1 re f"))
        heavy = pdf.make_indirect(form(pdf, b"/L Do " * 25_000,
                                       pikepdf.Dictionary(XObject=pikepdf.Dictionary(L=leaf))))
        page.Annots = pdf.make_indirect(pikepdf.Array([pikepdf.Dictionary(
            Type=pikepdf.Name.Annot, Subtype=pikepdf.Name.Square, Rect=[0, 0, 100, 100],
            AP=pikepdf.Dictionary(N=heavy))]))

    with pytest.raises(pages.PageError, match="draws 25,001 forms"):
        pages.count_pdf_pages(one_page(tmp_path, build))


def test_a_page_with_too_much_plain_content_is_refused(tmp_path):
    def build(pdf, page):
        page.Contents = pdf.make_stream(b"0 0 1 1 re f\n" * (pages.MOST_CONTENT_BYTES // 13 + 1))

    with pytest.raises(pages.PageError, match="bytes of content to draw"):
        pages.count_pdf_pages(one_page(tmp_path, build))


def test_what_qpdf_cannot_read_is_a_page_error(tmp_path):
    with pytest.raises(pages.PageError, match="cannot be read"):
        pages.count_pdf_pages(saved(tmp_path, b"%PDF-1.7\n" + b"1 0 obj\n" * 10))


def test_forms_behind_a_tiling_pattern_are_counted(tmp_path):
    with pytest.raises(pages.PageError, match="draws 11,111,111 forms"):
        pages.count_pdf_pages(saved(tmp_path, nested_xobject_pdf(7, behind_pattern=True)))


def nested_leaves(pdf: pikepdf.Pdf, draws: int) -> pikepdf.Stream:
    """A form drawing a leaf form ``draws`` times."""
    leaf = pdf.make_indirect(form(pdf, b"0 0 1 1 re f"))
    return pdf.make_indirect(form(pdf, b"/L Do " * draws,
                                  pikepdf.Dictionary(XObject=pikepdf.Dictionary(L=leaf))))


def test_a_soft_mask_is_counted_each_time_its_state_is_set(tmp_path):
    def build(pdf, page):
        mask = pikepdf.Dictionary(Type=pikepdf.Name.Mask, S=pikepdf.Name.Luminosity,
                                  G=nested_leaves(pdf, 1000))
        page.Resources = pikepdf.Dictionary(ExtGState=pikepdf.Dictionary(
            M=pdf.make_indirect(pikepdf.Dictionary(SMask=mask))))
        page.Contents = pdf.make_stream(b"/M gs 0 0 1 1 re f " * 25)

    with pytest.raises(pages.PageError, match="draws 25,025 forms"):
        pages.count_pdf_pages(one_page(tmp_path, build))


def test_type3_glyphs_are_counted_with_the_fonts_resources(tmp_path):
    def build(pdf, page):
        leaf = pdf.make_indirect(form(pdf, b"0 0 1 1 re f"))
        glyph = pdf.make_stream(b"1000 0 d0 " + b"/L Do " * 1000)
        font = pdf.make_indirect(pikepdf.Dictionary(
            Type=pikepdf.Name.Font, Subtype=pikepdf.Name.Type3, FontBBox=[0, 0, 1, 1],
            FontMatrix=[0.001, 0, 0, 0.001, 0, 0], CharProcs=pikepdf.Dictionary(a=glyph),
            Encoding=pikepdf.Dictionary(Differences=[97, pikepdf.Name.a]), FirstChar=97,
            LastChar=97, Widths=[1000],
            Resources=pikepdf.Dictionary(XObject=pikepdf.Dictionary(L=leaf))))
        page.Resources = pikepdf.Dictionary(Font=pikepdf.Dictionary(F=font))
        page.Contents = pdf.make_stream(b"BT " + b"/F 12 Tf (a) Tj " * 25 + b"ET")

    [cost] = drawing_cost.page_costs(one_page(tmp_path, build))
    assert cost.forms_drawn == 25 * 1001


def test_pattern_tiles_are_counted_over_the_page(tmp_path):
    [cost] = drawing_cost.page_costs(saved(tmp_path, tiny_tile_pdf(step=1.0, fills=3)))
    assert cost.tiles == 3 * (612 * 792 + 1)
    assert pages.count_pdf_pages(saved(tmp_path, tiny_tile_pdf(step=1.0))) == 1
    with pytest.raises(pages.PageError, match="pattern tiles"):
        pages.count_pdf_pages(saved(tmp_path, tiny_tile_pdf(step=0.1)))
