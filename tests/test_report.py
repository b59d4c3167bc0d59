"""The identification report, from real aligned face crops: what it says, what it never says, its files."""

from __future__ import annotations

import base64
import hashlib
import logging
import re
import sys
from dataclasses import replace
from datetime import UTC, date, datetime
from html import unescape
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import REPO, london

from nomina import FaceAnalyzer, FaceModel, __version__, load_settings
from nomina.calibration import verbal
from nomina.errors import InvalidField
from nomina.imaging import decode_image, read_photo
from nomina.report import (
    IdentificationReport,
    ReportCandidate,
    ReportConclusion,
    ReportFace,
    render_html,
    write_report,
)

pytestmark = pytest.mark.slow  # reports rendered as PDF: about 4 s; CI runs them

CASE_ID = "UP-17"
HEAD = "9f2c" * 16
HOSTILE = "<script>alert('x')</script>"
A4_POINTS = (595.28, 841.89)
T0 = datetime(2026, 3, 4, 9, 30, tzinfo=UTC)
T1 = datetime(2026, 3, 5, 14, 2, 7, tzinfo=UTC)


class Evidence:
    """Evidence as attributes (the renderer also takes a dict)."""

    def __init__(self, log10_lr: float, calibration: str) -> None:
        self.lr = 10.0**log10_lr
        self.log10_lr = log10_lr
        self.verbal = verbal(log10_lr)
        self.calibration = calibration


@pytest.fixture(scope="module")
def faces(faces_dir: Path, model: FaceModel) -> dict[str, object]:
    """The real aligned crops and embeddings: the case is london 001 smiling; references are 001 and 002."""
    settings = load_settings(environ={})
    analyzer = FaceAnalyzer(model, settings)
    out = {}
    for key, path in {
        "case": london(faces_dir, "001", "smiling"),
        "same": london(faces_dir, "001"),
        "other": london(faces_dir, "002"),
    }.items():
        out[key] = analyzer.analyze(decode_image(read_photo(path), path.name, settings.max_pixels))[0]
    return out


@pytest.fixture(scope="module")
def report(faces, model: FaceModel) -> IdentificationReport:
    case, same, other = faces["case"], faces["same"], faces["other"]
    examiner = ReportConclusion("ines.examiner", "examiner", "identification proposed", "ear shape; scar & mole", T0)
    verifier = ReportConclusion("olu.verifier", "verifier", "agrees", "same ear shape", T1)
    return IdentificationReport(
        case={"id": CASE_ID, "kind": "deceased", "found_on": date(2026, 3, 2), "found_at": "river bank, km 12",
              "notes": "tattoo <left forearm> & healed fracture", "status": "open"},
        case_faces=[ReportFace("face 1", case.aligned, "body_face.jpg, 2026-03-02, quality 0.81")],
        identification={"reference_id": "MP-0001", "name": "Ana Example", "proposed_by": "ines.examiner",
                        "proposed_at": T0, "verified_by": "olu.verifier", "verified_at": T1, "status": "verified"},
        candidates=[
            ReportCandidate(
                rank=1, reference_id="MP-0001", name="Ana Example",
                score=float(case.embedding @ same.embedding),
                evidence=Evidence(2.4, "London sample set, 12 people: 24 same-person, 1,000 different-person pairs"),
                face=ReportFace("photo 1", same.aligned, "001_neutral.jpg, 2019"),
                details={"sex": "female", "birth_year": 1991, "last_seen_on": date(2025, 11, 3),
                         "last_seen_at": "bus station", "source": "family", "supplied_by": "her brother",
                         "legal_basis": "ICRC family request"},
                warnings=["Reference photo taken about 7 years before the case photo"],
                conclusions=[examiner, verifier],
            ),
            ReportCandidate(
                rank=2, reference_id="MP-0002", name=HOSTILE,
                score=float(case.embedding @ other.embedding),
                face=ReportFace("photo 1", other.aligned, "002_neutral.jpg"),
                details={"source": "police record"},
            ),
        ],
        search={"search_id": 3, "time": T0, "user": "ines.examiner", "gallery_size": 102, "model": model.name},
        model={"name": model.name, "description": model.manifest.description,
               "licence": model.manifest.licence, "files": dict(model.file_hashes)},
        calibration={"method": "logistic", "data": "London sample set", "genuine": 24, "impostor": 1000,
                     "cllr": 0.21},
        audit=[{"seq": 41, "at": T0, "actor": "ines.examiner", "action": "search.run", "summary": "search 3"},
               {"seq": 42, "at": T1, "actor": "olu.verifier", "action": "identification.verify",
                "summary": "UP-17 / MP-0001 agrees"}],
        audit_head=HEAD,
        generated_at=T1,
        generated_by="olu.verifier",
        nomina_version=__version__,
    )  # fmt: skip


@pytest.fixture(scope="module")
def html(report) -> str:
    return render_html(report)


@pytest.fixture(scope="module")
def pdf(report, tmp_path_factory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("pdf") / "report.pdf"
    return path, write_report(report, path)


def words(text: str) -> str:
    return " ".join(text.split())


def visible_text(html: str) -> str:
    body = re.sub(r"<(style|script)\b.*?</\1>", " ", html, flags=re.S)
    return words(unescape(re.sub(r"<[^>]+>", " ", body)))


def pdf_pages(path: Path):
    pdfium = pytest.importorskip("pypdfium2")
    return pdfium.PdfDocument(path)


def pdf_text(path: Path) -> str:
    return words(" ".join(page.get_textpage().get_text_range() for page in pdf_pages(path)))


# -- what the HTML says -----------------------------------------------------------------------------------


def test_html_names_the_case_every_candidate_and_the_audit_head(html, report):
    text = visible_text(html)
    assert f"Case {CASE_ID}" in text
    for c in report.candidates:
        assert f"reference {c.reference_id}" in text
    assert "Ana Example" in text
    assert HEAD in text
    assert f"Nomina {__version__}" in text
    for c in report.model["files"].values():
        assert c in text


def test_evidence_is_a_likelihood_ratio_with_its_calibration_and_otherwise_the_score_is_called_uncalibrated(html):
    blocks = html.split('<section class="candidate">')[1:]
    first, second = (visible_text(b) for b in blocks)
    assert "Likelihood ratio 250 (log10 LR +2.40)" in first
    assert "moderately strong support for the same person rather than different people" in first
    assert "London sample set, 12 people" in first
    assert "uncalibrated" not in first
    assert "uncalibrated similarity, not a probability" in second
    assert "Likelihood ratio" not in second


def test_scores_are_never_percentages(html, report):
    text = visible_text(html)
    for c in report.candidates:
        assert f"Similarity score {c.score:.3f}" in text
    assert "%" not in html


def test_the_limits_of_the_method_are_stated(html):
    text = visible_text(html)
    for phrase in (
        "Face comparison is a lead, not proof",
        "DNA, dental records, fingerprints or personal effects",
        "The software never decides",
        "a different person, the verifier",
        "injuries and decomposition",
        "not the probability that they are the same person",
    ):
        assert phrase in text


def test_warnings_and_every_conclusion_are_shown_with_person_role_and_time(html):
    text = visible_text(html)
    assert "Warnings are attached to the candidate ranked 1" in text
    assert "Reference photo taken about 7 years before the case photo" in text
    assert "2026-03-04 09:30:00 UTC ines.examiner examiner identification proposed ear shape; scar & mole" in text
    assert "2026-03-05 14:02:07 UTC olu.verifier verifier agrees same ear shape" in text
    assert "No examiner or verifier conclusion is recorded for this candidate" in text


def test_user_text_is_escaped(html):
    assert HOSTILE not in html
    assert "<script" not in html
    assert "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in html
    assert "tattoo &lt;left forearm&gt; &amp; healed fracture" in html


def test_the_newest_feature_checklist_of_a_candidate_is_a_table_in_its_order(report):
    older = ReportConclusion(
        "ines.examiner",
        "examiner",
        "insufficient information",
        "too dark",
        T0,
        checklist={"eyes": {"finding": "not visible", "note": "shadow"}},
    )
    newer = ReportConclusion("ines.examiner", "examiner", "possible match", "ears and mole", T1, checklist={
        "face shape": {"finding": "similar", "note": ""},
        "ears": {"finding": "similar", "note": "attached lobes"},
        "marks, scars, tattoos": {"finding": "different", "note": HOSTILE},
    })  # fmt: skip
    first = replace(report.candidates[0], conclusions=[older, newer, report.candidates[0].conclusions[1]])
    html = render_html(replace(report, candidates=[first, *report.candidates[1:]]))
    text = visible_text(html)
    assert "Feature-by-feature comparison recorded by ines.examiner on 2026-03-05 14:02:07 UTC" in text
    assert "with the conclusion possible match" in text
    rows = "feature finding note face shape similar — ears similar attached lobes marks, scars, tattoos different"
    assert rows in text
    assert "shadow" not in text  # only the newest checklist is shown
    assert HOSTILE not in html
    assert visible_text(render_html(report)).count("Feature-by-feature") == 0  # none recorded: no table


def test_the_status_is_printed_as_given_never_inferred(report):
    disputed = replace(report, identification={**report.identification, "status": "disputed"})
    assert "Status: <b>disputed</b>" in render_html(disputed)
    unstated = {k: v for k, v in report.identification.items() if k != "status"}  # verifier named, no status
    assert "Status: <b>—</b>" in render_html(replace(report, identification=unstated))
    none = render_html(replace(report, identification=None))
    assert "No identification has been proposed for this case." in none
    assert "Status:" not in none


def test_the_html_is_self_contained_and_embeds_the_aligned_crops_exactly(html, faces):
    assert not re.search(r"(?:src|href)\s*=\s*\"(?!data:)", html)
    assert "http://" not in html and "https://" not in html and "<link" not in html
    uris = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(uris) == 5  # the case face, then case face and reference face for each candidate
    shown = [cv2.imdecode(np.frombuffer(base64.b64decode(u), np.uint8), cv2.IMREAD_COLOR) for u in uris]
    case, same, other = (faces[k].aligned for k in ("case", "same", "other"))
    for got, want in zip(shown, [case, case, same, case, other], strict=True):
        assert np.array_equal(got, want)


def test_a_likelihood_ratio_below_one_reads_for_different_people(report):
    against = replace(report.candidates[1], evidence={"lr": 10**-1.5, "log10_lr": -1.5, "verbal": verbal(-1.5),
                                                       "calibration": "lab set"})  # fmt: skip
    text = visible_text(render_html(replace(report, candidates=[against])))
    assert "Likelihood ratio 1/32 (log10 LR -1.50)" in text
    assert "moderate support for different people rather than the same person" in text
    assert "about 32 times more probable if the faces are of different people" in text


def test_a_deleted_reference_is_said_to_be_deleted(report):
    gone = replace(report.candidates[1], name=None, face=None, details={})
    text = visible_text(render_html(replace(report, candidates=[gone])))
    assert "reference MP-0002 (reference deleted since the search)" in text
    assert "reference face no longer held" in text


def test_malformed_parts_are_refused(report, faces):
    with pytest.raises(ValueError, match="role"):
        ReportConclusion("a", "supervisor", "agrees", "", T0)
    with pytest.raises(ValueError, match="uint8 BGR"):
        ReportFace("face 1", faces["case"].aligned.astype(np.float32))
    with pytest.raises(ValueError, match="case_face 2"):
        replace(report, candidates=[replace(report.candidates[0], case_face=2)])


# -- the PDF ----------------------------------------------------------------------------------------------


def test_the_pdf_is_a4_with_the_text_and_the_hash_of_its_bytes(pdf):
    path, sha = pdf
    assert sha == hashlib.sha256(path.read_bytes()).hexdigest()
    pages = pdf_pages(path)
    assert len(pages) >= 2
    for page in pages:
        width, height = page.get_size()
        assert (round(width, 1), round(height, 1)) == pytest.approx(A4_POINTS, abs=0.2)
    text = pdf_text(path)
    assert CASE_ID in text
    assert "moderately strong support for the same person rather than different people" in text
    assert "uncalibrated similarity, not a probability" in text
    assert "Face comparison is a lead, not proof" in text
    assert HEAD[:16] in text
    assert "%" not in text


def test_writing_a_pdf_leaves_damaged_photos_refused(pdf, faces_dir, tmp_path):
    """WeasyPrint sets Pillow's global LOAD_TRUNCATED_IMAGES on import; the renderer puts it back."""
    from PIL import ImageFile

    from nomina.errors import NotAnImage
    from nomina.imaging import decode_image

    data = (faces_dir / "london" / "002" / "002_neutral.jpg").read_bytes()
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    with pytest.raises(NotAnImage, match="damaged or truncated"):
        decode_image(data[: len(data) // 2], "cut.jpg", 50_000_000)


def test_the_pdf_pages_are_drawn_and_show_the_faces_themselves(pdf, faces):
    import pypdfium2.raw as pdfium_c

    path, _ = pdf
    first = pdf_pages(path)[0].render(scale=1).to_numpy()
    assert (first < 128).mean() > 0.01  # text was drawn on the first page

    wanted = [faces[k].aligned for k in ("case", "same", "other")]
    placed = 0
    for page in pdf_pages(path):
        scale = 2.0
        drawn = page.render(scale=scale).to_numpy()[:, :, :3]  # BGR, like the crops
        height = page.get_size()[1]
        for image in page.get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,), max_depth=4):
            placed += 1
            pixels = image.get_bitmap(render=False).to_numpy()
            assert any(np.array_equal(pixels, w) for w in wanted)  # the crop itself, losslessly
            left, bottom, right, top = image.get_bounds()
            region = drawn[round((height - top) * scale) : round((height - bottom) * scale),
                           round(left * scale) : round(right * scale)]  # fmt: skip
            assert region.std() > 20  # a picture, not a blank or uniform box
            crop = cv2.resize(pixels, (region.shape[1], region.shape[0]), interpolation=cv2.INTER_AREA)
            r = np.corrcoef(region.astype(float).ravel(), crop.astype(float).ravel())[0, 1]
            assert r > 0.9  # drawn where the PDF says, upright and in its own colours
            assert np.abs(region.mean(axis=(0, 1)) - crop.mean(axis=(0, 1))).max() < 12
    assert placed == 5


def test_the_pdf_fetches_nothing(monkeypatch, tmp_path, report, faces, caplog):
    """Only data: URLs are read; a file or network URL that reached the HTML would be refused."""
    local = tmp_path / "face.png"
    cv2.imwrite(str(local), faces["case"].aligned)
    page = (
        f'<html><head><link rel="stylesheet" href="{local.with_suffix(".css").as_uri()}"></head><body>'
        f'<img src="{local.as_uri()}"><img src="http://127.0.0.1:9/face.png"><p>{CASE_ID}</p></body></html>'
    )
    local.with_suffix(".css").write_text("p { color: red }")
    monkeypatch.setattr("nomina.report.render_html", lambda _: page)
    out = tmp_path / "fetch.pdf"
    with caplog.at_level(logging.WARNING, logger="weasyprint"):
        write_report(report, out)
    refused = [r.getMessage() for r in caplog.records if "may not fetch" in r.getMessage()]
    assert len(refused) == 3, [r.getMessage() for r in caplog.records]
    assert CASE_ID in pdf_text(out)
    import pypdfium2.raw as pdfium_c

    assert not list(pdf_pages(out)[0].get_objects(filter=(pdfium_c.FPDF_PAGEOBJ_IMAGE,)))


def test_the_template_uses_nothing_weasyprint_ignores(report, tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="weasyprint"):
        write_report(report, tmp_path / "r.pdf")
    complaints = [r.getMessage() for r in caplog.records if "HarfBuzz" not in r.getMessage()]
    assert complaints == []


# -- files ------------------------------------------------------------------------------------------------


def test_write_report_html_writes_the_page_and_returns_its_hash(tmp_path, report, html):
    out = tmp_path / "report.HTML"
    sha = write_report(report, out)
    assert out.read_text(encoding="utf-8") == html
    assert sha == hashlib.sha256(out.read_bytes()).hexdigest()
    assert [p.name for p in tmp_path.iterdir()] == ["report.HTML"]


def one_line(error: Exception) -> str:
    message = str(error)
    assert "\n" not in message and message
    return message


def test_a_suffix_other_than_html_or_pdf_is_refused(tmp_path, report):
    with pytest.raises(InvalidField) as caught:
        write_report(report, tmp_path / "report.docx")
    assert one_line(caught.value) == f"out: {tmp_path / 'report.docx'} must end in .html or .pdf"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("where", ["missing", "file"])
def test_a_folder_that_cannot_be_written_is_refused_and_nothing_is_left(tmp_path, report, where):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    out = tmp_path / "no" / "such" / "report.html" if where == "missing" else blocker / "report.html"
    with pytest.raises(InvalidField, match=r"^out: .* is not a folder$") as caught:
        write_report(report, out)
    one_line(caught.value)
    assert [p.name for p in tmp_path.iterdir()] == ["not-a-folder"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary_one(tmp_path, report, monkeypatch):
    out = tmp_path / "report.html"
    out.write_text("earlier report")

    def refuse(src, dst):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr("nomina.report.os.replace", refuse)
    with pytest.raises(InvalidField) as caught:
        write_report(report, out)
    assert one_line(caught.value) == f"out: cannot write {out}: Permission denied"
    assert out.read_text() == "earlier report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_a_pdf_without_weasyprint_says_how_to_install_it(tmp_path, report, monkeypatch):
    monkeypatch.setitem(sys.modules, "weasyprint", None)  # import weasyprint now raises ImportError
    with pytest.raises(InvalidField) as caught:
        write_report(report, tmp_path / "report.pdf")
    assert one_line(caught.value) == "out: PDF reports need WeasyPrint: pip install 'nomina[pdf]'"
    assert list(tmp_path.iterdir()) == []


def test_a_pdf_without_the_system_libraries_says_which(tmp_path, report, monkeypatch):
    class NoPango:
        """Imports of weasyprint fail as they do when Pango is not installed."""

        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] == "weasyprint":
                raise OSError("cannot load library 'libpango-1.0-0': not found")
            return None

    for name in [m for m in sys.modules if m.split(".")[0] == "weasyprint"]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setattr(sys, "meta_path", [NoPango(), *sys.meta_path])
    with pytest.raises(InvalidField) as caught:
        write_report(report, tmp_path / "report.pdf")
    assert one_line(caught.value) == (
        "out: PDF reports need the Pango library, which WeasyPrint cannot load: "
        "cannot load library 'libpango-1.0-0': not found"
    )
    assert list(tmp_path.iterdir()) == []


def test_the_example_in_the_docs_runs(tmp_path, faces_dir, monkeypatch):
    doc = (REPO / "docs" / "report.md").read_text()
    example = re.search(r"```python\n(.*?)```", doc, flags=re.S).group(1)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "photo1.jpg").symlink_to(london(faces_dir, "001"))
    (tmp_path / "body_face.jpg").symlink_to(london(faces_dir, "001", "smiling"))
    scope: dict[str, object] = {}
    exec(compile(example, "docs/report.md", "exec"), scope)
    page = (tmp_path / "UP-17.html").read_bytes()
    assert scope["sha256"] == hashlib.sha256(page).hexdigest()
    assert "Status: <b>proposed</b>" in page.decode()


def test_long_unbroken_text_is_wrapped_inside_the_pdf_page(report, tmp_path):
    """A reason holding a long address, or a long name, ran past the page's edge: the PDF's text layer held
    it, but the printed page lost the end of the sentence."""
    tail = "TAIL-MARKER: exclude if the scar is absent."
    long_word = "https://evidence.example.org/cases/2026/" + "x" * 240 + "/dental-chart.pdf"
    first = report.candidates[0]
    reasons = f"Dental record at {long_word} agrees. {tail}"
    conclusion = replace(first.conclusions[0], reasons=reasons)
    longer = replace(
        report,
        candidates=[replace(first, name="N" * 150, conclusions=[conclusion, *first.conclusions[1:]])],
    )
    path = tmp_path / "long.pdf"
    write_report(longer, path)
    assert tail in pdf_text(path)
    for page in pdf_pages(path):
        width = page.get_width()
        text = page.get_textpage()
        rights = [text.get_charbox(i)[2] for i in range(text.count_chars())]
        assert max(rights) <= width, f"text past the page's right edge: {max(rights):.0f} > {width:.0f} pt"
