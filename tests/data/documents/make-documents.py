# SPDX-License-Identifier: MIT
# The documents of make-documents.sh that Python's own producers write: a spreadsheet (openpyxl,
# odfpy), mail (the email and mailbox modules: what many mail tools use), and the hostile files
# (zip bomb, XML entities, encrypted OpenDocument) made with zipfile.
import email.policy
import mailbox
import os
import zipfile
from email.message import EmailMessage

import openpyxl
from odf.draw import Frame, Page, TextBox
from odf.opendocument import OpenDocumentPresentation, OpenDocumentSpreadsheet
from odf.style import MasterPage, PageLayout
from odf.table import Table, TableCell, TableRow
from odf.text import P

SHEETS = {
    "Budget": [["Item", "Cost"], ["Lamp oil for the winter", 120], ["Blue notebooks", 8]],
    "Übersicht": [["灯塔守护者", "المنارة"], ["Total", 128]],
}

wb = openpyxl.Workbook()
wb.remove(wb.active)
for name, rows in SHEETS.items():
    ws = wb.create_sheet(name)
    for row in rows:
        ws.append(row)
wb.save("sample.xlsx")

ods = OpenDocumentSpreadsheet()
for name, rows in SHEETS.items():
    t = Table(name=name)
    for row in rows:
        tr = TableRow()
        for v in row:
            tc = TableCell(valuetype="float" if isinstance(v, int) else "string", value=v) if isinstance(v, int) else TableCell()
            tc.addElement(P(text=str(v)))
            tr.addElement(tc)
        t.addElement(tr)
    ods.spreadsheet.addElement(t)
ods.save("sample.ods")

# A presentation: one slide per chapter of source.md (the sentences of expected.txt), speaker
# notes left out by the extractor.
odp = OpenDocumentPresentation()
layout = PageLayout(name="L")
odp.automaticstyles.addElement(layout)
master = MasterPage(name="M", pagelayoutname=layout)
odp.masterstyles.addElement(master)
lines = open("expected.txt", encoding="utf-8").read().split("\n")
for title, sentences in [(lines[0], lines[1:5]), (lines[5], lines[6:9]), (lines[9], lines[10:14])]:
    page = Page(masterpagename=master)
    for text in [title] + sentences:
        frame = Frame(width="20cm", height="2cm", x="1cm", y="1cm")
        box = TextBox()
        box.addElement(P(text=text))
        frame.addElement(box)
        page.addElement(frame)
    odp.presentation.addElement(page)
odp.save("sample.odp")

body = open("expected.txt", encoding="utf-8").read().split("\n")
plain = "\n\n".join([" ".join(body[1:3]), " ".join(body[3:5])]) + "\n"
m = EmailMessage(policy=email.policy.SMTP)
m["From"] = "Jürgen Müller <juergen@example.org>"
m["To"] = "Keeper <keeper@example.org>"
m["Subject"] = "Wetterbericht für den Leuchtturm"
m["Date"] = "Tue, 02 Jan 2024 10:15:00 +0100"
m["Message-ID"] = "<lighthouse-1@example.org>"
m.set_content(plain, cte="quoted-printable")
m.add_alternative("<html><body><p>" + "</p><p>".join(body[1:5]) + "</p></body></html>", subtype="html")
m.add_attachment(open("sample.odt", "rb").read(), maintype="application",
                 subtype="vnd.oasis.opendocument.text", filename="notes.odt")
open("sample.eml", "wb").write(bytes(m))

if os.path.exists("sample.mbox"):
    os.remove("sample.mbox")  # mailbox appends
box = mailbox.mbox("sample.mbox", create=True)
box.lock()
for i, (subject, text, charset) in enumerate([
        ("Ice in the harbour", "The harbour froze over in January. The fishermen stayed ashore.\n", "utf-8"),
        ("Café au lait", "Der Kaffee war kalt, aber die Aussicht schön.\n", "iso-8859-1"),
        ("灯塔", "灯塔守护者每天晚上记录天气。\n", "utf-8")]):
    mm = EmailMessage()
    mm["From"] = "keeper@example.org"
    mm["To"] = "office@example.org"
    mm["Subject"] = subject
    mm["Date"] = "Wed, 0%d Jan 2024 08:00:00 +0000" % (i + 3)
    mm.set_content(text, charset=charset)
    box.add(mm)
box.flush()
box.unlock()

def ooxml(name, document_xml):
    with zipfile.ZipFile(name, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"/>')
        z.writestr("word/document.xml", document_xml)

W = 'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
# 64 MiB of text that deflates about 1000:1.
ooxml("bomb.docx", '<w:document %s><w:body><w:p><w:r><w:t>' % W + "a" * (64 << 20) + "</w:t></w:r></w:p></w:body></w:document>")
# External entity (a file) and exponential internal entities: neither may be expanded.
laughs = '<!ENTITY l0 "lol">' + "".join('<!ENTITY l%d "&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;&l%d;">' % ((i,) + (i - 1,) * 10) for i in range(1, 10))
ooxml("entities.docx", '<?xml version="1.0"?><!DOCTYPE w:document [<!ENTITY ext SYSTEM "file:///etc/passwd">'
      '<!ENTITY small "inner">]><w:document %s><w:body><w:p><w:r><w:t>before &ext; &small; after</w:t></w:r></w:p>'
      '</w:body></w:document>' % W)
ooxml("laughs.docx", '<?xml version="1.0"?><!DOCTYPE w:document [%s]>'
      '<w:document %s><w:body><w:p><w:r><w:t>before &l9; after</w:t></w:r></w:p></w:body></w:document>' % (laughs, W))
# A password-protected OpenDocument file as LibreOffice writes it: the parts are encrypted and the
# manifest says how (only the manifest matters to the extractor).
with zipfile.ZipFile("encrypted.odt", "w") as z:
    z.writestr("mimetype", "application/vnd.oasis.opendocument.text")
    z.writestr("content.xml", bytes(range(256)) * 4)
    z.writestr("META-INF/manifest.xml", '<?xml version="1.0" encoding="UTF-8"?><manifest:manifest '
               'xmlns:manifest="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0" manifest:version="1.2">'
               '<manifest:file-entry manifest:full-path="content.xml" manifest:media-type="text/xml" manifest:size="1024">'
               '<manifest:encryption-data manifest:checksum-type="urn:oasis:names:tc:opendocument:xmlns:manifest:1.0#sha256-1k" '
               'manifest:checksum="AAAA"><manifest:algorithm manifest:algorithm-name="http://www.w3.org/2001/04/xmlenc#aes256-cbc" '
               'manifest:initialisation-vector="AAAA"/></manifest:encryption-data></manifest:file-entry></manifest:manifest>')
