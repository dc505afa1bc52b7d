"""Reading e-mail messages: sender, recipients, date, body, attachments, the subject's TLP label, and
clear refusals for what cannot be read faithfully."""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage

import pytest

from certnet.core.errors import InvalidInput
from certnet.core.tlp import TLP
from certnet.incidents import mailparse


def message(**headers: str) -> EmailMessage:
    msg = EmailMessage()
    for name, value in {"From": "Ali Raza <Ali.Raza@Lahore.example>", **headers}.items():
        msg[name.replace("_", "-")] = value
    return msg


def refusal(raw: bytes) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        mailparse.parse(raw)
    return caught.value


def test_reads_headers_body_and_attachments():
    msg = message(
        To="Incident Desk <incident@punjab-cert.example>, other@x.example",
        Cc="cc@y.example",
        Subject="[TLP:GREEN]  Phishing   wave",
        Date="Mon, 02 Nov 2026 10:00:00 +0500",
        Message_ID="<abc.123@lahore.example>",
    )
    msg.set_content("Hello,\nwe see phishing.\n")
    msg.add_alternative("<p>Hello, <b>we see</b> phishing.</p>", subtype="html")
    msg.add_attachment(b"%PDF-1.7 \x00\x01", maintype="application", subtype="pdf", filename="héader.pdf")
    parsed = mailparse.parse(msg.as_bytes())
    assert parsed.from_address == "ali.raza@lahore.example"
    assert parsed.from_name == "Ali Raza"
    assert parsed.to == ("incident@punjab-cert.example", "other@x.example")
    assert parsed.cc == ("cc@y.example",)
    assert parsed.message_id == "<abc.123@lahore.example>"
    assert parsed.subject == "[TLP:GREEN] Phishing wave"
    assert parsed.title == "Phishing wave"
    assert parsed.tlp == TLP.GREEN
    assert parsed.sent_at == dt.datetime(2026, 11, 2, 5, 0, tzinfo=dt.UTC)
    assert parsed.body == "Hello,\nwe see phishing."
    assert [(a.filename, a.content_type, a.content) for a in parsed.attachments] == [
        ("héader.pdf", "application/pdf", b"%PDF-1.7 \x00\x01")
    ]


def test_html_only_body_becomes_plain_text_without_scripts():
    msg = message(Subject="html")
    msg.set_content(
        "<html><head><style>p{color:red}</style><script>alert(1)</script></head>"
        "<body><p>Servers &amp; laptops</p><div>encrypted<br>at 09:00</div></body></html>",
        subtype="html",
    )
    parsed = mailparse.parse(msg.as_bytes())
    assert parsed.body == "Servers & laptops\n\nencrypted\nat 09:00"
    assert parsed.attachments == ()


def test_forwarded_message_and_unnamed_parts_are_attachments():
    inner = message(Subject="You won a prize", From="prize@phish.example")
    inner.set_content("click here")
    outer = message(Subject="FW: phishing")
    outer.set_content("See the attached message.")
    outer.add_attachment(inner)
    outer.add_attachment(b"\x89PNG...", maintype="image", subtype="png")
    parsed = mailparse.parse(outer.as_bytes())
    names = [(a.filename, a.content_type) for a in parsed.attachments]
    assert names == [("attachment-1.eml", "message/rfc822"), ("attachment-2.png", "image/png")]
    assert b"Subject: You won a prize" in parsed.attachments[0].content
    assert parsed.attachments[1].content == b"\x89PNG..."


def test_missing_date_zone_is_utc_and_bad_date_is_none():
    naive = mailparse.parse(b"From: a@b.example\r\nDate: Mon, 02 Nov 2026 10:00:00 -0000\r\n\r\nx")
    assert naive.sent_at == dt.datetime(2026, 11, 2, 10, 0, tzinfo=dt.UTC)
    bad = mailparse.parse(b"From: a@b.example\r\nDate: yesterday-ish\r\n\r\nx")
    assert bad.sent_at is None


@pytest.mark.parametrize(
    ("subject", "expected"),
    [
        ("[TLP:AMBER] x", TLP.AMBER),
        ("tlp:amber+strict x", TLP.AMBER_STRICT),
        ("TLP: AMBER + STRICT", TLP.AMBER_STRICT),
        ("[TLP:WHITE] old label", TLP.CLEAR),
        ("Re: [TLP:RED] fwd [TLP:GREEN]", TLP.RED),  # several: the strictest
        ("ATLP:RED is not a label", None),
        ("no label", None),
    ],
)
def test_tlp_label_in_subject(subject, expected):
    assert mailparse.tlp_in_subject(subject) == expected


@pytest.mark.parametrize(
    ("raw", "loc", "words"),
    [
        (b"", "message", "empty"),
        (b"\x00\xff\xfe\x00 binary noise", "message", "not an e-mail message"),
        (b"just a line of text\nand another\n", "message", "not an e-mail message"),
        (b"Subject: hello\r\n\r\nbody", "From", "no From header"),
        (b"From: a@b.example, c@d.example\r\n\r\nx", "From", "names 2 addresses"),
        (b"From: a@b.example\r\nFrom: c@d.example\r\n\r\nx", "From", "2 From headers"),
        (b"From: not an address\r\n\r\nx", "From", "not an e-mail address"),
        (b"From: someone@localhost\r\n\r\nx", "From", "not an e-mail address"),
    ],
)
def test_refuses_what_is_not_a_readable_message(raw, loc, words):
    error = refusal(raw)
    assert [e.loc for e in error.errors] == [loc]
    assert words in error.detail


def test_refuses_a_truncated_multipart_message():
    msg = message(Subject="evidence")
    msg.set_content("see attached")
    msg.add_attachment(b"A" * 4000, maintype="application", subtype="octet-stream", filename="dump.bin")
    raw = msg.as_bytes()
    error = refusal(raw[: len(raw) - 200])
    assert "truncated" in error.detail


def test_refuses_an_attachment_whose_encoding_is_damaged():
    raw = (
        b"From: a@b.example\r\nMIME-Version: 1.0\r\n"
        b'Content-Type: multipart/mixed; boundary="XX"\r\n\r\n'
        b"--XX\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n"
        b"--XX\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n"
        b'Content-Disposition: attachment; filename="report.pdf"\r\n\r\nQUJD!!RA=\r\n--XX--\r\n'
    )
    error = refusal(raw)
    assert error.errors[0].loc == "attachments[0]"
    assert "'report.pdf' is damaged" in error.detail
