"""Collectors against a real HTTP server on loopback and real mailbox files."""

from __future__ import annotations

import gzip
import io
import mailbox
import threading
import time
import zipfile
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from certnet.feeds.collectors import CollectError, CollectLimits, collect_files, collect_http, collect_mailbox

REPORT = b'"timestamp","ip","port"\n"2026-11-20 10:00:00","198.51.100.7","3389"\n'


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/report":
            self._send(REPORT, disposition='attachment; filename="2026-11-20-scan_rdp-pakistan-geo.csv"')
        elif self.path == "/report.csv.gz":
            self._send(gzip.compress(REPORT))
        elif self.path == "/big":
            self._send(b"x" * 5000, length=False)
        elif self.path == "/declared-big":
            self._send(b"x" * 5000)
        elif self.path == "/slow":
            time.sleep(1.5)
            self._send(REPORT)
        else:
            self.send_error(404, "Not Found")

    def _send(self, body: bytes, disposition: str = "", length: bool = True) -> None:
        self.send_response(200)
        if disposition:
            self.send_header("Content-Disposition", disposition)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_a_download_is_named_as_the_server_names_it_and_unpacked(server, tmp_path):
    [path] = collect_http(f"{server}/report", tmp_path, CollectLimits())
    assert path.name == "2026-11-20-scan_rdp-pakistan-geo.csv"
    assert path.read_bytes() == REPORT
    [unpacked] = collect_http(f"{server}/report.csv.gz", tmp_path / "gz", CollectLimits())
    assert unpacked.name == "report.csv"
    assert unpacked.read_bytes() == REPORT


@pytest.mark.parametrize(
    ("path", "limits", "message"),
    [
        ("/missing", CollectLimits(), "the server answered 404 Not Found"),
        ("/big", CollectLimits(max_bytes=1000), "the body passed the limit of 1,000 bytes"),
        ("/declared-big", CollectLimits(max_bytes=1000), "5,000 bytes is more than the limit of 1,000"),
        ("/slow", CollectLimits(timeout_seconds=0.3), "timed out"),
    ],
)
def test_failed_downloads_say_why_and_leave_nothing_behind(server, tmp_path, path, limits, message):
    with pytest.raises(CollectError, match=message):
        collect_http(f"{server}{path}", tmp_path, limits)
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_only_http_urls_are_fetched(tmp_path):
    with pytest.raises(CollectError, match="not an http"):
        collect_http("file:///etc/passwd", tmp_path, CollectLimits())


def test_a_mailbox_export_gives_every_attachment_unpacked(tmp_path):
    box = mailbox.mbox(str(tmp_path / "reports.mbox"))
    first = EmailMessage()
    first["Subject"] = "Shadowserver reports"
    first.set_content("attached")
    first.add_attachment(
        REPORT, maintype="text", subtype="csv", filename="2026-11-20-scan_rdp-pakistan-geo.csv"
    )
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zipped:
        zipped.writestr("2026-11-20-scan_smb-pakistan-geo.csv", REPORT)
    second = EmailMessage()
    second["Subject"] = "more"
    second.set_content("zipped")
    second.add_attachment(archive.getvalue(), maintype="application", subtype="zip", filename="reports.zip")
    box.add(first)
    box.add(second)
    box.close()
    paths = collect_mailbox(str(tmp_path / "reports.mbox"), tmp_path / "spool")
    assert sorted(p.name for p in paths) == [
        "2026-11-20-scan_rdp-pakistan-geo.csv",
        "2026-11-20-scan_smb-pakistan-geo.csv",
    ]
    assert all(p.read_bytes() == REPORT for p in paths)


def test_an_empty_mailbox_or_a_missing_path_is_an_error(tmp_path):
    mailbox.mbox(str(tmp_path / "empty.mbox")).close()
    with pytest.raises(CollectError, match="no attachments"):
        collect_mailbox(str(tmp_path / "empty.mbox"), tmp_path / "spool")
    with pytest.raises(CollectError, match="no such"):
        collect_files(str(tmp_path / "nothing-here"))
