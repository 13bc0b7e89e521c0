// SPDX-License-Identifier: MIT
//
// poppler-cpp's text boxes as plain C data (pdf-words.h). Every exception stays in here.
#include "pdf-words.h"

#include <poppler/cpp/poppler-document.h>
#include <poppler/cpp/poppler-global.h>
#include <poppler/cpp/poppler-page.h>

#include <cstdlib>
#include <cstring>
#include <memory>
#include <new>

struct m3_pdf_doc {
    std::unique_ptr<poppler::document> doc;
};

static void quiet(const std::string &, void *) {}

int m3_pdf_open(const unsigned char *data, size_t size, m3_pdf_doc **out)
{
    *out = nullptr;
    try {
        // poppler's own messages about damaged files: the caller reports the file's state.
        poppler::set_debug_error_function(quiet, nullptr);
        if (size > 0x7fffffff) return M3_PDF_DAMAGED;
        std::unique_ptr<m3_pdf_doc> d(new m3_pdf_doc);
        d->doc.reset(poppler::document::load_from_raw_data(reinterpret_cast<const char *>(data), int(size)));
        if (!d->doc) return M3_PDF_DAMAGED;
        if (d->doc->is_locked()) return M3_PDF_LOCKED;
        *out = d.release();
        return M3_PDF_OK;
    } catch (const std::bad_alloc &) {
        return M3_PDF_NOMEM;
    } catch (...) {
        return M3_PDF_DAMAGED;
    }
}

int m3_pdf_page_count(const m3_pdf_doc *doc) { return doc->doc->pages(); }

int m3_pdf_page_words(m3_pdf_doc *doc, int i, m3_pdf_word **words, size_t *n)
{
    *words = nullptr;
    *n = 0;
    try {
        std::unique_ptr<poppler::page> page(doc->doc->create_page(i));
        if (!page) return M3_PDF_OK;
        std::vector<poppler::text_box> boxes = page->text_list();
        if (boxes.empty()) return M3_PDF_OK;
        m3_pdf_word *w = static_cast<m3_pdf_word *>(std::calloc(boxes.size(), sizeof *w));
        if (!w) return M3_PDF_NOMEM;
        size_t k = 0;
        for (const poppler::text_box &b : boxes) {
            poppler::byte_array u = b.text().to_utf8();
            char *t = static_cast<char *>(std::malloc(u.size() + 1));
            if (!t) {
                m3_pdf_words_free(w, k);
                return M3_PDF_NOMEM;
            }
            if (!u.empty()) std::memcpy(t, u.data(), u.size());
            t[u.size()] = 0;
            poppler::rectf r = b.bbox();
            w[k++] = m3_pdf_word{r.x(), r.y(), r.x() + r.width(), r.y() + r.height(), t};
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
