"""What a phone receives through the delivery middleware: text gzipped,
bundles minified and cached for a year, icon fonts that never hide text,
downloads streamed untouched."""
import gzip

from werkzeug.test import Client
from werkzeug.wrappers import Response

from ckanext.shanghai.web.delivery import MAX_AGE_VERSIONED, Delivery

CSS = ("/* CKAN's theme */\n.masthead {\n  color: #fff;\n}\n"
       "@font-face {\n  font-family: 'Font Awesome 6 Free';\n  font-display: block;\n}\n") * 40
PAGE = "<!DOCTYPE html><html lang='zh-Hans-CN'><body>" + "<p>上海市公共数据开放平台</p>" * 100 + "</body></html>"
CSV = "序号,名称\n" + "1,上海市养老机构\n" * 2000


def portal(environ, start_response):
    path = environ["PATH_INFO"]
    if path.endswith(".css"):
        response = Response(CSS, mimetype="text/css",
                            headers={"Cache-Control": "no-cache, public, max-age=0, must-revalidate"})
    elif "/download/" in path:
        response = Response(CSV, mimetype="text/csv")
    elif path == "/tiny":
        response = Response("ok", mimetype="text/html")
    else:
        response = Response(PAGE, mimetype="text/html", headers={"Vary": "Cookie"})
    return response(environ, start_response)


def get(path, encoding="gzip, deflate, br"):
    return Client(Delivery(portal)).get(path, headers={"Accept-Encoding": encoding} if encoding else {})


def test_a_bundle_is_minified_gzipped_and_cached_for_a_year():
    response = get("/webassets/base/f1c08bee_main.css")
    assert response.headers["Content-Encoding"] == "gzip"
    assert response.headers["Cache-Control"] == f"public, max-age={MAX_AGE_VERSIONED}, immutable"
    assert "Accept-Encoding" in response.headers["Vary"]
    css = gzip.decompress(response.data).decode()
    assert "CKAN's theme" not in css and ".masthead{color:#fff}" in css
    assert "font-display:block" not in css and "font-display:swap" in css
    assert len(response.data) < len(CSS) / 10
    assert int(response.headers["Content-Length"]) == len(response.data)


def test_the_same_bundle_twice_is_the_same_bytes():
    app = Delivery(portal)
    first = Client(app).get("/webassets/base/x_main.css", headers={"Accept-Encoding": "gzip"}).data
    second = Client(app).get("/webassets/base/x_main.css", headers={"Accept-Encoding": "gzip"}).data
    assert first == second


def test_a_page_is_gzipped_but_not_cached_as_static():
    response = get("/dataset/")
    assert response.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(response.data).decode() == PAGE
    assert response.headers["Vary"] == "Cookie, Accept-Encoding"
    assert "max-age=31536000" not in response.headers.get("Cache-Control", "")


def test_a_browser_without_gzip_gets_plain_text():
    response = get("/dataset/", encoding=None)
    assert "Content-Encoding" not in response.headers
    assert response.data.decode() == PAGE


def test_a_tiny_answer_is_sent_as_it_is():
    response = get("/tiny")
    assert "Content-Encoding" not in response.headers and response.data == b"ok"


def test_a_download_is_streamed_untouched():
    response = get("/dataset/abc/resource/def/download/data.csv")
    assert "Content-Encoding" not in response.headers
    assert response.data.decode() == CSV


def test_an_unversioned_static_file_is_cached_for_a_week():
    response = get("/base/css/custom.css")
    assert response.headers["Cache-Control"] == "public, max-age=604800"
    assert "font-display:block" in gzip.decompress(response.data).decode().replace(" ", "").replace("\n", "")
