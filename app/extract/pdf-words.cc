// SPDX-License-Identifier: MIT
//
// poppler's text layout (TextOutputDev) as plain C data (pdf-words.h). Every exception stays in
// here. poppler's core API (libpoppler-private-dev), not poppler-cpp: one glyph standing for several
// letters (a lam-alef ligature) must be seen as one glyph, and only drawChar sees that.
#include "pdf-words.h"

#include <poppler/Error.h>
#include <poppler/GlobalParams.h>
#include <poppler/PDFDoc.h>
#include <poppler/Stream.h>
#include <poppler/TextOutputDev.h>
#include <unicode/uchar.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>

struct m3_pdf_doc {
    std::unique_ptr<PDFDoc> doc;
};

// poppler's own messages about damaged files: the caller reports the file's state.
static void quiet(ErrorCategory, Goffset, const char *) {}

// A page's text map in which every word reads in visual order (left to right), glyph by glyph.
// poppler builds words from glyphs drawn left to right, so a word of right-to-left letters holds
// them in visual order; but a ligature glyph's letters come from the font's ToUnicode map in
// logical order (LibreOffice's lam-alef: U+0644 U+0627). Reversed here, the word is visual
// throughout and pdf.c's inverse bidi gives the logical order back (pdftotext: "السالم" for السلام).
class VisualTextDev : public TextOutputDev
{
public:
    VisualTextDev() : TextOutputDev(nullptr, false, 0, false, false) { }
    void drawChar(GfxState *state, double x, double y, double dx, double dy, double originX, double originY, CharCode c,
                  int nBytes, const Unicode *u, int uLen) override
    {
        Unicode r[8];
        bool rtl = uLen > 1 && uLen <= 8;
        for (int i = 0; rtl && i < uLen; i++) {
            UCharDirection d = u_charDirection(UChar32(u[i]));
            rtl = d == U_RIGHT_TO_LEFT || d == U_RIGHT_TO_LEFT_ARABIC;
            r[uLen - 1 - i] = u[i];
        }
        TextOutputDev::drawChar(state, x, y, dx, dy, originX, originY, c, nBytes, rtl ? r : u, uLen);
    }
    // The same for a span whose /ActualText stands for its glyphs (cairo writes a lam-alef so):
    // right-to-left letters only, in logical order, reversed. UTF-16BE with its BOM.
    void beginActualText(GfxState *state, const GooString *text) override
    {
        const std::string &t = text->toStr();
        bool rtl = GooString::hasUnicodeMarker(t) && t.size() >= 6 && t.size() % 2 == 0;
        for (size_t i = 2; rtl && i < t.size(); i += 2) {
            UCharDirection d = u_charDirection(UChar32((unsigned char)t[i] << 8 | (unsigned char)t[i + 1]));
            rtl = d == U_RIGHT_TO_LEFT || d == U_RIGHT_TO_LEFT_ARABIC;  // surrogates are neither
        }
        if (!rtl) return TextOutputDev::beginActualText(state, text);
        std::string r = t.substr(0, 2);
        for (size_t i = t.size(); i > 2; i -= 2) r.append(t, i - 2, 2);
        GooString reversed(r);
        TextOutputDev::beginActualText(state, &reversed);
    }
};

int m3_pdf_open(const unsigned char *data, size_t size, m3_pdf_doc **out)
{
    *out = nullptr;
    try {
        // poppler's process-wide parameters and error callback, once (extractors may run in threads).
        static std::once_flag once;
        std::call_once(once, [] {
            globalParams = std::make_unique<GlobalParams>();
            setErrorCallback(quiet);
        });
        if (size > 0x7fffffff) return M3_PDF_DAMAGED;
        std::unique_ptr<m3_pdf_doc> d(new m3_pdf_doc);
        // The stream borrows the bytes (the caller keeps them); PDFDoc owns the stream.
        d->doc = std::make_unique<PDFDoc>(new MemStream(reinterpret_cast<const char *>(data), 0, Goffset(size), Object(objNull)));
        if (!d->doc->isOk()) return d->doc->getErrorCode() == errEncrypted ? M3_PDF_LOCKED : M3_PDF_DAMAGED;
        *out = d.release();
        return M3_PDF_OK;
    } catch (const std::bad_alloc &) {
        return M3_PDF_NOMEM;
    } catch (...) {
        return M3_PDF_DAMAGED;
    }
}

int m3_pdf_page_count(const m3_pdf_doc *doc) { return doc->doc->getNumPages(); }

int m3_pdf_page_words(m3_pdf_doc *doc, int i, m3_pdf_word **words, size_t *n)
{
    *words = nullptr;
    *n = 0;
    try {
        VisualTextDev dev;
        if (!dev.isOk()) return M3_PDF_NOMEM;
        // As poppler-cpp's text_list: 72 dpi (points), crop box, not printing.
        doc->doc->displayPage(&dev, i + 1, 72, 72, 0, false, false, false);
        std::unique_ptr<TextWordList> list = dev.makeWordList();
        int count = list ? list->getLength() : 0;
        if (count <= 0) return M3_PDF_OK;
        m3_pdf_word *w = static_cast<m3_pdf_word *>(std::calloc(size_t(count), sizeof *w));
        if (!w) return M3_PDF_NOMEM;
        size_t k = 0;
        for (int j = 0; j < count; j++) {
            const TextWord *word = list->get(j);
            std::unique_ptr<GooString> text(word->getText());
            const char *s = text ? text->c_str() : "";
            char *t = strdup(s);
            if (!t) {
                m3_pdf_words_free(w, k);
                return M3_PDF_NOMEM;
            }
            double x0, y0, x1, y1;
            word->getBBox(&x0, &y0, &x1, &y1);
            w[k++] = m3_pdf_word{x0, y0, x1, y1, t};
        }
        *words = w;
        *n = k;
        return M3_PDF_OK;
    } catch (const std::bad_alloc &) {
        return M3_PDF_NOMEM;
    } catch (...) {
        return M3_PDF_OK;  // an unreadable page: no text
    }
}

void m3_pdf_words_free(m3_pdf_word *words, size_t n)
{
    for (size_t i = 0; i < n; i++) std::free(words[i].text);
    std::free(words);
}

void m3_pdf_close(m3_pdf_doc *doc) { delete doc; }
