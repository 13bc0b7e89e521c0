# SPDX-License-Identifier: MIT
# Saves writer.fodt as a password-protected ODF file (encrypted-lo.odt, in the current folder)
# through LibreOffice's UNO API, as "File > Save with password" does. Run by make-office.sh with
# LibreOffice listening: soffice --headless --accept="socket,host=localhost,port=2002;urp;".
# (The same call with the "MS Word 2007 XML" filter writes a plain, unencrypted docx in
# LibreOffice 7.4 headless: the encrypted OOXML case is tested with a hand-made OLE file.)
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
src = uno.systemPathToFileUrl(os.path.join(os.path.dirname(os.path.abspath(__file__)), "writer.fodt"))
doc = desktop.loadComponentFromURL(src, "_blank", 0, (prop("Hidden", True),))
doc.storeToURL(uno.systemPathToFileUrl(os.path.abspath("encrypted-lo.odt")),
               (prop("FilterName", "writer8"), prop("Password", "secret")))
doc.close(True)
desktop.terminate()
