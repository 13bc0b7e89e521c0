// SPDX-License-Identifier: MIT
//
// The extraction sandbox (core/extract/sandbox.h). This program is also its own helper: run with
// "helper" it serves documents (m3_sandbox_serve) with test-only extractors registered for special
// extensions that crash, hang, allocate without bound or try what the seccomp filter forbids; run
// with "liar" it speaks the protocol by hand and answers malformed replies; "garbage" and "exit7"
// are helpers that fail at start-up. The test checks:
//   - the helper runs confined: seccomp filter and no_new_privs on, limits in place, no inherited
//     file descriptors, its own process group;
//   - ordinary documents (UTF-8, BOM, UTF-16, legacy encodings through every warmed iconv
//     converter, empty, large, binary) give exactly what in-process extraction gives: text,
//     anchors, identity flag, encoding, extractor, or the same error;
//   - each hostile document gives an error that names the file and says what happened, the old
//     helper is reaped (no zombie), and the next ordinary document works in a new helper;
//   - every kind of malformed reply is refused, and a well-formed one from the same liar accepted;
//   - a helper whose parent is SIGKILLed dies too (PR_SET_PDEATHSIG), even in an endless loop.
#include <errno.h>
#include <fcntl.h>
#include <iconv.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "extract/extract.h"
#include "extract/sandbox-protocol.h"
#include "extract/sandbox.h"

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

#if defined(__SANITIZE_ADDRESS__)
#define ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ASAN 1
#endif
#endif
#ifndef ASAN
#define ASAN 0
#endif

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

// ---- test-only extractors (registered in the parent and the helper alike) ---------------------------

static m3_status text_result(m3_extracted *out, const char *text)
{
    memset(out, 0, sizeof *out);
    out->len = strlen(text);
    out->text = strdup(text);
    snprintf(out->encoding, sizeof out->encoding, "UTF-8");
    return out->text ? M3_STATUS_OK : M3_STATUS_NOMEM;
}

static m3_status x_abort(const unsigned char *d, size_t n, const char *p, m3_extracted *o, m3_error *e)
{
    (void)d, (void)n, (void)p, (void)o, (void)e;
    abort();
}

static volatile uintptr_t bad_address = 16;

static m3_status x_segv(const unsigned char *d, size_t n, const char *p, m3_extracted *o, m3_error *e)
{
    (void)d, (void)n, (void)p, (void)o, (void)e;
    *(volatile int *)bad_address = 1;
    return M3_STATUS_OK;
}

static m3_status x_spin(const unsigned char *d, size_t n, const char *p, m3_extracted *o, m3_error *e)
{
    (void)d, (void)n, (void)p, (void)o, (void)e;
    for (volatile unsigned long i = 0;; i++) {}
    return M3_STATUS_OK;
}

static m3_status x_sleep(const unsigned char *d, size_t n, const char *p, m3_extracted *o, m3_error *e)
{
    (void)d, (void)n, (void)p, (void)o, (void)e;
    for (;;) nanosleep(&(struct timespec){1, 0}, NULL);
    return M3_STATUS_OK;
}

// Allocates and touches 32 MiB blocks until malloc fails; stops at 4 GiB (then the limit failed).
static m3_status x_hog(const unsigned char *d, size_t n, const char *p, m3_extracted *o, m3_error *e)
{
    (void)d, (void)n;
    for (int i = 0; i < 128; i++) {
        char *b = malloc(32u << 20);
        if (!b) return m3_error_set(e, M3_STATUS_NOMEM, 0, "out of memory after %d MiB", i * 32);
        memset(b, i, 32u << 20);
    }
    (void)p;
    return text_result(o, "allocated 4 GiB: no memory limit");
}

static m3_status x_write(const unsigned char *d, size_t n, const char *p, m3_extracted *o, m3_error *e)
{
    (void)p;
    char target[512];
    snprintf(target, sizeof target, "%.*s", (int)n, (const char *)d);
    int fd = open(target, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return m3_error_set(e, M3_STATUS_IO, errno, "open for writing: %s", strerror(errno));
    (void)!write(fd, "pwned", 5);
    close(fd);
    return text_result(o, "wrote a file");
}

static m3_status x_unlink(const unsigned char *d, size_t n, const char *p, m3_extracted *o, m3_error *e)
{
    (void)p, (void)e;
    char target[512];
    snprintf(target, sizeof target, "%.*s", (int)n, (const char *)d);
    return text_result(o, unlink(target) == 0 ? "unlinked" : strerror(errno));
}

static m3_status x_read(const unsigned char *d, size_t n, const char *p, m3_extracted *o, m3_error *e)
{
    (void)d, (void)n, (void)p, (void)e;
    int fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        close(fd);
        return text_result(o, "read /etc/passwd");
    }
    char msg[128];
    snprintf(msg, sizeof msg, "open: %s", strerror(errno));
    return text_result(o, msg);
}

static m3_status x_socket(const unsigned char *d, size_t n, const char *p, m3_extracted *o, m3_error *e)
{
    (void)d, (void)n, (void)p, (void)e;
    int s = socket(AF_INET, SOCK_STREAM, 0);
    return text_result(o, s >= 0 ? "opened a socket" : strerror(errno));
}

static m3_status x_exec(const unsigned char *d, size_t n, const char *p, m3_extracted *o, m3_error *e)
{
    (void)d, (void)n, (void)p, (void)e;
    char *const argv[] = {"/bin/true", NULL};
    execv("/bin/true", argv);
    return text_result(o, strerror(errno));
}

static m3_status x_fork(const unsigned char *d, size_t n, const char *p, m3_extracted *o, m3_error *e)
{
    (void)d, (void)n, (void)p, (void)e;
    pid_t pid = fork();
    if (pid == 0) _exit(0);
    char msg[128];
    snprintf(msg, sizeof msg, "fork: %s", pid < 0 ? strerror(errno) : "succeeded");
    return text_result(o, msg);
}

static m3_status x_doublefree(const unsigned char *d, size_t n, const char *p, m3_extracted *o, m3_error *e)
{
    (void)d, (void)n, (void)p, (void)o, (void)e;
    char *volatile b = malloc(64);
    free(b);
    free(b);
    return text_result(o, "double free survived");
}

#define TEST_EXTRACTOR(ext, fn) \
    static const char *const ext##_ext[] = {#ext, NULL}; \
    static const m3_extractor ext##_x = {"test-" #ext, 7, ext##_ext, fn, NULL};
TEST_EXTRACTOR(crashabort, x_abort)
TEST_EXTRACTOR(crashsegv, x_segv)
TEST_EXTRACTOR(spin, x_spin)
TEST_EXTRACTOR(sleephang, x_sleep)
TEST_EXTRACTOR(hog, x_hog)
TEST_EXTRACTOR(evilwrite, x_write)
TEST_EXTRACTOR(evilunlink, x_unlink)
TEST_EXTRACTOR(evilread, x_read)
TEST_EXTRACTOR(evilsocket, x_socket)
TEST_EXTRACTOR(evilexec, x_exec)
TEST_EXTRACTOR(evilfork, x_fork)
TEST_EXTRACTOR(doublefree, x_doublefree)

static void register_test_extractors(void)
{
    const m3_extractor *all[] = {&crashabort_x, &crashsegv_x, &spin_x, &sleephang_x, &hog_x, &evilwrite_x,
                                 &evilunlink_x, &evilread_x, &evilsocket_x, &evilexec_x, &evilfork_x, &doublefree_x};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (m3_extract_register(all[i]) != M3_STATUS_OK) abort();
}

// ---- the lying helper -------------------------------------------------------------------------------

static int full_read(int fd, void *b, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)b + got, n - got);
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return 0;
}

static void full_write(int fd, const void *b, size_t n)
{
    size_t done = 0;
    while (done < n) {
        ssize_t w = write(fd, (const char *)b + done, n - done);
        if (w <= 0) _exit(4);
        done += (size_t)w;
    }
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && !strcmp(s + a - b, suffix);
}

// Answers each request by the extension of its path: ".good" well-formed, the others malformed.
static int liar(void)
{
    m3_sbx_config cfg;
    if (full_read(0, &cfg, sizeof cfg)) return 2;
    m3_sbx_reply ready = {.magic = M3_SBX_REPLY_MAGIC};
    full_write(1, &ready, sizeof ready);
    for (;;) {
        m3_sbx_request rq;
        char path[M3_SBX_PATH_MAX + 1];
        if (full_read(0, &rq, sizeof rq)) return 0;
        if (rq.path_len > M3_SBX_PATH_MAX || full_read(0, path, rq.path_len)) return 2;
        path[rq.path_len] = 0;
        if (ends_with(path, ".dieearly")) _exit(9);  // without reading the document
        for (uint64_t left = rq.size; left;) {
            char buf[4096];
            size_t k = left < sizeof buf ? (size_t)left : sizeof buf;
            if (full_read(0, buf, k)) return 2;
            left -= k;
        }
        m3_sbx_reply h = {.magic = M3_SBX_REPLY_MAGIC, .version = 3, .text_len = 5, .n_anchors = 1};
        strcpy(h.extractor, "liar");
        strcpy(h.encoding, "UTF-8");
        char text[16] = "hello";
        m3_offset_anchor anchor = {0, 0};
        const char *msg = NULL;
        if (ends_with(path, ".badmagic")) h.magic ^= 1;
        else if (ends_with(path, ".hugetext")) h.text_len = (uint64_t)1 << 40;
        else if (ends_with(path, ".badutf8")) memcpy(text, "he\xc3(o", 5);
        else if (ends_with(path, ".nul")) text[2] = 0;
        else if (ends_with(path, ".anchorrange")) anchor.text = 6;
        else if (ends_with(path, ".fileoffset")) anchor.file = rq.size + 1;
        else if (ends_with(path, ".manyanchors")) h.n_anchors = rq.size + 2;
        else if (ends_with(path, ".badname")) memset(h.extractor, 'x', sizeof h.extractor);
        else if (ends_with(path, ".ctrlname")) strcpy(h.encoding, "UTF\n8");
        else if (ends_with(path, ".badstatus")) h.status = -1000;
        else if (ends_with(path, ".errwithtext")) h.status = M3_STATUS_FORMAT;
        else if (ends_with(path, ".identity")) h.identity = 3;
        else if (ends_with(path, ".derivedanchors")) h.identity = 2;
        m3_location_mark marks[2] = {{1, "page 2"}, {3, "page 3"}};
        if (ends_with(path, ".goodplace")) h.identity = 2, h.n_anchors = 0, h.n_marks = 2;
        else if (ends_with(path, ".manyplaces")) h.identity = 2, h.n_anchors = 0, h.n_marks = 7;
        else if (ends_with(path, ".placerange")) h.identity = 2, h.n_anchors = 0, h.n_marks = 2, marks[1].text = 6;
        else if (ends_with(path, ".placeorder")) h.identity = 2, h.n_anchors = 0, h.n_marks = 2, marks[1].text = 1;
        else if (ends_with(path, ".placename")) h.identity = 2, h.n_anchors = 0, h.n_marks = 2, marks[1].where[4] = '\n';
        else if (ends_with(path, ".placeempty")) h.identity = 2, h.n_anchors = 0, h.n_marks = 1, marks[0].where[0] = 0;
        else if (ends_with(path, ".longmsg")) h.status = M3_STATUS_FORMAT, h.text_len = 0, h.n_anchors = 0,
                                                 h.message_len = M3_SBX_MESSAGE_MAX + 1;
        else if (ends_with(path, ".escape")) msg = "\x1b[31mred\x1b[0m\nsecond line";
        else if (ends_with(path, ".truncated")) {
            full_write(1, &h, sizeof h / 2);
            _exit(0);
        } else if (ends_with(path, ".stall")) {
            full_write(1, &h, sizeof h);
            for (;;) pause();
        }
        if (msg) {
            h.status = M3_STATUS_FORMAT;
            h.text_len = h.n_anchors = 0;
            h.message_len = (uint32_t)strlen(msg);
            full_write(1, &h, sizeof h);
            full_write(1, msg, strlen(msg));
            continue;
        }
        full_write(1, &h, sizeof h);
        if (h.text_len == 5) full_write(1, text, 5);
        if (h.n_anchors == 1) full_write(1, &anchor, sizeof anchor);
        else if (h.n_anchors > 1) for (uint64_t i = 0; i < h.n_anchors; i++) full_write(1, &anchor, sizeof anchor);
        for (uint32_t i = 0; i < h.n_marks; i++) full_write(1, &marks[i < 2 ? i : 1], sizeof marks[0]);
    }
}

// ---- helpers of the checks ------------------------------------------------------------------------

static const char *self_exe;
static const char *const helper_argv[] = {"/proc/self/exe", "helper", NULL};

static m3_sandbox *new_sandbox(const char *const *argv, double timeout)
{
    m3_sandbox_options opt = m3_sandbox_options_default();
    opt.argv = argv;
    opt.timeout_s = timeout;
    opt.memory_limit = 256u << 20;
    m3_sandbox *sb = NULL;
    m3_error err = {0};
    if (m3_sandbox_new(&opt, &sb, &err) != M3_STATUS_OK) {
        fprintf(stderr, "m3_sandbox_new: %s\n", err.message);
        exit(1);
    }
    return sb;
}

// True when pid is no longer our child: reaped (no zombie left behind).
static bool reaped(pid_t pid)
{
    int st;
    return waitpid(pid, &st, WNOHANG) < 0 && errno == ECHILD;
}

static char *proc_file(pid_t pid, const char *name)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/%s", (int)pid, name);
    FILE *f = fopen(path, "r");
    if (!f) return strdup("");
    static char buf[8192];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = 0;
    fclose(f);
    return strdup(buf);
}

typedef struct doc {
    const char *path;
    unsigned char *data;
    size_t size;
} doc;

// The document extracted in-process and in the sandbox must agree in every field, or fail alike.
static void check_same(m3_sandbox *sb, const doc *d)
{
    m3_extracted a, b;
    m3_error ea = {0}, eb = {0};
    memset(&a, 0, sizeof a);
    const m3_extractor *ex = m3_extract_find(d->path, d->data, d->size < 4096 ? d->size : 4096);
    m3_status sa = ex ? ex->extract(d->data, d->size, d->path, &a, &ea) : M3_STATUS_UNSUPPORTED;
    m3_extractor_id who;
    m3_status sb_ = m3_sandbox_extract(sb, d->path, d->data, d->size, &b, &who, &eb);
    CHECK(sa == sb_, "%s: status in-process %d, sandboxed %d (%s)", d->path, sa, sb_, eb.message);
    if (sa == M3_STATUS_OK && sb_ == M3_STATUS_OK) {
        CHECK(a.len == b.len && !memcmp(a.text, b.text, a.len) && b.text[b.len] == 0, "%s: text differs", d->path);
        CHECK(a.identity == b.identity, "%s: identity differs", d->path);
        CHECK(a.n_anchors == b.n_anchors &&
                  (!a.n_anchors || !memcmp(a.anchors, b.anchors, a.n_anchors * sizeof *a.anchors)),
              "%s: anchors differ (%zu vs %zu)", d->path, a.n_anchors, b.n_anchors);
        CHECK(!strcmp(a.encoding, b.encoding), "%s: encoding %s vs %s", d->path, a.encoding, b.encoding);
        CHECK(!strcmp(who.name, ex->name) && who.version == ex->version, "%s: extractor %s %u", d->path, who.name,
              who.version);
    } else if (ex && sa != M3_STATUS_OK && sb_ != M3_STATUS_OK) {
        CHECK(!strcmp(ea.message, eb.message), "%s: error '%s' vs '%s'", d->path, ea.message, eb.message);
    }
    m3_extracted_clear(&a);
    m3_extracted_clear(&b);
}

static doc make_doc(const char *path, const void *bytes, size_t n)
{
    doc d = {path, malloc(n ? n : 1), n};
    memcpy(d.data, bytes, n);
    return d;
}

static doc make_converted(const char *path, const char *charset, const char *utf8)
{
    iconv_t cd = iconv_open(charset, "UTF-8");
    size_t cap = strlen(utf8) * 4 + 16;
    doc d = {path, malloc(cap), 0};
    if (cd == (iconv_t)-1) {
        fprintf(stderr, "iconv %s: %s\n", charset, strerror(errno));
        exit(1);
    }
    char *in = (char *)utf8, *out = (char *)d.data;
    size_t inl = strlen(utf8), outl = cap;
    iconv(cd, &in, &inl, &out, &outl);
    iconv_close(cd);
    d.size = cap - outl;
    return d;
}

// The ordinary documents: every decoding path of the text extractor.
static doc *ordinary_docs(size_t *n)
{
    static const char multi[] =
        "Die Steuererklärung muss bis Ende Mai beim Finanzamt sein.\nLe chat dort sur le canapé toute la journée.\n";
    static const struct {
        const char *path, *charset, *text;
    } legacy[] = {
        {"/docs/latin1.txt", "ISO-8859-1", "Café crème brûlée, naïve résumé.\nÉté à Paris, où l'on mange.\n"},
        {"/docs/cp1252.txt", "WINDOWS-1252", "“Smart quotes” – and a dash… “again” – 3 €.\n"},
        {"/docs/cp1251.txt", "WINDOWS-1251", "Кошка спит на диване весь день.\nСобака гуляет в парке.\n"},
        {"/docs/koi8.txt", "KOI8-R", "Кошка спит на диване весь день.\nСобака гуляет в парке утром.\n"},
        {"/docs/greek.txt", "ISO-8859-7", "Η θάλασσα είναι ήρεμη σήμερα το πρωί.\nΟ ήλιος λάμπει.\n"},
        {"/docs/hebrew.txt", "WINDOWS-1255", "שלום עולם, זהו מסמך בעברית.\nעוד שורה אחת.\n"},
        {"/docs/sjis.txt", "SHIFT_JIS", "猫は一日中ソファで寝ています。\n日本語のテキストです。東京は大きな都市です。\n"},
        {"/docs/eucjp.txt", "EUC-JP", "猫は一日中ソファで寝ています。\n日本語のテキストです。京都は古い都市です。\n"},
        {"/docs/euckr.txt", "EUC-KR", "세무서에서 소득세 신고에 관한 편지를 보냈습니다.\n한국어 문서입니다.\n"},
        {"/docs/gb18030.txt", "GB18030", "我们明天去图书馆借书。\n这是一个中文文件，北京是首都。\n"},
        {"/docs/big5.txt", "BIG5", "我們明天去圖書館借書。\n這是一個中文文件，臺北是城市。\n"},
        {"/docs/thai.txt", "TIS-620", "ภาษาไทยเป็นภาษาที่สวยงาม\nกรุงเทพมหานคร\n"},
        {"/docs/cp1250.txt", "WINDOWS-1250", "Příliš žluťoučký kůň úpěl ďábelské ódy.\nZażółć gęślą jaźń.\n"},
    };
    size_t cap = 64, k = 0;
    doc *d = calloc(cap, sizeof *d);
    d[k++] = make_doc("/docs/utf8.txt", multi, sizeof multi - 1);
    char bom[256];
    snprintf(bom, sizeof bom, "\xef\xbb\xbf# Title\n\n%s", multi);
    d[k++] = make_doc("/docs/bom.md", bom, strlen(bom));
    d[k++] = make_doc("/docs/empty.txt", "", 0);
    static const char readme[] = "A file without an extension.\nSecond line.\n";
    d[k++] = make_doc("/docs/README", readme, sizeof readme - 1);
    d[k++] = make_doc("/docs/binary.txt", "ab\0cd", 5);
    d[k++] = make_doc("/docs/code.c", "int main(void) { return 0; }\n", 29);
    static const unsigned char u16le[] = {0xff, 0xfe, 'H', 0, 'i', 0, '\n', 0, 0xac, 0x20, '\n', 0, 0x3d, 0xd8, 0x00, 0xde};
    static const unsigned char u16be[] = {0xfe, 0xff, 0, 'H', 0, 'i', 0, '\n', 0xd8, 0x3d, 0xde, 0x00, 0, '!'};
    d[k++] = make_doc("/docs/utf16le.txt", u16le, sizeof u16le);
    d[k++] = make_doc("/docs/utf16be.txt", u16be, sizeof u16be);
    for (size_t i = 0; i < sizeof legacy / sizeof legacy[0]; i++)
        d[k++] = make_converted(legacy[i].path, legacy[i].charset, legacy[i].text);
    // Large: 3 MiB of UTF-8 (several pipe buffers) and 1 MiB of Latin-1 (many anchors).
    size_t big = 3u << 20;
    doc b = {"/docs/big.txt", malloc(big), big};
    for (size_t i = 0; i < big; i++) b.data[i] = i % 61 == 60 ? '\n' : (unsigned char)('a' + i % 26);
    d[k++] = b;
    size_t lat = 1u << 20;
    doc l = {"/docs/big-latin1.txt", malloc(lat), lat};
    for (size_t i = 0; i < lat; i++) l.data[i] = i % 17 == 16 ? '\n' : i % 5 == 0 ? 0xe9 : (unsigned char)('a' + i % 26);
    d[k++] = l;
    *n = k;
    return d;
}

static const char *tmpdir;

// Runs one hostile document; checks the error names the file and says `expect`, that the helper
// was replaced and reaped, and that an ordinary document then works.
static void check_hostile(m3_sandbox *sb, const char *name, const char *content, m3_status want_status,
                          const char *expect, const doc *ordinary)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", tmpdir, name);
    pid_t before = m3_sandbox_get_pid(sb);
    m3_extracted out;
    m3_error err = {0};
    double t0 = now_s();
    m3_status s = m3_sandbox_extract(sb, path, (const unsigned char *)content, strlen(content), &out, NULL, &err);
    double dt = now_s() - t0;
    printf("%-12s %.2f s  %s\n", name, dt, s == M3_STATUS_OK ? out.text : err.message);
    if (want_status == M3_STATUS_OK) {
        CHECK(s == M3_STATUS_OK && strstr(out.text, expect), "%s: wanted text '%s', got %d '%s'", name, expect, s,
              s == M3_STATUS_OK ? out.text : err.message);
        m3_extracted_clear(&out);
    } else {
        CHECK(s == want_status, "%s: status %d, wanted %d (%s)", name, s, want_status, err.message);
        CHECK(strstr(err.message, path) == err.message, "%s: the error does not name the file: %s", name, err.message);
        CHECK(strstr(err.message, expect), "%s: the error does not say '%s': %s", name, expect, err.message);
        CHECK(out.text == NULL && out.len == 0, "%s: output not cleared", name);
        CHECK(m3_sandbox_get_pid(sb) == 0, "%s: the failed helper is still recorded", name);
        CHECK(reaped(before), "%s: helper %d not reaped", name, (int)before);
    }
    check_same(sb, ordinary);
    CHECK(m3_sandbox_get_pid(sb) > 0, "%s: no helper after an ordinary document", name);
}

// One line of /proc/PID/limits: "Max file size             0                    0   bytes".
static bool limit_line(const char *limits, const char *name, char soft[32], char hard[32])
{
    soft[0] = hard[0] = 0;
    const char *l = strstr(limits, name);
    return l && sscanf(l + strlen(name), " %31s %31s", soft, hard) == 2;
}

static void check_confined(m3_sandbox *sb, int leaked_fd)
{
    pid_t pid = m3_sandbox_get_pid(sb);
    char *status = proc_file(pid, "status"), *limits = proc_file(pid, "limits"), *statf = proc_file(pid, "stat");
    CHECK(strstr(status, "Seccomp:\t2"), "helper %d has no seccomp filter", (int)pid);
    CHECK(strstr(status, "NoNewPrivs:\t1"), "helper without no_new_privs");
    char soft[32], hard[32];
    CHECK(limit_line(limits, "Max file size", soft, hard) && !strcmp(soft, "0") && !strcmp(hard, "0"),
          "RLIMIT_FSIZE %s %s", soft, hard);
    CHECK(limit_line(limits, "Max core file size", soft, hard) && !strcmp(soft, "0") && !strcmp(hard, "0"),
          "RLIMIT_CORE %s %s", soft, hard);
    CHECK(limit_line(limits, "Max open files", soft, hard) && !strcmp(soft, "8") && !strcmp(hard, "8"),
          "RLIMIT_NOFILE %s %s", soft, hard);
    CHECK(limit_line(limits, "Max address space", soft, hard) && strcmp(soft, "unlimited"), "RLIMIT_AS %s", soft);
    CHECK(limit_line(limits, "Max cpu time", soft, hard) && strcmp(soft, "unlimited"), "RLIMIT_CPU %s", soft);
    char as[32], cpu[32];
    limit_line(limits, "Max address space", as, hard);
    limit_line(limits, "Max cpu time", cpu, hard);
    printf("helper %d: RLIMIT_AS %s, RLIMIT_CPU %s s\n", (int)pid, as, cpu);
    // Field 5 of stat: the process group, its own.
    int pgrp = 0;
    const char *close_paren = strrchr(statf, ')');
    CHECK(close_paren && sscanf(close_paren + 2, "%*c %*d %d", &pgrp) == 1 && pgrp == pid, "helper pgrp %d", pgrp);
    char fds[64];
    snprintf(fds, sizeof fds, "/proc/%d/fd/%d", (int)pid, leaked_fd);
    struct stat st;
    CHECK(stat(fds, &st) != 0, "the helper inherited fd %d", leaked_fd);
    snprintf(fds, sizeof fds, "/proc/%d/fd/3", (int)pid);
    CHECK(stat(fds, &st) != 0, "the helper has an fd 3");
    free(status);
    free(limits);
    free(statf);
}

// A child process starts a sandbox and spins in an extractor; we SIGKILL the child. As a
// subreaper we inherit the orphaned helper and can see that it was killed too.
static void check_dies_with_parent(void)
{
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    int p[2];
    if (pipe(p) != 0) exit(1);
    pid_t child = fork();
    if (child == 0) {
        close(p[0]);
        m3_sandbox *sb = new_sandbox(helper_argv, 60);
        pid_t h = m3_sandbox_get_pid(sb);
        (void)!write(p[1], &h, sizeof h);
        m3_extracted out;
        m3_sandbox_extract(sb, "/docs/x.spin", (const unsigned char *)"x", 1, &out, NULL, NULL);
        _exit(0);
    }
    close(p[1]);
    pid_t helper = 0;
    CHECK(read(p[0], &helper, sizeof helper) == sizeof helper, "no helper pid from the child");
    close(p[0]);
    nanosleep(&(struct timespec){0, 300000000}, NULL);  // the helper is spinning now
    kill(child, SIGKILL);
    int st;
    waitpid(child, &st, 0);
    double t0 = now_s();
    pid_t r = 0;
    while (now_s() - t0 < 10 && (r = waitpid(helper, &st, WNOHANG)) == 0) nanosleep(&(struct timespec){0, 10000000}, NULL);
    CHECK(r == helper && WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL,
          "the helper %d did not die with its parent (waitpid %d, status %#x)", (int)helper, (int)r, st);
    printf("parent SIGKILLed: helper %d died of signal %d after %.3f s\n", (int)helper,
           r == helper && WIFSIGNALED(st) ? WTERMSIG(st) : 0, now_s() - t0);
    prctl(PR_SET_CHILD_SUBREAPER, 0);
}

static void check_liar(const doc *ordinary)
{
    (void)ordinary;
    static const char *const argv[] = {"/proc/self/exe", "liar", NULL};
    m3_sandbox *sb = new_sandbox(argv, 2);
    static const struct {
        const char *ext, *expect;
        m3_status status;
    } lies[] = {
        {"badmagic", "malformed reply from the extraction helper (bad magic)", M3_STATUS_FORMAT},
        {"hugetext", "(text longer than the limit)", M3_STATUS_FORMAT},
        {"badutf8", "(text is not UTF-8)", M3_STATUS_FORMAT},
        {"nul", "(text is not UTF-8)", M3_STATUS_FORMAT},
        {"anchorrange", "(anchor out of range)", M3_STATUS_FORMAT},
        {"fileoffset", "(anchor out of range)", M3_STATUS_FORMAT},
        {"manyanchors", "(more anchors than bytes)", M3_STATUS_FORMAT},
        {"badname", "(bad extractor name)", M3_STATUS_FORMAT},
        {"ctrlname", "(bad encoding name)", M3_STATUS_FORMAT},
        {"badstatus", "(unknown status)", M3_STATUS_FORMAT},
        {"errwithtext", "(text with an error)", M3_STATUS_FORMAT},
        {"identity", "(bad identity flag)", M3_STATUS_FORMAT},
        {"derivedanchors", "(anchors with derived text)", M3_STATUS_FORMAT},
        {"manyplaces", "(more places than bytes of text)", M3_STATUS_FORMAT},
        {"placerange", "(place out of range)", M3_STATUS_FORMAT},
        {"placeorder", "(places not sorted)", M3_STATUS_FORMAT},
        {"placename", "(bad place name)", M3_STATUS_FORMAT},
        {"placeempty", "(bad place name)", M3_STATUS_FORMAT},
        {"longmsg", "(message too long)", M3_STATUS_FORMAT},
        {"truncated", "extractor exited with status 0", M3_STATUS_FORMAT},
        {"stall", "timed out after 2 s", M3_STATUS_LIMIT},
        {"dieearly", "extractor exited with status 9", M3_STATUS_FORMAT},
        {"escape", "?[31mred?[0m?second line", M3_STATUS_FORMAT},
    };
    // 8 MiB: larger than the pipe, so that a helper that stops reading is met while writing.
    size_t big = 8u << 20;
    unsigned char *data = calloc(1, big);
    memset(data, 'a', big);
    for (size_t i = 0; i < sizeof lies / sizeof lies[0]; i++) {
        char path[256];
        snprintf(path, sizeof path, "%s/x.%s", tmpdir, lies[i].ext);
        pid_t before = m3_sandbox_get_pid(sb);
        size_t size = !strcmp(lies[i].ext, "dieearly") ? big : 64;
        m3_extracted out;
        m3_error err = {0};
        m3_status s = m3_sandbox_extract(sb, path, data, size, &out, NULL, &err);
        printf("lie %-12s %s\n", lies[i].ext, err.message);
        CHECK(s == lies[i].status, "lie %s: status %d: %s", lies[i].ext, s, err.message);
        CHECK(strstr(err.message, path) == err.message && strstr(err.message, lies[i].expect),
              "lie %s: wanted '%s', got '%s'", lies[i].ext, lies[i].expect, err.message);
        CHECK(!out.text, "lie %s: text returned", lies[i].ext);
        if (strcmp(lies[i].ext, "escape")) CHECK(reaped(before), "lie %s: helper not reaped", lies[i].ext);
        // The same liar's well-formed answer is accepted, from a new helper when the old one was
        // stopped.
        m3_extractor_id who;
        s = m3_sandbox_extract(sb, "/docs/x.good", data, 64, &out, &who, &err);
        CHECK(s == M3_STATUS_OK && out.len == 5 && !strcmp(out.text, "hello") && !strcmp(who.name, "liar") &&
                  who.version == 3 && out.n_anchors == 1,
              "after lie %s: a good reply was refused: %s", lies[i].ext, err.message);
        m3_extracted_clear(&out);
    }
    // Places of derived text are taken as sent.
    {
        m3_extracted out;
        m3_error err = {0};
        m3_status s = m3_sandbox_extract(sb, "/docs/x.goodplace", data, 64, &out, NULL, &err);
        CHECK(s == M3_STATUS_OK && out.derived && !out.n_anchors && out.n_marks == 2 && out.marks[0].text == 1 &&
                  !strcmp(out.marks[1].where, "page 3") && !strcmp(m3_extracted_location(&out, 2), "page 2"),
              "a reply with places was refused or changed: %s", err.message);
        m3_extracted_clear(&out);
    }
    free(data);
    pid_t last = m3_sandbox_get_pid(sb);
    m3_sandbox_free(sb);
    CHECK(reaped(last), "liar not reaped after m3_sandbox_free");
}

static void check_bad_start(void)
{
    static const struct {
        const char *mode, *expect;
    } bad[] = {
        {"garbage", "malformed reply"},
        {"exit7", "extractor exited with status 7"},
        {"nonexistent-program", "No such file"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *argv[] = {"/proc/self/exe", bad[i].mode, NULL};
        if (!strcmp(bad[i].mode, "nonexistent-program")) argv[0] = "/nonexistent/m3-helper";
        m3_sandbox_options opt = m3_sandbox_options_default();
        opt.argv = argv;
        m3_sandbox *sb = NULL;
        m3_error err = {0};
        m3_status s = m3_sandbox_new(&opt, &sb, &err);
        printf("start %-20s %s\n", bad[i].mode, err.message);
        CHECK(s != M3_STATUS_OK && !sb && strstr(err.message, bad[i].expect) &&
                  strstr(err.message, "extraction helper"),
              "start %s: %d '%s'", bad[i].mode, s, err.message);
    }
    int st;
    CHECK(waitpid(-1, &st, WNOHANG) < 0 && errno == ECHILD, "a failed start left a child behind");
}

int main(int argc, char **argv)
{
    register_test_extractors();
    if (argc > 1 && !strcmp(argv[1], "helper")) _exit(m3_sandbox_serve(0, 1));
    if (argc > 1 && !strcmp(argv[1], "liar")) _exit(liar());
    if (argc > 1 && !strcmp(argv[1], "exit7")) _exit(7);
    if (argc > 1 && !strcmp(argv[1], "garbage")) {
        static const char junk[] = "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<html>not a reply</html>"
                                   "................................................................";
        (void)!write(1, junk, sizeof junk);
        char buf[256];
        while (read(0, buf, sizeof buf) > 0) {}
        _exit(0);
    }
    self_exe = argv[0];
    char tmpl[] = "/tmp/m3-sandbox-XXXXXX";
    tmpdir = mkdtemp(tmpl);
    if (!tmpdir) return 1;
    printf("built with AddressSanitizer: %s\n", ASAN ? "yes" : "no");

    int leaked = open("/dev/null", O_RDONLY);  // no O_CLOEXEC: must not reach the helper anyway
    // A generous timeout (a loaded machine, sanitizers); the hanging extractors get their own
    // sandbox with 1 s.
    m3_sandbox *sb = new_sandbox(helper_argv, 30), *quick = new_sandbox(helper_argv, 1);
    check_confined(sb, leaked);
    close(leaked);

    size_t n_docs;
    doc *docs = ordinary_docs(&n_docs);
    for (size_t i = 0; i < n_docs; i++) check_same(sb, &docs[i]);
    pid_t first = m3_sandbox_get_pid(sb);
    CHECK(first > 0, "no helper");

    // Hostile documents, each followed by an ordinary one (another each time).
    char target[600], victim[600];
    snprintf(target, sizeof target, "%s/pwned", tmpdir);
    snprintf(victim, sizeof victim, "%s/victim", tmpdir);
    int vfd = open(victim, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    close(vfd);
    size_t k = 0;
#define NEXT (&docs[k++ % n_docs])
    // Under AddressSanitizer a SEGV, a double free or an exhausted heap is reported by ASan, which
    // then aborts or exits (ASAN_OPTIONS abort_on_error).
    const char *asan_crash = "extractor ";
    check_hostile(sb, "x.crashabort", "x", M3_STATUS_FORMAT, "extractor crashed (signal 6, SIGABRT)", NEXT);
    check_hostile(sb, "x.crashsegv", "x", M3_STATUS_FORMAT,
                  ASAN ? asan_crash : "extractor crashed (signal 11, SIGSEGV)", NEXT);
    check_hostile(sb, "x.doublefree", "x", M3_STATUS_FORMAT, ASAN ? asan_crash : "extractor crashed (signal 6, SIGABRT)",
                  NEXT);
    check_hostile(quick, "x.spin", "x", M3_STATUS_LIMIT, "extraction timed out after 1 s", NEXT);
    check_hostile(quick, "x.sleephang", "x", M3_STATUS_LIMIT, "extraction timed out after 1 s", NEXT);
    pid_t quick_pid = m3_sandbox_get_pid(quick);
    m3_sandbox_free(quick);
    CHECK(reaped(quick_pid), "helper %d not reaped by m3_sandbox_free", (int)quick_pid);
    check_hostile(sb, "x.hog", "x", ASAN ? M3_STATUS_FORMAT : M3_STATUS_NOMEM,
                  ASAN ? asan_crash : "out of memory after", NEXT);
    check_hostile(sb, "x.evilwrite", target, M3_STATUS_FORMAT, "forbidden system call (signal 31, SIGSYS", NEXT);
    CHECK(access(target, F_OK) != 0, "the helper created %s", target);
    check_hostile(sb, "x.evilunlink", victim, M3_STATUS_FORMAT, "forbidden system call", NEXT);
    CHECK(access(victim, F_OK) == 0, "the helper removed %s", victim);
    check_hostile(sb, "x.evilsocket", "x", M3_STATUS_FORMAT, "forbidden system call", NEXT);
    check_hostile(sb, "x.evilexec", "x", M3_STATUS_FORMAT, "forbidden system call", NEXT);
    // Reading a file fails softly (EACCES), forking with EPERM: the helper lives on.
    check_hostile(sb, "x.evilread", "x", M3_STATUS_OK, "open: Permission denied", NEXT);
    check_hostile(sb, "x.evilfork", "x", M3_STATUS_OK, "fork: Operation not permitted", NEXT);

    // A helper that died while idle is replaced before the next document, which is not blamed.
    pid_t idle = m3_sandbox_get_pid(sb);
    kill(idle, SIGKILL);
    nanosleep(&(struct timespec){0, 50000000}, NULL);
    check_same(sb, &docs[0]);
    CHECK(m3_sandbox_get_pid(sb) != idle && reaped(idle), "idle death: helper not replaced");
    // Again, after all this: every ordinary document.
    for (size_t i = 0; i < n_docs; i++) check_same(sb, &docs[i]);
    pid_t last = m3_sandbox_get_pid(sb);
    m3_sandbox_free(sb);
    CHECK(reaped(last), "helper %d not reaped by m3_sandbox_free", (int)last);

    check_liar(&docs[0]);
    check_bad_start();
    check_dies_with_parent();

    for (size_t i = 0; i < n_docs; i++) free(docs[i].data);
    free(docs);
    unlink(victim);
    unlink(target);
    rmdir(tmpdir);
    printf("%d failures\n", failures);
    return failures ? 1 : 0;
}
