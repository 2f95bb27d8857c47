"""`archivekeeper report` on a real archive, through the installed CLI: its upcoming items are
`plan --json`'s, files are private and old ones pruned, a distrusted clock announces and prunes
nothing, steps since the last report are listed; `--send` through a real SMTP server on
127.0.0.1 (aiosmtpd): the message parsed, the server down, STARTTLS with a self-signed
certificate and a login."""

from __future__ import annotations

import base64
import email
import email.policy
import io
import json
import os
import re
import socket
import sqlite3
import ssl
import stat
import subprocess
import unicodedata
from datetime import date, timedelta

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult
from conftest import OLD, Studio, at

NFD = "Ma\u0308kela Mikko"
NAMES = ["Mäkinen Anna", NFD, "<script>alert(1)", "Ylönen Åsa"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def config(root, port: int = 25, mail_extra: str = "") -> str:
    return f"""\
rules:
  - {{name: old-shoots, delete_after: 5 years}}
  - {{name: keep-one-year, keep_for: 1 year}}
safety:
  notice_period: 14 days
  max_fraction_per_volume: 1.0
report:
  dir: {root}/reports
  keep: 4 weeks
  email: {{to: [owner@studio.example], from: archivekeeper@studio.example, host: 127.0.0.1,
          port: {port}{mail_extra}}}
"""


@pytest.fixture
def archive(tmp_path):
    s = Studio(tmp_path, volumes=("studio", "backup-1"), removable=("backup-1",),
               extra=config(tmp_path))
    s.init_volumes()
    for i, name in enumerate(NAMES):
        s.shoot("studio", f"2019-05-{10 + i:02d} {name}", mtime=OLD)
    s.shoot("backup-1", "2019-05-10 Mäkinen Anna", mtime=OLD)
    s.shoot("studio", f"{date.today().isoformat()} Fresh Fanni")  # kept, one copy
    s.ok("scan")
    return s


def reports(s: Studio) -> dict[str, str]:
    return {p.name: p.read_text(encoding="utf-8") for p in (s.root / "reports").iterdir()}


def report_doc(s: Studio) -> dict:
    (name,) = [n for n in reports(s) if n.endswith(".json")]
    return json.loads(reports(s)[name])


def test_the_reports_upcoming_items_are_plan_jsons_on_the_same_index_and_date(archive):
    result = archive.cli("report")
    assert result.returncode == 0, result.stderr
    week = date.today().isocalendar()
    stem = f"report-{week[0]}-W{week[1]:02d}"
    assert result.stdout.split() == [str(archive.root / "reports" / f"{stem}.{s}")
                                     for s in ("html", "txt", "json")]
    doc = report_doc(archive)
    listed = [{k: v for k, v in i.items() if k != "reason"}
              for g in doc["upcoming"]["groups"] for i in g["items"]]
    plan = archive.json("plan")
    expected = [i for i in plan["items"] if i["status"] != "blocked"]
    assert len(listed) == len(NAMES) + 1  # + the backup copy
    assert sorted(listed, key=lambda i: i["key"]) == sorted(expected, key=lambda i: i["key"])
    assert all(i["announced_at"] for i in listed)  # the report announced them
    # the scan reads customers as NFC; the path is the folder's exact text, NFD kept
    assert {i["customer"] for i in listed} == {unicodedata.normalize("NFC", n) for n in NAMES}
    assert f"2019-05-11 {NFD}" in {i["path"] for i in listed}
    (single,) = doc["backup_coverage"]["single_copy"]
    assert single["customer"] == "Fresh Fanni"


def test_stored_reports_are_private_and_older_ones_pruned(archive):
    folder = archive.root / "reports"
    folder.mkdir(mode=0o755)
    today = date.today()
    old, recent = today - timedelta(weeks=6), today - timedelta(weeks=3)
    names = {}
    for label, day in (("old", old), ("recent", recent)):
        y, w, _ = day.isocalendar()
        names[label] = f"report-{y}-W{w:02d}.txt"
        (folder / names[label]).write_text("x")
    (folder / "notes.txt").write_text("mine")
    assert archive.cli("report").returncode == 0
    left = set(os.listdir(folder))
    assert names["old"] not in left and {names["recent"], "notes.txt"} <= left
    assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700
    for name in left - {names["recent"], "notes.txt"}:
        assert stat.S_IMODE(os.stat(folder / name).st_mode) == 0o600, name


def test_out_writes_elsewhere_and_prunes_nothing_there(archive, tmp_path):
    out = tmp_path / "elsewhere"
    out.mkdir()
    (out / "report-2001-W01.txt").write_text("an old one the owner keeps here")
    assert archive.cli("report", "--out", str(out)).returncode == 0
    assert len(list(out.glob("report-*"))) == 4 and not (archive.root / "reports").exists()


# was (found in review): --out made the owner's own folder 0700, locking others out of it
def test_out_leaves_the_mode_of_the_owners_folder_alone(archive, tmp_path):
    out = tmp_path / "shared"
    out.mkdir(mode=0o755)
    out.chmod(0o755)
    assert archive.cli("report", "--out", str(out)).returncode == 0
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o755
    assert {stat.S_IMODE(p.stat().st_mode) for p in out.glob("report-*")} == {0o600}


# was (found in review): a password_file that is not UTF-8 was an internal error, naming nothing
def test_a_password_file_that_is_not_text_is_named(archive, tmp_path):
    secret = tmp_path / "smtp-password"
    secret.write_bytes(b"\xff\xfe")
    secret.chmod(0o600)
    archive.write_config(config(archive.root, free_port(),
                                f", username: studio, password_file: {secret}"))
    result = archive.cli("report", "--send")
    assert result.returncode == 1 and "internal error" not in result.stderr
    assert f"{secret}: the SMTP password_file is not UTF-8 text" in result.stderr


def test_out_inside_a_volume_is_refused(archive):
    result = archive.cli("report", "--out", str(archive.volumes["studio"] / "reports"))
    assert result.returncode == 2 and "is inside volume studio" in result.stderr
    assert not (archive.volumes["studio"] / "reports").exists()


def test_on_a_distrusted_clock_the_report_announces_and_prunes_nothing(archive):
    folder = archive.root / "reports"
    folder.mkdir()
    (folder / "report-2001-W01.txt").write_text("x")
    back = at(date.today() - timedelta(days=3))  # the clock went back three days
    result = archive.cli("report", env=back)
    assert result.returncode == 0, result.stderr
    assert "nothing was announced" in result.stderr
    assert (folder / "report-2001-W01.txt").exists()
    with sqlite3.connect(archive.state / "index.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM announcements").fetchone()[0] == 0
    doc = report_doc(archive)
    assert doc["summary"].startswith("The clock is not trusted")
    assert all(i["earliest_deletion"] is None
               for g in doc["upcoming"]["groups"] for i in g["items"])


def test_the_next_report_lists_what_was_deleted_since_the_last_one(archive):
    assert archive.cli("report").returncode == 0
    later = at(date.today() + timedelta(days=15))
    assert archive.cli("apply", env=later).returncode == 0
    assert archive.cli("report", env=later).returncode == 0
    trashed = report_doc_of_week(archive, date.today() + timedelta(days=15))["deleted"]
    assert trashed["totals"]["trashed"]["items"] == len(NAMES) + 1
    assert trashed["totals"]["trashed"]["bytes"] == (len(NAMES) + 1) * 400
    # a shoot whose files all went to trash has left the index: its customer's key is shown
    assert {d["customer"] for d in trashed["trashed"]} >= {"mäkinen anna", "ylönen åsa"}
    assert archive.cli("report", env=later).returncode == 0  # nothing since that one
    again = report_doc_of_week(archive, date.today() + timedelta(days=15))["deleted"]
    assert again["totals"]["trashed"]["items"] == 0


def report_doc_of_week(s: Studio, day: date) -> dict:
    y, w, _ = day.isocalendar()
    return json.loads((s.root / "reports" / f"report-{y}-W{w:02d}.json").read_text())


# -- mail ---------------------------------------------------------------------------------------
class Inbox:
    def __init__(self):
        self.messages = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope, email.message_from_bytes(
            envelope.content, policy=email.policy.default)))
        return "250 OK"


@pytest.fixture
def smtp():
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller, inbox
    controller.stop()


def test_send_mails_text_and_html_alternatives_with_names_intact(archive, smtp):
    controller, inbox = smtp
    archive.write_config(config(archive.root, controller.port))
    result = archive.cli("report", "--send")
    assert result.returncode == 0, result.stderr
    (envelope, msg), = inbox.messages
    assert envelope.rcpt_tos == ["owner@studio.example"]
    week = date.today().isocalendar()[1]
    assert msg["Subject"] == f"archivekeeper: {len(NAMES) + 1} shoots to be deleted (week {week})"
    assert msg["From"] == "archivekeeper@studio.example" and msg["Date"] is not None
    assert msg["Message-ID"].endswith("@studio.example>")
    assert msg.get_content_type() == "multipart/alternative"
    plain, html = msg.iter_parts()
    assert (plain.get_content_type(), html.get_content_type()) == ("text/plain", "text/html")
    for name in ("Mäkinen Anna", NFD, "Ylönen Åsa"):
        assert name in plain.get_content() and name in html.get_content()
    assert "<script>alert(1)" in plain.get_content()
    assert "&lt;script&gt;alert(1)" in html.get_content()
    assert "<script>" not in html.get_content()
    assert not envelope.content.decode("ascii").count("\n.\n")  # 7-bit safe transfer encoding
    stored = reports(archive)
    assert plain.get_content().replace("\r\n", "\n") == next(
        v for k, v in stored.items() if k.endswith(".txt"))


def test_a_server_down_leaves_the_report_written_exits_1_and_the_next_report_says_so(archive,
                                                                                    smtp):
    archive.write_config(config(archive.root, free_port()))  # nothing listens there
    result = archive.cli("report", "--send")
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()[-1:]
    assert line.startswith("archivekeeper: the report was written but not sent: mail via "
                           "127.0.0.1:") and "refused" in line
    assert len(reports(archive)) == 3
    controller, inbox = smtp
    archive.write_config(config(archive.root, controller.port))
    assert archive.cli("report", "--send").returncode == 0
    (_, msg), = inbox.messages
    problems = [p["text"] for p in report_doc(archive)["problems"]]
    assert any("was not delivered" in p and "refused" in p for p in problems), problems
    assert "was not delivered" in next(msg.iter_parts()).get_content()
    assert archive.cli("report").returncode == 0  # delivered since: no longer a problem
    assert not any("not delivered" in p["text"] for p in report_doc(archive)["problems"])


def test_send_without_report_email_is_a_usage_error_before_anything_is_written(tmp_path):
    s = Studio(tmp_path, extra=f"report: {{dir: {tmp_path}/reports}}\n")
    s.init_volumes()
    result = s.cli("report", "--send")
    assert result.returncode == 2 and "report.email is not configured" in result.stderr
    assert not (tmp_path / "reports").exists()


@pytest.fixture
def tls_files(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout",
                    str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
    return key, cert


def test_starttls_with_a_self_signed_certificate_and_login(archive, tls_files, tmp_path):
    key, cert = tls_files
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    logins = []

    def authenticate(server, session, envelope, mechanism, auth_data):
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == "sekret-ä".encode())

    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=free_port(), tls_context=context,
                            require_starttls=True, authenticator=authenticate,
                            auth_required=True)
    controller.start()
    try:
        secret = tmp_path / "smtp-password"
        secret.write_text("sekret-ä\n", encoding="utf-8")
        secret.chmod(0o644)
        archive.write_config(config(archive.root, controller.port, (
            f", starttls: true, username: studio, password_file: {secret}")))
        trusting = {"SSL_CERT_FILE": str(cert)}
        refused = archive.cli("report", "--send", env=trusting)
        assert refused.returncode == 1 and "may be read by others" in refused.stderr
        secret.chmod(0o600)
        untrusted = archive.cli("report", "--send")  # the certificate is nobody's
        assert untrusted.returncode == 1 and "CERTIFICATE_VERIFY_FAILED" in untrusted.stderr
        sent = archive.cli("report", "--send", env=trusting)
        assert sent.returncode == 0, sent.stderr
    finally:
        controller.stop()
    assert logins == [(b"studio", "sekret-ä".encode())]
    (_, msg), = inbox.messages
    assert msg.get_content_type() == "multipart/alternative"


def test_a_refused_run_is_named_in_the_next_report(tmp_path):
    s = Studio(tmp_path, extra=f"""\
rules:
  - {{name: old-shoots, delete_after: 5 years}}
safety: {{notice_period: 0 days, max_files_per_run: 1, max_fraction_per_volume: 1.0}}
report: {{dir: {tmp_path}/reports}}
""")
    s.init_volumes()
    s.shoot("studio", "2019-05-12 Mäkinen Anna", mtime=OLD)
    s.ok("scan")
    assert s.cli("apply").returncode == 3
    assert s.cli("report").returncode == 0
    problems = [p["text"] for p in report_doc(s)["problems"]]
    assert any(p.startswith("apply was refused on ") and "max_files_per_run 1" in p
               for p in problems), problems
    assert "apply was refused" in next(v for k, v in reports(s).items() if k.endswith(".txt"))


def test_scan_errors_are_named_in_the_report(tmp_path):
    from integration.test_scan import _deep_chain, _remove_chain

    s = Studio(tmp_path, extra=f"report: {{dir: {tmp_path}/reports}}\n")
    s.init_volumes()
    shoot = s.shoot("studio", "2024-05-12 Deep Customer")
    _deep_chain(str(shoot), 2100)  # past PATH_MAX: unreadable, a scan error
    try:
        s.ok("scan")
        assert s.cli("report").returncode == 0
    finally:
        _remove_chain(str(shoot))
    (problem,) = [p for p in report_doc(s)["problems"] if p["kind"] == "scan"]
    assert problem["text"].startswith("the last scan of volume studio (")
    assert "met 1 error" in problem["text"] and "incomplete and kept" in problem["text"]


def jpeg(width: int, height: int, orientation: int | None = None) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    image = Image.new("RGB", (width, height), (200, 30, 30))
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    image.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def test_thumbnails_when_chosen_small_upright_inline_and_never_fatal(tmp_path):
    from PIL import Image

    s = Studio(tmp_path, extra=config(tmp_path))
    s.init_volumes()
    # 400 x 200 stored, EXIF orientation 6: a portrait 200 x 400 when shown upright
    s.shoot("studio", "2019-05-10 Mäkinen Anna", {"JPEG/IMG_1.jpg": jpeg(400, 200, 6),
                                                   "RAW/IMG_1.CR2": b"r" * 300}, mtime=OLD)
    s.shoot("studio", "2019-05-11 Broken Bertta", {"JPEG/IMG_1.jpg": b"\xff\xd8 not a jpeg"},
            mtime=OLD)
    linked = s.shoot("studio", "2019-05-12 Linked Liisa", {"JPEG/IMG_1.jpg": jpeg(50, 50)},
                     mtime=OLD)
    s.ok("scan")
    # after the scan, its JPEG folder becomes a symlink to a folder outside the volume
    outside = tmp_path / "outside"
    (outside / "JPEG").mkdir(parents=True)
    (outside / "JPEG" / "IMG_1.jpg").write_bytes(jpeg(60, 60))
    (linked / "JPEG" / "IMG_1.jpg").unlink()
    (linked / "JPEG").rmdir()
    (linked / "JPEG").symlink_to(outside / "JPEG")

    def pictures() -> list[bytes]:
        (page,) = [v for k, v in reports(s).items() if k.endswith(".html")]
        return [base64.b64decode(m) for m in re.findall(
            r'<img class="thumb" alt="" src="data:image/jpeg;base64,([A-Za-z0-9+/=]+)"', page)]

    assert s.cli("report").returncode == 0
    assert pictures() == []  # off by default: no customer image in a mailbox unless chosen
    s.write_config(config(tmp_path).replace("  keep: 4 weeks\n",
                                            "  keep: 4 weeks\n  thumbnails: true\n"))
    result = s.cli("report")
    assert result.returncode == 0, result.stderr
    (picture,) = pictures()  # the broken one skipped, the symlink not followed
    with Image.open(io.BytesIO(picture)) as image:
        assert image.size == (48, 96)
    assert "data:image" not in next(v for k, v in reports(s).items() if k.endswith(".json"))
