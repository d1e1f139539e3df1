"""The corpus's original files and pictures of PDF pages (qa.web.originals), in process behind
the AccessGuard: every way in that should be refused is, the PDF page comes back with the cited
sentence marked, and the REST API, MCP and the viewer give the page and the link to it."""

from __future__ import annotations

import asyncio
import io
import os

import pytest

from qa.engine import open_index
from qa.ingest.pages import MARK_RGB
from qa.web.originals import CorpusFiles, page_image_url
from qa.web.security import AccessGuard
from qa.web.service import CorpusService, original_url
from tests.pdfgen import make_pdf
from tests.web_helpers import assert_inert, web_settings

testclient = pytest.importorskip("fastapi.testclient")
Image = pytest.importorskip("PIL.Image")

TOKEN = "originals-token-0123456789abcdef"
SENTENCE = "Icebreaker Krasin escorted the tanker Vostok through Aniva Bay."
PDF_PAGES = [
    "Sakhalin ferry timetables for the winter season.",
    f"{SENTENCE} Ice was thick near Korsakov.",
    "Fishing quotas for the Okhotsk Sea were renewed.",
]
SECRET = "TOPSECRET-originals"


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    folder = tmp_path_factory.mktemp("originals")
    settings = web_settings(folder)
    (settings.corpus_dir / "reports").mkdir()
    (settings.corpus_dir / "reports" / "aniva bay.pdf").write_bytes(make_pdf(PDF_PAGES))
    (settings.corpus_dir / "swapped.pdf").write_bytes(make_pdf(["Harmless page about Kunashir weather."]))
    (settings.corpus_dir / "changed.pdf").write_bytes(make_pdf(["Shikotan school reopened in spring."]))
    outside = folder / "outside"
    outside.mkdir()
    (outside / "secret.pdf").write_bytes(make_pdf([f"{SECRET} page."]))
    (outside / "secret.txt").write_text(SECRET, encoding="utf-8")
    # Never indexed: the corpus scan refuses a symlink out of the corpus.
    os.symlink(outside / "secret.txt", settings.corpus_dir / "linked.md")
    engine = open_index(settings=settings)
    # Indexed as a corpus file, then replaced by a symlink out of the corpus.
    (settings.corpus_dir / "swapped.pdf").unlink()
    os.symlink(outside / "secret.pdf", settings.corpus_dir / "swapped.pdf")
    # Changed since the index was built: the cited sentence is no longer on its page.
    (settings.corpus_dir / "changed.pdf").write_bytes(make_pdf(["Habomai fishermen were detained."]))
    files = CorpusFiles(engine)
    yield engine, files, outside
    files.close()


def _client(files: CorpusFiles, token: str | None = TOKEN):
    from starlette.applications import Starlette

    app = AccessGuard(Starlette(routes=files.routes()), token=token, hosts=None)
    return testclient.TestClient(app, raise_server_exceptions=False)


@pytest.fixture(scope="module")
def client(corpus):
    with _client(corpus[1]) as client:
        client.headers["Authorization"] = f"Bearer {TOKEN}"
        yield client


def _pdf_doc(engine):
    return engine.document("reports/aniva bay.pdf")


def test_the_original_pdf_is_served_inline_read_only(client):
    response = client.get("/corpus/reports/aniva%20bay.pdf")
    assert response.status_code == 200
    assert response.content == make_pdf(PDF_PAGES)
    assert response.headers["content-type"] == "application/pdf"
    assert response.headers["content-disposition"] == "inline; filename*=UTF-8''aniva%20bay.pdf"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "default-src 'none'" in response.headers["content-security-policy"]
    assert "script-src" not in response.headers["content-security-policy"]
    # By document id too; nothing but GET and HEAD.
    assert client.get("/corpus/reports/aniva bay").content == response.content
    assert client.head("/corpus/reports/aniva%20bay.pdf").status_code == 200
    assert client.post("/corpus/reports/aniva%20bay.pdf").status_code == 405


def test_other_files_are_only_downloaded_never_shown_as_pages(client):
    response = client.get("/corpus/kurils.md")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-disposition"].startswith("attachment;")
    assert "sandbox" in response.headers["content-security-policy"]


@pytest.mark.parametrize(
    "path",
    [
        "/corpus/%2E%2E/outside/secret.txt",  # ../ (sent encoded: clients normalise it away)
        "/corpus/reports/%2E%2E/%2E%2E/outside/secret.pdf",
        "/corpus/%2Fetc%2Fpasswd",  # an absolute path
        "/corpus/" + "%2F" + "tmp",
        "/corpus/linked.md",  # a symlink out of the corpus, never indexed
        "/corpus/not-in-the-index.pdf",  # a document id not in the index
        "/corpus/",
        "/corpus-page/%2E%2E/outside/secret.pdf?page=1",
        "/corpus-page/linked.md?page=1",
        "/corpus-page/not-in-the-index.pdf?page=1",
    ],
)
def test_nothing_outside_the_index_documents_is_served(client, path):
    response = client.get(path)
    assert response.status_code == 404, response.text
    assert SECRET not in response.text and response.headers["content-type"] == "application/json"


def test_a_document_whose_file_became_a_symlink_out_of_the_corpus_is_refused(client):
    for path in ("/corpus/swapped.pdf", "/corpus-page/swapped.pdf?page=1"):
        response = client.get(path)
        assert response.status_code == 403
        assert "outside the corpus folder" in response.json()["error"]
        assert SECRET.encode() not in response.content


@pytest.mark.parametrize(
    "path", ["/corpus/reports/aniva%20bay.pdf", "/corpus-page/reports/aniva%20bay.pdf?page=1", "/corpus/kurils.md"]
)
def test_no_token_when_one_is_set_is_401(corpus, path):
    with _client(corpus[1]) as client:
        assert client.get(path).status_code == 401
        wrong = client.get(path, headers={"Authorization": "Bearer not-the-token-at-all"})
        assert wrong.status_code == 401 and b"%PDF" not in wrong.content


def test_the_page_picture_marks_the_cited_sentence(client, corpus):
    engine = corpus[0]
    doc = _pdf_doc(engine)
    start = doc.text.index(SENTENCE)
    response = client.get(page_image_url(doc.source, start, start + len(SENTENCE)))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    assert response.headers["x-qa-marked"] == "yes"
    assert response.headers["content-security-policy"].startswith("default-src 'none'")
    picture = Image.open(io.BytesIO(response.content)).convert("RGB")
    assert picture.size == (1000, 500)
    # The line of text is at 100 of the page's 200 points; the sentence starts it.
    row = [picture.getpixel((x, 240)) for x in range(40, 600)]
    assert row.count(MARK_RGB) > 200
    assert all(picture.getpixel((x, 100)) == (255, 255, 255) for x in range(0, 1000, 10))
    # Page 1 asked for by number: nothing marked.
    plain = client.get(f"/corpus-page/{doc.source}?page=1")
    assert plain.status_code == 200 and plain.headers["x-qa-marked"] == "no"


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ("page=9", 400, "no page 9"),
        ("page=0", 400, "no page 0"),
        ("start=5", 400, "give both start and end"),
        ("start=-1&end=5", 400, "whole number"),
        ("start=0&end=999999", 400, "outside the document"),
    ],
)
def test_bad_page_requests_say_what_is_wrong(client, query, status, message):
    response = client.get(f"/corpus-page/reports/aniva%20bay.pdf?{query}")
    assert response.status_code == status and message in response.json()["error"]


def test_a_page_of_a_document_that_is_not_a_pdf_is_400(client):
    response = client.get("/corpus-page/kurils.md?page=1")
    assert response.status_code == 400 and "not a PDF" in response.json()["error"]


def test_rest_and_mcp_answers_give_the_page_and_the_link_to_it(corpus):
    mcp = pytest.importorskip("mcp")
    from starlette.applications import Starlette
    from starlette.routing import Mount

    from qa.web.api import MOUNT, create_api
    from qa.web.mcp_server import create_mcp

    engine = corpus[0]
    service = CorpusService(engine)
    question = {"question": "Icebreaker Krasin Aniva Bay tanker", "doc": ["reports/aniva bay"], "k": 1}
    app = Starlette(routes=[Mount(MOUNT, app=create_api(service))])
    with testclient.TestClient(app) as client:
        [passage] = client.post("/api/v1/ask", json=question).json()["passages"]
        shown = client.get("/api/v1/documents/reports/aniva bay", params={"start": passage["start"]}).json()
        markdown = client.post("/api/v1/ask", json={"question": "Kuril garrison", "doc": ["kurils"]}).json()
    assert passage["page"] == 2 and passage["locator"] == "page 2"
    assert passage["url"] == "/corpus/reports/aniva%20bay.pdf#page=2" == original_url(passage["source"], 2)
    assert shown["original_url"] == "/corpus/reports/aniva%20bay.pdf#page=2"
    assert {p["url"] for p in markdown["passages"]} == {"/corpus/kurils.md"}

    async def ask_mcp():
        async with mcp.Client(create_mcp(service)) as client:
            result = await client.call_tool("ask", question)
            return result.structured_content["passages"]

    [tool_passage] = asyncio.run(ask_mcp())
    assert tool_passage["page"] == 2 and tool_passage["url"] == passage["url"]


def test_the_viewer_shows_the_page_beside_the_text_and_links_the_original(corpus):
    from qa.web.app import ChatHandlers

    engine = corpus[0]
    doc = _pdf_doc(engine)
    start = doc.text.index(SENTENCE)
    handlers = ChatHandlers(engine)
    handlers.files = corpus[1]
    page_start = doc.page_starts[1]
    request = {
        "doc": doc.doc_id,
        "start": page_start,
        "end": len(doc.text.split("\n\n")[1]) + page_start,
        "hl_start": start,
        "hl_end": start + len(SENTENCE),
    }
    html = handlers.open_document(request)
    parsed = assert_inert(html)
    assert "Page 2 as printed: the cited sentence is marked" in "".join(parsed.text)
    assert f'src="{page_image_url(doc.source, start, start + len(SENTENCE))}"'.replace("&", "&amp;") in html
    assert 'href="/corpus/reports/aniva%20bay.pdf#page=2" target="_blank"' in html
    assert "mark class='qa-sentence'" in html  # the text view is still there
    # A sentence the page no longer has (the file changed since the index was built): the page, unmarked.
    changed = engine.document("changed.pdf")
    html = handlers.open_document({"doc": changed.doc_id, "start": 0, "end": 20, "hl_start": 0, "hl_end": 20})
    assert "the cited sentence could not be found on the page, so nothing is marked" in html
    assert '<img class="qa-page" src="/corpus-page/changed.pdf?start=0&amp;end=20"' in html
    # A file that cannot be served: no picture, the reason, the text.
    html = handlers.open_document({"doc": "swapped", "start": 0, "end": 20})
    assert "leads outside the corpus folder; the text is below" in html
    assert "<img" not in html and "qa-original" not in html
    markdown = handlers.open_document({"doc": "kurils", "start": 0, "end": 20})
    assert "qa-page" not in markdown and "/corpus/" not in markdown
