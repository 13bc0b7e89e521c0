// SPDX-License-Identifier: MIT
//
// The document extractors (app/extract/docs.h) on the corpus tests/data/documents (real files from
// pandoc, pango/cairo, qpdf, openpyxl, odfpy, Python's email and mailbox: see its README), each
// run twice: in this process and in the sandboxed helper under the real seccomp filter and limits
// (this program is its own helper, run with "helper"). The test checks:
//   - both give the same text, places and extractor;
//   - cross-format: the sentences of expected.txt appear in the same order in every format's
//     text after white-space normalisation (the PDF: the pages it holds), CJK without stray
//     spaces, Arabic and Hebrew in logical order;
//   - places: pages, slides, sheets, chapters, messages, attachments, at the right offsets, and
//     chunks located by the place they start in;
//   - flat OpenDocument (fodt, fods, fodp: one XML file) reads as its package does: the same text,
//     places, header and notes, no markup, no metadata or settings; found by its root element too;
//   - hostile files end in a clear per-file state and never crash the helper: encrypted PDF,
//     OpenDocument and OOXML → "skipped: encrypted"; zip and gzip bombs → limit; XML external and
//     exponential entities never expanded; deep nesting; every file truncated at several lengths.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "extract/docs.h"
#include "extract/sandbox.h"
#include "tokenizer/tokenizer.h"

static int failures;
#define CHECK(cond, ...)                                          \
    do {                                                          \
        if (!(cond)) {                                            \
            fprintf(stderr, "%s:%d: FAIL: ", __FILE__, __LINE__); \
            fprintf(stderr, __VA_ARGS__);                         \
            fputc('\n', stderr);                                  \
            failures++;                                           \
        }                                                         \
    } while (0)

static char dir[512];
static m3_sandbox *sb;

static unsigned char *slurp(const char *name, size_t *size)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "cannot open %s\n", path);
        exit(1);
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *d = malloc((size_t)n + 1);
    if (fread(d, 1, (size_t)n, f) != (size_t)n) exit(1);
    fclose(f);
    d[n] = 0;
    *size = (size_t)n;
    return d;
}

// In-process and sandboxed; both results must agree. Returns the in-process status; *doc holds its
// text (cleared by the caller) and err its message.
static m3_status extract_both(const char *name, const unsigned char *data, size_t size, m3_extracted *doc,
                              m3_error *err)
{
    memset(doc, 0, sizeof *doc);
    *err = (m3_error){0};
    const m3_extractor *ex = m3_extract_find(name, data, size < 4096 ? size : 4096);
    m3_status s = ex ? ex->extract(data, size, name, doc, err) : M3_STATUS_UNSUPPORTED;
    m3_extracted sd;
    m3_error se = {0};
    m3_extractor_id who;
    pid_t before = m3_sandbox_get_pid(sb);
    m3_status ss = m3_sandbox_extract(sb, name, data, size, &sd, &who, &se);
    CHECK(ss == s, "%s: in-process %s (%s), sandboxed %s (%s)", name, m3_status_name(s), err->message,
          m3_status_name(ss), se.message);
    // The helper survived (a crash or a forbidden call would have ended it); an exhausted heap is
    // the one case where it is replaced on purpose.
    CHECK(ss == M3_STATUS_NOMEM || m3_sandbox_get_pid(sb) == before, "%s: the helper died (%s)", name, se.message);
    if (s == M3_STATUS_OK && ss == M3_STATUS_OK) {
        CHECK(sd.len == doc->len && !memcmp(sd.text, doc->text, doc->len), "%s: sandboxed text differs", name);
        CHECK(sd.n_marks == doc->n_marks &&
                  (!sd.n_marks || !memcmp(sd.marks, doc->marks, sd.n_marks * sizeof *sd.marks)),
              "%s: sandboxed places differ", name);
        CHECK(sd.derived && !strcmp(who.name, ex->name) && who.version == ex->version, "%s: extractor %s v%u", name,
              who.name, who.version);
    } else if (s != M3_STATUS_OK) {
        CHECK(!strncmp(se.message, name, strlen(name)), "%s: the error does not name the file: %s", name, se.message);
    }
    m3_extracted_clear(&sd);
    return s;
}

// White space runs to one space.
static char *squeeze(const char *s, size_t n)
{
    char *o = malloc(n + 1);
    size_t k = 0;
    bool sp = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == ' ' || c == '\n' || c == '\t' || c == '\r') {
            sp = k > 0;
            continue;
        }
        if (sp) o[k++] = ' ';
        sp = false;
        o[k++] = c;
    }
    o[k] = 0;
    return o;
}

// The first n_lines sentences of expected.txt appear in order in the text.
static void check_sentences(const char *name, const m3_extracted *doc, size_t n_lines)
{
    size_t size;
    char *exp = (char *)slurp("expected.txt", &size);
    char *text = squeeze(doc->text, doc->len);
    const char *at = text;
    size_t line = 0;
    for (char *l = strtok(exp, "\n"); l && line < n_lines; l = strtok(NULL, "\n"), line++) {
        const char *hit = strstr(at, l);
        CHECK(hit, "%s: sentence %zu '%s' missing or out of order", name, line + 1, l);
        if (hit) at = hit + strlen(l);
    }
    CHECK(line == n_lines, "%s: expected.txt has %zu lines", name, line);
    free(text);
    free(exp);
}

// The lines of expected (a file of tests/data/documents) appear in order in the text after white
// space normalisation, except the lines numbered in skip (",1,25," : 1-based), which a format does
// not hold or holds elsewhere (the caller checks them apart).
static void check_order(const char *name, const m3_extracted *doc, const char *expected, const char *skip)
{
    size_t size;
    char *exp = (char *)slurp(expected, &size);
    char *text = squeeze(doc->text, doc->len);
    const char *at = text;
    size_t line = 0, checked = 0;
    for (char *l = strtok(exp, "\n"); l; l = strtok(NULL, "\n")) {
        char num[16];
        snprintf(num, sizeof num, ",%zu,", ++line);
        if (skip && strstr(skip, num)) continue;
        const char *hit = strstr(at, l);
        CHECK(hit, "%s: line %zu of %s '%s' missing or out of order", name, line, expected, l);
        if (hit) at = hit + strlen(l), checked++;
    }
    CHECK(checked > 5, "%s: %zu lines of %s checked", name, checked, expected);
    free(text);
    free(exp);
}

static const char *place_at(const m3_extracted *doc, const char *needle)
{
    const char *p = strstr(doc->text, needle);
    return p ? m3_extracted_location(doc, (size_t)(p - doc->text)) : "(text missing)";
}

static void check_place(const char *name, const m3_extracted *doc, const char *needle, const char *want)
{
    const char *got = place_at(doc, needle);
    CHECK(got && !strcmp(got, want), "%s: '%s' is in place '%s', expected '%s'", name, needle, got ? got : "(none)", want);
}

static void test_corpus(void)
{
    static const struct {
        const char *name;
        size_t sentences;  // of expected.txt, in order
    } files[] = {
        {"sample.docx", 14}, {"sample.odt", 14}, {"sample.epub", 14}, {"sample.html", 14},
        {"sample.rtf", 14},  {"sample.pptx", 14}, {"sample.txt.gz", 14},
        {"sample.pdf", 14},  {"sample.odp", 14},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        size_t size;
        unsigned char *d = slurp(files[i].name, &size);
        m3_extracted doc;
        m3_error err;
        m3_status s = extract_both(files[i].name, d, size, &doc, &err);
        CHECK(s == M3_STATUS_OK, "%s: %s", files[i].name, err.message);
        if (s == M3_STATUS_OK) check_sentences(files[i].name, &doc, files[i].sentences);
        if (s == M3_STATUS_OK && !strcmp(files[i].name, "sample.pdf")) {
            check_place("sample.pdf", &doc, "northern cape", "page 1");
            check_place("sample.pdf", &doc, "灯台守は", "page 2");
            check_place("sample.pdf", &doc, "הספינות חזרו לנמל בשלום.", "page 3");
            // Right to left in logical order, the lam-alef ligature as lam then alef, no spaces
            // inside words (pdftotext: "ع لى", "الس الم"), the number and the full stop in place.
            CHECK(strstr(doc.text, "بنيت المنارة على الرأس الشمالي في عام ١٨٧١. قال الحارس:"),
                  "sample.pdf: Arabic line: %s", doc.text);
            // The heading on page 2 is its own paragraph, not glued to the next line.
            CHECK(strstr(doc.text, "\n灯塔\n灯塔守护者"), "sample.pdf: page 2's heading not a paragraph");
        }
        if (s == M3_STATUS_OK && !strcmp(files[i].name, "sample.epub")) {
            check_place("sample.epub", &doc, "northern cape", "chapter 2");
            check_place("sample.epub", &doc, "السلام", "chapter 4");
        }
        if (s == M3_STATUS_OK && !strcmp(files[i].name, "sample.odp")) {
            check_place("sample.odp", &doc, "northern cape", "slide 1");
            check_place("sample.odp", &doc, "שומר", "slide 3");
        }
        if (s == M3_STATUS_OK && !strcmp(files[i].name, "sample.pptx")) {
            check_place("sample.pptx", &doc, "灯台守は", "slide 3");
            check_place("sample.pptx", &doc, "שומר", "slide 4");
        }
        m3_extracted_clear(&doc);
        free(d);
    }
}

// A corpus file through both paths; the caller clears *doc (and frees nothing else).
static m3_status extract_file(const char *name, m3_extracted *doc)
{
    size_t size;
    unsigned char *d = slurp(name, &size);
    m3_error err;
    m3_status s = extract_both(name, d, size, doc, &err);
    CHECK(s == M3_STATUS_OK, "%s: %s", name, err.message);
    free(d);
    return s;
}

// LibreOffice's files made from one source (office/writer.fodt; office/expected.txt is its text:
// the header first, footnotes after the body, the footer last, as docs/formats.md says), its
// slides with speaker notes, and NeoMutt's mail carrying the text document as an attachment.
static void test_real_corpus(void)
{
    static const struct {
        const char *name, *expected, *skip;
    } files[] = {
        {"lighthouse.odt", "office/expected.txt", NULL},
        {"lighthouse.docx", "office/expected.txt", NULL},
        // LibreOffice's EPUB has no header or footer, and the footnote ends its chapter.
        {"lighthouse.epub", "office/expected.txt", ",1,25,26,"},
        // Right-to-left words as runs of glyphs in visual order, a lam-alef ligature glyph among
        // them (pango's sample.pdf: one glyph a word, the ligature as /ActualText); Thai and
        // Devanagari marks through /ActualText spans. The header and footer on each page.
        {"lighthouse.pdf", "office/expected.txt", NULL},
        {"lighthouse.odp", "office/slides-expected.txt", NULL},
        {"lighthouse.pptx", "office/slides-expected.txt", NULL},
        {"neomutt.eml", "office/expected.txt", NULL},  // the attachment notes.odt
        // The sources themselves, LibreOffice's flat files: read as the packages are.
        {"office/writer.fodt", "office/expected.txt", NULL},
        {"office/impress.fodp", "office/slides-expected.txt", NULL},
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        m3_extracted doc;
        m3_status s = extract_file(files[i].name, &doc);
        if (s == M3_STATUS_OK) check_order(files[i].name, &doc, files[i].expected, files[i].skip);
        if (s == M3_STATUS_OK &&
            (strstr(files[i].name, ".odt") || strstr(files[i].name, ".fodt") || strstr(files[i].name, ".docx"))) {
            // The header once, and the footnote's citation mark not glued into the sentence.
            const char *h = strstr(doc.text, "The lighthouse keeper's logbook.");
            CHECK(h && !strstr(h + 1, "The lighthouse keeper's logbook."), "%s: the header not once", files[i].name);
            CHECK(strstr(doc.text, "in 1968. Nobody"), "%s: the footnote's anchor", files[i].name);
        }
        if (s == M3_STATUS_OK && strstr(files[i].name, ".epub"))
            CHECK(strstr(doc.text, "Since then the lamp has turned by itself."), "%s: the footnote", files[i].name);
        if (s == M3_STATUS_OK &&
            (strstr(files[i].name, ".odp") || strstr(files[i].name, ".fodp") || strstr(files[i].name, ".pptx"))) {
            // Speaker notes belong to their slide.
            check_place(files[i].name, &doc, "Show the photograph", "slide 1");
            check_place(files[i].name, &doc, "प्रकाशस्तंभ का रक्षक", "slide 3");
        }
        if (s == M3_STATUS_OK && strstr(files[i].name, ".pdf")) {
            check_place(files[i].name, &doc, "灯台守は", "page 1");
            check_place(files[i].name, &doc, "ผู้ดูแลประภาคาร", "page 2");
            // pdftotext: "السالم" (the ligature's letters reversed with the word).
            CHECK(strstr(doc.text, "قال الحارس: السلام عليكم يا أصدقائي."), "%s: lam-alef", files[i].name);
            // As printed: the header on each of the two pages.
            const char *h = strstr(doc.text, "The lighthouse keeper's logbook.");
            const char *h2 = h ? strstr(h + 1, "The lighthouse keeper's logbook.") : NULL;
            CHECK(h2 && !strstr(h2 + 1, "The lighthouse keeper's logbook."), "%s: the header not on both pages",
                  files[i].name);
        }
        if (s == M3_STATUS_OK && strstr(files[i].name, ".eml")) {
            CHECK(strstr(doc.text, "Subject: Wetterbericht für den Leuchtturm 灯塔\nFrom: Jürgen Müller <juergen@example.org>\n"
                                   "To: Anna Ström <anna@example.org>\n"),
                  "neomutt.eml: decoded headers: %.200s", doc.text);
            CHECK(strstr(doc.text, "Im Winter fror der Hafen zu, und die Fischer blieben an Land. 灯塔守护者每天晚上记录天气。"),
                  "neomutt.eml: the text part");
            check_place("neomutt.eml", &doc, "Kept by the harbour office.", "attachment notes.odt");
        }
        m3_extracted_clear(&doc);
    }
    m3_extracted doc;
    if (extract_file("neomutt.mbox", &doc) == M3_STATUS_OK) {
        // Three messages, the first with its attachment as a place of its own.
        CHECK(doc.n_marks == 4, "neomutt.mbox: %zu places", doc.n_marks);
        check_place("neomutt.mbox", &doc, "Im Winter fror", "message 1");
        check_place("neomutt.mbox", &doc, "Kept by the harbour office.", "message 1, attachment notes.odt");
        check_place("neomutt.mbox", &doc, "Subject: Re: Die Schiffe sind zurück", "message 2");
        check_place("neomutt.mbox", &doc, "Subject: 灯台守の記録", "message 3");
        // Each message's own body, after its headers (the attachment holds the same sentences).
        const char *m2 = strstr(doc.text, "Subject: Re: Die Schiffe sind zurück");
        const char *m3 = strstr(doc.text, "Subject: 灯台守の記録");
        const char *he = m2 ? strstr(m2, "הספינות חזרו לנמל בשלום.") : NULL;
        const char *hi = m3 ? strstr(m3, "प्रकाशस्तंभ का रक्षक हर शाम मौसम लिखता था।") : NULL;
        CHECK(he && he < m3, "neomutt.mbox: message 2's Hebrew body");
        CHECK(hi, "neomutt.mbox: message 3's Hindi body");
        m3_extracted_clear(&doc);
    }
}

static void test_sheets_and_mail(void)
{
    static const char *const sheets[] = {"sample.xlsx", "sample.ods", "lighthouse.xlsx", "lighthouse.ods",
                                         "office/calc.fods"};
    for (size_t i = 0; i < sizeof sheets / sizeof sheets[0]; i++) {
        size_t size;
        unsigned char *d = slurp(sheets[i], &size);
        m3_extracted doc;
        m3_error err;
        CHECK(extract_both(sheets[i], d, size, &doc, &err) == M3_STATUS_OK, "%s: %s", sheets[i], err.message);
        if (doc.text) {
            check_place(sheets[i], &doc, "Lamp oil for the winter 120", "sheet Budget");
            check_place(sheets[i], &doc, "灯塔守护者 المنارة", "sheet Übersicht");
            CHECK(strstr(doc.text, "Total 128"), "%s: a row's cells: %s", sheets[i], doc.text);
        }
        m3_extracted_clear(&doc);
        free(d);
    }
    size_t size;
    unsigned char *d = slurp("sample.eml", &size);
    m3_extracted doc;
    m3_error err;
    CHECK(extract_both("sample.eml", d, size, &doc, &err) == M3_STATUS_OK, "sample.eml: %s", err.message);
    if (doc.text) {
        CHECK(strstr(doc.text, "Subject: Wetterbericht für den Leuchtturm\nFrom: Jürgen Müller <juergen@example.org>\n"),
              "sample.eml: decoded headers: %.200s", doc.text);
        check_sentences("sample.eml", &doc, 0);
        CHECK(strstr(doc.text, "blue notebook every evening.\nIm Winter"), "sample.eml: the plain-text body");
        CHECK(!strstr(doc.text, "<p>"), "sample.eml: the HTML alternative was read as text");
        check_place("sample.eml", &doc, "灯台守は", "attachment notes.odt");
        CHECK(m3_extracted_location(&doc, 0) == NULL, "sample.eml: the message itself has no place");
    }
    m3_extracted_clear(&doc);
    free(d);
    d = slurp("sample.mbox", &size);
    CHECK(extract_both("sample.mbox", d, size, &doc, &err) == M3_STATUS_OK, "sample.mbox: %s", err.message);
    if (doc.text) {
        check_place("sample.mbox", &doc, "The fishermen stayed ashore.", "message 1");
        check_place("sample.mbox", &doc, "Subject: Café au lait", "message 2");
        check_place("sample.mbox", &doc, "die Aussicht schön.", "message 2");  // ISO-8859-1 body
        check_place("sample.mbox", &doc, "灯塔守护者每天晚上记录天气。", "message 3");
        CHECK(doc.n_marks == 3, "sample.mbox: %zu places", doc.n_marks);
    }
    m3_extracted_clear(&doc);
    free(d);
    // Without an extension, sniffed: an mbox named "Inbox", a PDF named "scan".
    d = slurp("sample.mbox", &size);
    const m3_extractor *ex = m3_extract_find("Inbox", d, size);
    CHECK(ex == &m3_docs_mbox, "an mbox without extension is not sniffed");
    free(d);
    d = slurp("sample.pdf", &size);
    CHECK(m3_extract_find("scan", d, 4096) == &m3_docs_pdf, "a PDF without extension is not sniffed");
    free(d);
}

// Charsets as pages and RTF files declare them, decoded in the helper under the filter (iconv's
// modules loaded before it).
static void expect_text(const char *name, const char *data, size_t size, const char *want)
{
    m3_extracted doc;
    m3_error err;
    m3_status s = extract_both(name, (const unsigned char *)data, size, &doc, &err);
    CHECK(s == M3_STATUS_OK && doc.text && strstr(doc.text, want), "%s: %s '%s', wanted '%s'", name,
          m3_status_name(s), doc.text ? doc.text : err.message, want);
    m3_extracted_clear(&doc);
}

static void test_charsets(void)
{
    static const char cp1251[] = "<html><head><meta charset=\"windows-1251\"><title>\xcf\xf0\xe8\xe2\xe5\xf2</title>"
                                 "<script>var hidden = 1;</script><style>p {}</style></head>"
                                 "<body><p>\xcc\xe0\xff\xea \xed\xe0 \xf1\xe5\xe2\xe5\xf0\xe5.</p></body></html>";
    expect_text("cp1251.html", cp1251, sizeof cp1251 - 1, "Привет\nМаяк на севере.");
    m3_extracted doc;
    m3_error err;
    CHECK(extract_both("cp1251.html", (const unsigned char *)cp1251, sizeof cp1251 - 1, &doc, &err) == M3_STATUS_OK &&
              !strstr(doc.text, "hidden") && !strstr(doc.text, "p {}"),
          "scripts and styles not dropped: %s", doc.text ? doc.text : "");
    m3_extracted_clear(&doc);
    // No declared charset, not UTF-8: guessed (uchardet).
    static const char latin[] = "<html><body><p>Le caf\xe9 \xe9tait froid, mais la vue \xe9tait tr\xe8s belle. "
                                "Les p\xea" "cheurs sont rest\xe9s \xe0 terre pendant l'hiver.</p></body></html>";
    expect_text("latin.html", latin, sizeof latin - 1, "Le café était froid");
    // UTF-16 with a BOM.
    static const char u16[] = "\xff\xfe<\0p\0>\0\x6f\x70\x54\x58<\0/\0p\0>\0";
    expect_text("u16.html", u16, sizeof u16 - 1, "灯塔");
    // RTF: \ansicpg1251 bytes, \u with its fallback, a skipped font table, \par.
    static const char rtf[] = "{\\rtf1\\ansi\\ansicpg1251{\\fonttbl{\\f0 Hidden Font;}}\\f0 \\'cc\\'e0\\'ff\\'ea"
                              " \\u28783?\\u22612?\\par Second \\'abpara\\'bb.}";
    expect_text("cp1251.rtf", rtf, sizeof rtf - 1, "Маяк 灯塔\nSecond «para».");
    CHECK(extract_both("cp1251.rtf", (const unsigned char *)rtf, sizeof rtf - 1, &doc, &err) == M3_STATUS_OK &&
              !strstr(doc.text, "Hidden"),
          "RTF font table read as text: %s", doc.text ? doc.text : "");
    m3_extracted_clear(&doc);
}

static void test_chunk_places(void)
{
    char path[1024];
    snprintf(path, sizeof path, "%s/../m3-tiny/sentencepiece.bpe.model", dir);
    m3_tokenizer *tok;
    if (m3_tokenizer_open(path, &tok, NULL) != M3_STATUS_OK) {
        CHECK(0, "cannot open %s", path);
        return;
    }
    size_t size;
    unsigned char *d = slurp("sample.pptx", &size);
    m3_extracted doc;
    m3_error err;
    CHECK(extract_both("sample.pptx", d, size, &doc, &err) == M3_STATUS_OK, "sample.pptx: %s", err.message);
    m3_text_chunk *ch;
    size_t n;
    m3_chunk_options co = {24, 4};
    if (doc.text && m3_extract_chunk(tok, doc.text, doc.len, &co, &ch, &n, NULL) == M3_STATUS_OK) {
        m3_extracted_locate_chunks(&doc, ch, n);
        CHECK(n >= 4, "sample.pptx: %zu chunks", n);
        int seen[5] = {0};
        for (size_t i = 0; i < n; i++) {
            const char *want = m3_extracted_location(&doc, ch[i].start);
            CHECK(ch[i].location && ch[i].location == want, "chunk %zu: location %s", i, ch[i].location);
            int slide = 0;
            if (ch[i].location && sscanf(ch[i].location, "slide %d", &slide) == 1 && slide >= 1 && slide <= 4) seen[slide]++;
        }
        for (int k = 1; k <= 4; k++) CHECK(seen[k], "no chunk starts on slide %d", k);
        free(ch);
    }
    m3_extracted_clear(&doc);
    free(d);
    m3_tokenizer_free(tok);
}

static void expect(const char *name, const unsigned char *d, size_t size, m3_status want, const char *message)
{
    m3_extracted doc;
    m3_error err;
    m3_status s = extract_both(name, d, size, &doc, &err);
    CHECK(s == want && (!message || strstr(err.message, message)), "%s: %s (%s), expected %s '%s'", name,
          m3_status_name(s), err.message, m3_status_name(want), message ? message : "");
    m3_extracted_clear(&doc);
}

static void expect_file(const char *name, m3_status want, const char *message)
{
    size_t size;
    unsigned char *d = slurp(name, &size);
    expect(name, d, size, want, message);
    free(d);
}

// A corpus file under another name (the extractor is chosen by that name).
static void expect_file_as(const char *file, const char *name, m3_status want)
{
    size_t size;
    unsigned char *d = slurp(file, &size);
    expect(name, d, size, want, NULL);
    free(d);
}

static void test_hostile(void)
{
    expect_file("encrypted.pdf", M3_STATUS_UNSUPPORTED, "skipped: encrypted");
    expect_file("encrypted.odt", M3_STATUS_UNSUPPORTED, "skipped: encrypted");
    // LibreOffice's own: "Save with password" (ODF) and a PDF export with an open password.
    expect_file("encrypted-lo.odt", M3_STATUS_UNSUPPORTED, "skipped: encrypted");
    expect_file("encrypted-lo.pdf", M3_STATUS_UNSUPPORTED, "skipped: encrypted");
    // One encrypted zip entry (zip -P) in an otherwise plain container: the chapter, the document.
    expect_file("encrypted-entry.epub", M3_STATUS_UNSUPPORTED, "skipped: encrypted");
    expect_file("encrypted-entry.docx", M3_STATUS_UNSUPPORTED, "skipped: encrypted");
    expect_file("bomb.docx", M3_STATUS_LIMIT, "zip bomb");
    expect_file("laughs.docx", M3_STATUS_FORMAT, "damaged XML");
    // An encrypted OOXML file is an OLE compound file holding the EncryptedPackage stream.
    static const char ole[] = "\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1 ... E\0n\0c\0r\0y\0p\0t\0e\0d\0P\0a\0c\0k\0a\0g\0e\0 ...";
    expect("secret.docx", (const unsigned char *)ole, sizeof ole - 1, M3_STATUS_UNSUPPORTED, "skipped: encrypted");
    // External entities are never fetched, entities never substituted.
    size_t size;
    unsigned char *d = slurp("entities.docx", &size);
    m3_extracted doc;
    m3_error err;
    CHECK(extract_both("entities.docx", d, size, &doc, &err) == M3_STATUS_OK, "entities.docx: %s", err.message);
    CHECK(doc.text && !strcmp(doc.text, "before after"), "entities.docx: '%s'", doc.text ? doc.text : "");
    m3_extracted_clear(&doc);
    free(d);
    // A gzip bomb: 64 MiB of zeros in 64 KiB.
    size_t raw = 64 << 20;
    unsigned char *zeros = calloc(raw, 1);
    uLongf zn = compressBound(raw) + 32;
    unsigned char *gz = malloc(zn);
    z_stream zs = {0};
    deflateInit2(&zs, 9, Z_DEFLATED, 16 + MAX_WBITS, 9, Z_DEFAULT_STRATEGY);
    zs.next_in = zeros, zs.avail_in = (uInt)raw, zs.next_out = gz, zs.avail_out = (uInt)zn;
    deflate(&zs, Z_FINISH);
    size_t gn = zs.total_out;
    deflateEnd(&zs);
    expect("zeros.txt.gz", gz, gn, M3_STATUS_LIMIT, "gzip bomb");
    free(gz);
    free(zeros);
    // Deep nesting: 200 000 HTML elements, RTF groups.
    size_t depth = 200000;
    char *deep = malloc(depth * 5 + 64);
    size_t k = (size_t)sprintf(deep, "<html><body>");
    for (size_t i = 0; i < depth; i++) memcpy(deep + k, "<div>", 5), k += 5;
    k += (size_t)sprintf(deep + k, "deep text");
    expect("deep.html", (unsigned char *)deep, k, M3_STATUS_OK, NULL);
    k = (size_t)sprintf(deep, "{\\rtf1 ");
    for (size_t i = 0; i < depth; i++) deep[k++] = '{';
    expect("deep.rtf", (unsigned char *)deep, k, M3_STATUS_LIMIT, "nested");
    free(deep);
    // Every format truncated: a clear state (text or an error naming the file), never a crash.
    static const char *const all[] = {"sample.docx", "sample.odt", "sample.epub", "sample.html", "sample.rtf",
                                      "sample.pptx", "sample.txt.gz", "sample.pdf", "sample.xlsx", "sample.ods",
                                      "sample.eml", "sample.mbox"};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) {
        d = slurp(all[i], &size);
        static const double cuts[] = {0.0, 0.1, 0.5, 0.9, 0.999};
        for (size_t c = 0; c < sizeof cuts / sizeof cuts[0]; c++) {
            size_t n = (size_t)(size * cuts[c]);
            m3_extracted t;
            m3_error e;
            m3_status s = extract_both(all[i], d, n, &t, &e);
            // Zip files keep their directory at the end: a cut one is damaged, never half read.
            bool zip = strstr(all[i], ".doc") || strstr(all[i], ".od") || strstr(all[i], ".epub") ||
                       strstr(all[i], ".ppt") || strstr(all[i], ".xls");
            if (zip || !strcmp(all[i], "sample.txt.gz")) CHECK(s != M3_STATUS_OK, "%s cut at %zu: read", all[i], n);
            m3_extracted_clear(&t);
        }
        free(d);
    }
}

// Flat OpenDocument: the text without a trace of the XML around it, the format by the root element
// when the name does not say it, the parts of the root that are not the body (metadata, settings)
// not read, and files that are not flat OpenDocument refused with their name and what is wrong.
static void test_flat_odf(void)
{
    static const char *const flat[] = {"office/writer.fodt", "office/calc.fods", "office/impress.fodp"};
    static const char *const words[] = {"northern cape", "Lamp oil for the winter", "Show the photograph"};
    for (size_t i = 0; i < sizeof flat / sizeof flat[0]; i++) {
        size_t size;
        unsigned char *d = slurp(flat[i], &size);
        CHECK(m3_extract_find(flat[i], d, size < 4096 ? size : 4096) == &m3_docs_odf, "%s: not the OpenDocument extractor",
              flat[i]);
        CHECK(m3_extract_find("untitled", d, size < 4096 ? size : 4096) == &m3_docs_odf,
              "%s: not sniffed by its root element", flat[i]);
        m3_extracted doc;
        m3_error err;
        CHECK(extract_both(flat[i], d, size, &doc, &err) == M3_STATUS_OK, "%s: %s", flat[i], err.message);
        if (doc.text) {
            CHECK(strstr(doc.text, words[i]), "%s: '%s' missing: %s", flat[i], words[i], doc.text);
            CHECK(!strchr(doc.text, '<') && !strchr(doc.text, '>') && !strstr(doc.text, "xmlns") &&
                      !strstr(doc.text, "urn:oasis") && !strstr(doc.text, "style:"),
                  "%s: markup in the text: %s", flat[i], doc.text);
        }
        m3_extracted_clear(&doc);
        // Named otherwise (sniffed), the same text.
        m3_extracted un;
        CHECK(extract_both("untitled", d, size, &un, &err) == M3_STATUS_OK, "untitled %s: %s", flat[i], err.message);
        m3_extracted_clear(&un);
        free(d);
    }
    // A package is still a package when it is named like a flat file, and the other way round.
    expect_file_as("lighthouse.odt", "renamed.fodt", M3_STATUS_OK);
    expect_file_as("office/writer.fodt", "renamed.odt", M3_STATUS_OK);
    // office:meta (title, generator), office:settings and office:scripts hold words that are not the
    // document's text; an entity declared in the file is not expanded, an external one not read.
    static const char meta[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<!DOCTYPE office:document [<!ENTITY secret SYSTEM \"file:///etc/passwd\"><!ENTITY word \"Expanded\">]>\n"
        "<office:document xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\"\n"
        "  xmlns:text=\"urn:oasis:names:tc:opendocument:xmlns:text:1.0\"\n"
        "  xmlns:dc=\"http://purl.org/dc/elements/1.1/\"\n"
        "  xmlns:config=\"urn:oasis:names:tc:opendocument:xmlns:config:1.0\"\n"
        "  office:mimetype=\"application/vnd.oasis.opendocument.text\">\n"
        " <office:meta><dc:title>Metatitle</dc:title><meta:generator xmlns:meta=\"m\">Generatorname</meta:generator></office:meta>\n"
        " <office:settings><config:config-item config:name=\"x\">Settingvalue</config:config-item></office:settings>\n"
        " <office:scripts><office:script>Macrosource</office:script></office:scripts>\n"
        " <office:body><office:text><text:p>Body text &secret; &word;.</text:p></office:text></office:body>\n"
        "</office:document>\n";
    m3_extracted doc;
    m3_error err;
    m3_status s = extract_both("meta.fodt", (const unsigned char *)meta, sizeof meta - 1, &doc, &err);
    CHECK(s == M3_STATUS_OK || s == M3_STATUS_FORMAT, "meta.fodt: %s (%s)", m3_status_name(s), err.message);
    if (doc.text) {
        CHECK(strstr(doc.text, "Body text"), "meta.fodt: the body missing: %s", doc.text);
        CHECK(!strstr(doc.text, "Metatitle") && !strstr(doc.text, "Generatorname") && !strstr(doc.text, "Settingvalue") &&
                  !strstr(doc.text, "Macrosource"),
              "meta.fodt: metadata, settings or scripts read as text: %s", doc.text);
        CHECK(!strstr(doc.text, "root:") && !strstr(doc.text, "Expanded"), "meta.fodt: an entity expanded: %s", doc.text);
    }
    m3_extracted_clear(&doc);
    // XML that is not flat OpenDocument, and a flat file cut short (its end tags missing).
    static const char other[] = "<?xml version=\"1.0\"?><office:document-content "
                                "xmlns:office=\"urn:oasis:names:tc:opendocument:xmlns:office:1.0\"/>";
    expect("other.fodt", (const unsigned char *)other, sizeof other - 1, M3_STATUS_FORMAT, "not an OpenDocument file");
    CHECK(m3_extract_find("other", (const unsigned char *)other, sizeof other - 1) != &m3_docs_odf,
          "office:document-content sniffed as a flat document");
    size_t size;
    unsigned char *d = slurp("office/writer.fodt", &size);
    expect("cut.fodt", d, size / 2, M3_STATUS_FORMAT, "damaged XML");
    free(d);
}

int main(int argc, char **argv)
{
    m3_error err = {0};
    if (m3_docs_register(&err) != M3_STATUS_OK) {
        fprintf(stderr, "%s\n", err.message);
        return 1;
    }
    if (argc > 1 && !strcmp(argv[1], "helper")) {
        m3_docs_warm_up();
        _exit(m3_sandbox_serve(0, 1));
    }
    const char *data = getenv("M3_TEST_DATA");
    snprintf(dir, sizeof dir, "%s/documents", data ? data : "tests/data");
    static const char *const helper[] = {"/proc/self/exe", "helper", NULL};
    m3_sandbox_options opt = m3_sandbox_options_default();
    opt.argv = helper;
    if (m3_sandbox_new(&opt, &sb, &err) != M3_STATUS_OK) {
        fprintf(stderr, "sandbox: %s\n", err.message);
        return 1;
    }
    test_corpus();
    test_real_corpus();
    test_sheets_and_mail();
    test_flat_odf();
    test_charsets();
    test_chunk_places();
    test_hostile();
    m3_sandbox_free(sb);
    if (failures) fprintf(stderr, "%d failures\n", failures);
    else printf("ok\n");
    return failures ? 1 : 0;
}
