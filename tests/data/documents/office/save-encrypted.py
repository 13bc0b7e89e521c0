# SPDX-License-Identifier: MIT
# Saves office/writer.fodt as a password-protected ODF file and an encrypted OOXML file through
# LibreOffice's UNO API (as "File > Save with password" does). Run by make-documents.sh with
# LibreOffice listening: soffice --headless --accept="socket,host=localhost,port=2002;urp;".
import os, sys, time
import uno
from com.sun.star.beans import PropertyValue

def prop(name, value):
    p = PropertyValue()
    p.Name, p.Value = name, value
    return p

local = uno.getComponentContext()
resolver = local.ServiceManager.createInstanceWithContext("com.sun.star.bridge.UnoUrlResolver", local)
for _ in range(60):
    try:
        ctx = resolver.resolve("uno:socket,host=localhost,port=2002;urp;StarOffice.ComponentContext")
        break
    except Exception:
        time.sleep(0.5)
desktop = ctx.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)
src = uno.systemPathToFileUrl(os.path.abspath("office/writer.fodt"))
doc = desktop.loadComponentFromURL(src, "_blank", 0, (prop("Hidden", True),))
for name, filt in (("encrypted-lo.odt", "writer8"), ("encrypted-lo.docx", "MS Word 2007 XML")):
    doc.storeToURL(uno.systemPathToFileUrl(os.path.abspath(name)),
                   (prop("FilterName", filt), prop("Password", "secret")))
doc.close(True)
desktop.terminate()
