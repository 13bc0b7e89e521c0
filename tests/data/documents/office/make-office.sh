#!/bin/sh
# SPDX-License-Identifier: MIT
# Regenerates the LibreOffice and NeoMutt documents of tests/data/documents (see ../README.md) from
# the hand-written sources in this folder. Needs (Debian 12; NOT build or test dependencies: the
# outputs are committed): libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui
# python3-uno neomutt fonts-dejavu-core fonts-wqy-microhei fonts-tlwg-garuda-ttf fonts-lohit-deva zip.
# Run in this folder. Dates and LibreOffice's random ids make the bytes differ from run to run.
set -eu
here=$(pwd)
docs=$(cd .. && pwd)
tmp=$(mktemp -d)
export HOME="$tmp/home" TZ=UTC LC_ALL=C.UTF-8
mkdir -p "$HOME"
lo() { soffice --headless --convert-to "$@" 2>&1 | grep -v javaldx || true; }
# Writer: flat ODF → odt, then the odt → docx, pdf, epub (as a user would: save, export).
lo odt --outdir "$tmp" writer.fodt
for f in docx pdf epub; do lo "$f" --outdir "$tmp" "$tmp/writer.odt"; done
lo ods --outdir "$tmp" calc.fods && lo xlsx --outdir "$tmp" "$tmp/calc.ods"
lo odp --outdir "$tmp" impress.fodp && lo pptx --outdir "$tmp" "$tmp/impress.odp"
for f in odt docx pdf epub; do cp "$tmp/writer.$f" "$docs/lighthouse.$f"; done
cp "$tmp/calc.ods" "$docs/lighthouse.ods"; cp "$tmp/calc.xlsx" "$docs/lighthouse.xlsx"
cp "$tmp/impress.odp" "$docs/lighthouse.odp"; cp "$tmp/impress.pptx" "$docs/lighthouse.pptx"
# Encrypted: a PDF export with an open password; "Save with password" as ODF (UNO).
lo 'pdf:writer_pdf_Export:{"EncryptFile":{"type":"boolean","value":"true"},"DocumentOpenPassword":{"type":"string","value":"secret"}}' \
    --outdir "$tmp/enc" writer.fodt
cp "$tmp/enc/writer.pdf" "$docs/encrypted-lo.pdf"
soffice --headless --accept="socket,host=localhost,port=2002;urp;" >/dev/null 2>&1 &
(cd "$docs" && /usr/bin/python3 "$here/save-encrypted.py")
# One encrypted entry (Info-ZIP's traditional encryption, zip -P) in plain containers.
mkdir "$tmp/epub" "$tmp/docx"
(cd "$tmp/epub" && unzip -q "$docs/lighthouse.epub" && rm -f "$docs/encrypted-entry.epub" &&
    zip -q -X -0 "$docs/encrypted-entry.epub" mimetype &&
    zip -q -X -r "$docs/encrypted-entry.epub" META-INF OEBPS -x OEBPS/sections/section0001.xhtml &&
    zip -q -X -P secret "$docs/encrypted-entry.epub" OEBPS/sections/section0001.xhtml)
(cd "$tmp/docx" && unzip -q "$docs/lighthouse.docx" && rm -f "$docs/encrypted-entry.docx" &&
    zip -q -X -r "$docs/encrypted-entry.docx" . -x word/document.xml &&
    zip -q -X -P secret "$docs/encrypted-entry.docx" word/document.xml)
# Mail: NeoMutt in batch mode; its sendmail stores the message, its record (Fcc) is the mbox.
mkdir "$tmp/mail"
printf '#!/bin/sh\ncat > "%s/mail/sent-$(date +%%s%%N).eml"\n' "$tmp" > "$tmp/mail/store.sh"
chmod +x "$tmp/mail/store.sh"
cat > "$tmp/mail/muttrc" <<RC
set sendmail="$tmp/mail/store.sh"
set use_from=yes
set from="juergen@example.org"
set realname="Jürgen Müller"
set charset="utf-8"
set send_charset="us-ascii:utf-8"
set copy=yes
set record="$tmp/mail/sent.mbox"
set mbox_type=mbox
set hostname="example.org"
RC
cp "$docs/lighthouse.odt" "$tmp/mail/notes.odt"
to="Anna Ström <anna@example.org>"
printf 'The lighthouse on the northern cape was built in 1871.\nIts keeper wrote the weather into a blue notebook every evening.\n\nIm Winter fror der Hafen zu, und die Fischer blieben an Land.\n灯塔守护者每天晚上记录天气。\nقال الحارس: السلام عليكم يا أصدقائي.\n' |
    neomutt -n -F "$tmp/mail/muttrc" -s "Wetterbericht für den Leuchtturm 灯塔" -a "$tmp/mail/notes.odt" -- "$to"
printf 'הספינות חזרו לנמל בשלום.\nผู้ดูแลประภาคารจดบันทึกสภาพอากาศทุกเย็น\n' |
    neomutt -n -F "$tmp/mail/muttrc" -s "Re: Die Schiffe sind zurück" -- "$to"
printf 'प्रकाशस्तंभ का रक्षक हर शाम मौसम लिखता था।\n灯台守は毎晩、青いノートに天気を書きました。\n' |
    neomutt -n -F "$tmp/mail/muttrc" -s "灯台守の記録" -- "$to"
cp "$(ls "$tmp"/mail/sent-*.eml | head -n 1)" "$docs/neomutt.eml"
cp "$tmp/mail/sent.mbox" "$docs/neomutt.mbox"
chmod 644 "$docs"/neomutt.* "$docs"/lighthouse.* "$docs"/encrypted-*
rm -rf "$tmp"
../../../fuzz/make-extract-seeds.sh
