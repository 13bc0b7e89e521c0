// SPDX-License-Identifier: MIT
//
// The download itself: one libcurl easy handle (so the connection is reused), a HEAD per missing
// file for its size and checksum, a free-space check, then a GET per file into FILE.part, resumed
// with a Range request, retried with exponential back-off on transient failures, hashed while it is
// written, and renamed into place after fsync only when size and checksum match.
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>

#include "fetch-private.h"
#include "fetch.h"

enum { HASH_HEX_MAX = 64 };

typedef struct job {
    const m3_fetch_file_spec *spec;
    const char *name;                // spec->name, or spec->alt when the revision lacks spec->name
    char *url;
    char *final_path;                // DIR/name
    char *part_path;                 // DIR/name.part
    uint64_t size;                   // published size, valid when size_known
    bool size_known;
    char sha256[HASH_HEX_MAX + 1];   // expected SHA-256 (hex), "" when the server published none
    char sha1[HASH_HEX_MAX + 1];     // expected git blob SHA-1 (hex), "" when none
    uint64_t have;                   // bytes in name.part before this call's GET
    char got_sha256[HASH_HEX_MAX + 1]; // SHA-256 of the installed file, "" until it is installed
} job;

typedef struct fetch {
    // Resolved options (borrowed from the caller or the environment, except dir).
    const char *endpoint, *repo, *revision, *token;
    char *dir;
    int retries, retry_delay_ms, connect_timeout_s, stall_timeout_s;
    m3_fetch_progress_fn progress;
    void *progress_user;

    CURL *curl;
    struct curl_slist *headers;
    char curl_error[CURL_ERROR_SIZE];

    // What the header callback saw in the current request. Response 0 is the first one, where the
    // hub puts X-Linked-Etag / X-Linked-Size before redirecting to its CDN.
    int response;                    // index of the current response, -1 before the first
    int code;                        // its HTTP status
    char linked_etag[96];
    uint64_t linked_size;
    bool has_linked_size;
    char etag[96];                   // ETag of the first 2xx response
    uint64_t content_length;         // of the latest response
    bool has_content_length;
    int64_t range_start;             // Content-Range start of the latest response, -1 when none

    // The GET in progress.
    job *cur;
    int fd;
    EVP_MD_CTX *sha256, *sha1;
    uint64_t file_done;
    bool body_started;
    int write_errno;                 // a failed write(2), or EFBIG when more bytes came than published
    bool range_mismatch;
    bool cancelled;

    // Progress over the whole call.
    m3_fetch_event event;
    uint64_t done_others;            // bytes of the jobs before cur (complete) and after it (.part)
    uint64_t total;
    double rate;
    double rate_t;                   // time of the last rate sample
    uint64_t rate_bytes;             // done at that time
    double last_report;
} fetch;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {}
}

// "2.27 GB" style, for messages.
static const char *human(uint64_t bytes, char buf[32])
{
    static const char *const units[] = {"bytes", "kB", "MB", "GB", "TB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1000.0 && u < 4) v /= 1000.0, u++;
    if (u == 0)
        snprintf(buf, 32, "%" PRIu64 " bytes", bytes);
    else
        snprintf(buf, 32, "%.*f %s", v < 10 ? 2 : v < 100 ? 1 : 0, v, units[u]);
    return buf;
}

// Calls the user's progress callback; returns true when it asks to cancel.
static bool report(fetch *f, m3_fetch_event event, const char *message, unsigned retry_in_ms, unsigned attempt)
{
    const char *checked = NULL;
    if (event == M3_FETCH_EVENT_DONE)
        checked = f->cur->sha256[0] ? "SHA-256" : f->cur->sha1[0] && f->cur->size_known ? "git SHA-1" : "size";
    uint64_t done = f->done_others + f->file_done;
    double t = now_s();
    if (f->rate_t == 0) {
        f->rate_t = t;
        f->rate_bytes = done;
    } else if (t - f->rate_t >= 0.5) {
        double inst = done >= f->rate_bytes ? (double)(done - f->rate_bytes) / (t - f->rate_t) : 0;
        f->rate = f->rate > 0 ? 0.7 * f->rate + 0.3 * inst : inst;
        f->rate_t = t;
        f->rate_bytes = done;
    }
    if (!f->progress) return false;
    m3_fetch_progress p = {
        .event = event,
        .file = f->cur ? f->cur->name : "",
        .message = message,
        .checked = checked,
        .retry_in_ms = retry_in_ms,
        .attempt = attempt,
        .file_done = f->file_done,
        .file_total = f->cur && f->cur->size_known ? f->cur->size : 0,
        .done = done,
        .total = f->total,
        .rate = f->rate,
        .eta_s = f->rate > 0 && f->total >= done ? (double)(f->total - done) / f->rate : -1,
    };
    if (f->progress(&p, f->progress_user) != 0) f->cancelled = true;
    return f->cancelled;
}

static int on_xferinfo(void *user, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
    (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
    fetch *f = user;
    return report(f, f->event, NULL, 0, 0) ? 1 : 0;
}

// Copies an ETag value without W/ and quotes, lowercased; "" when it is not plain hex.
static void etag_value(const char *v, size_t n, char *out, size_t cap)
{
    if (n >= 2 && (v[0] == 'W' || v[0] == 'w') && v[1] == '/') v += 2, n -= 2;
    while (n > 0 && v[0] == '"') v++, n--;
    while (n > 0 && v[n - 1] == '"') n--;
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < cap; i++) out[k++] = v[i];
    out[k] = '\0';
    for (size_t i = 0; i < k; i++) {
        char c = out[i];
        if (c >= 'A' && c <= 'F') out[i] = (char)(c - 'A' + 'a');
    }
}

static bool parse_u64(const char *v, size_t n, uint64_t *out)
{
    uint64_t x = 0;
    size_t i = 0;
    for (; i < n && v[i] >= '0' && v[i] <= '9'; i++) {
        if (x > (UINT64_MAX - 9) / 10) return false;
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    if (i == 0) return false;
    *out = x;
    return true;
}

static size_t on_header(char *data, size_t size, size_t n, void *user)
{
    fetch *f = user;
    size_t len = size * n;
    if (len >= 5 && !memcmp(data, "HTTP/", 5)) {
        const char *sp = memchr(data, ' ', len);
        int code = sp && (size_t)(sp - data) + 4 <= len ? atoi(sp + 1) : 0;
        if (code >= 200) {  // 1xx interim responses are not responses of the chain
            f->response++;
            f->has_content_length = false;
            f->range_start = -1;
            f->body_started = false;
            f->code = code;
        }
        return len;
    }
    const char *colon = memchr(data, ':', len);
    if (!colon) return len;
    size_t name_len = (size_t)(colon - data);
    const char *v = colon + 1;
    size_t vn = len - name_len - 1;
    while (vn > 0 && (v[0] == ' ' || v[0] == '\t')) v++, vn--;
    while (vn > 0 && (v[vn - 1] == '\r' || v[vn - 1] == '\n' || v[vn - 1] == ' ')) vn--;
#define IS(name) (name_len == sizeof(name) - 1 && !strncasecmp(data, name, name_len))
    int code = f->code;
    if (IS("x-linked-etag")) {
        if (!f->linked_etag[0]) etag_value(v, vn, f->linked_etag, sizeof f->linked_etag);
    } else if (IS("x-linked-size")) {
        if (!f->has_linked_size) f->has_linked_size = parse_u64(v, vn, &f->linked_size);
    } else if (IS("etag")) {
        // Only the first successful response's ETag describes the file itself; a CDN's is opaque.
        if (!f->etag[0] && code >= 200 && code < 300) etag_value(v, vn, f->etag, sizeof f->etag);
    } else if (IS("content-length")) {
        f->has_content_length = parse_u64(v, vn, &f->content_length);
    } else if (IS("content-range")) {
        uint64_t start;
        if (vn > 6 && !strncasecmp(v, "bytes ", 6) && parse_u64(v + 6, vn - 6, &start)) f->range_start = (int64_t)start;
    }
#undef IS
    return len;
}

static void hash_reset(fetch *f)
{
    EVP_DigestInit_ex(f->sha256, EVP_sha256(), NULL);
    EVP_DigestInit_ex(f->sha1, EVP_sha1(), NULL);
    if (f->cur->sha1[0] && f->cur->size_known) {
        // git's blob id: SHA-1 of "blob <size>\0" followed by the content.
        char head[40];
        int n = snprintf(head, sizeof head, "blob %" PRIu64, f->cur->size);
        EVP_DigestUpdate(f->sha1, head, (size_t)n + 1);
    }
}

static void hash_update(fetch *f, const void *p, size_t n)
{
    EVP_DigestUpdate(f->sha256, p, n);
    if (f->cur->sha1[0]) EVP_DigestUpdate(f->sha1, p, n);
}

static void hash_hex(EVP_MD_CTX *ctx, char out[HASH_HEX_MAX + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(ctx, md, &n);
    for (unsigned i = 0; i < n && 2 * i + 2 <= HASH_HEX_MAX; i++) snprintf(out + 2 * i, 3, "%02x", md[i]);
    out[2 * n] = '\0';
}

static size_t on_write(char *data, size_t size, size_t n, void *user)
{
    fetch *f = user;
    size_t len = size * n;
    if (!f->body_started) {
        f->body_started = true;
        long code = 0;
        curl_easy_getinfo(f->curl, CURLINFO_RESPONSE_CODE, &code);
        if (code == 200 && f->file_done > 0) {
            // The server ignored the Range: start over.
            if (ftruncate(f->fd, 0) != 0) {
                f->write_errno = errno;
                return 0;
            }
            f->file_done = 0;
            hash_reset(f);
        } else if (code == 206 && f->range_start != (int64_t)f->file_done) {
            f->range_mismatch = true;
            return 0;
        }
    }
    if (f->cur->size_known && f->file_done + len > f->cur->size) {
        f->write_errno = EFBIG;  // more bytes than published: the file is not the one we checked
        return 0;
    }
    for (size_t off = 0; off < len;) {
        ssize_t w = write(f->fd, data + off, len - off);
        if (w < 0) {
            if (errno == EINTR) continue;
            f->write_errno = errno;
            // Keep the hash in step with what reached the disk so that a retry could go on; the
            // caller stops anyway, and the next call re-reads the .part.
            return 0;
        }
        hash_update(f, data + off, (size_t)w);
        f->file_done += (uint64_t)w;
        off += (size_t)w;
    }
    return len;
}

static bool transient_curl(CURLcode c)
{
    switch (c) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_SSL_CONNECT_ERROR:
        return true;
    default:
        return false;
    }
}

static bool transient_http(long code)
{
    return code >= 500 || code == 429 || code == 408;
}

// Runs the prepared request with retries. Returns M3_STATUS_OK, or an error already recorded in
// err; *http gets the final HTTP status (0 without one). On 404 no error is recorded when
// quiet_404 (the caller may try another name) and M3_STATUS_NOT_FOUND is returned.
static m3_status perform(fetch *f, job *j, bool is_get, bool quiet_404, long *http, m3_error *err)
{
    unsigned attempt = 0;
    int delay = f->retry_delay_ms;
    bool restarted = false;
    for (;;) {
        attempt++;
        f->response = -1;
        f->linked_etag[0] = f->etag[0] = '\0';
        f->has_linked_size = f->has_content_length = false;
        f->range_start = -1;
        f->body_started = false;
        f->curl_error[0] = '\0';
        uint64_t before = f->file_done;
        if (is_get) curl_easy_setopt(f->curl, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)f->file_done);

        CURLcode c = curl_easy_perform(f->curl);
        long code = 0;
        curl_easy_getinfo(f->curl, CURLINFO_RESPONSE_CODE, &code);
        *http = code;
        if (c == CURLE_OK) return M3_STATUS_OK;

        if (f->cancelled || c == CURLE_ABORTED_BY_CALLBACK)
            return m3_error_set(err, M3_STATUS_IO, ECANCELED, "cancelled%s%s%s", is_get ? "; " : "",
                                is_get ? j->part_path : "", is_get ? " is kept for resuming" : "");
        if (f->write_errno) {
            int e = f->write_errno;
            char a[32], b[32];
            if (e == ENOSPC || e == EFBIG || e == EDQUOT) {
                uint64_t need = j->size_known && j->size > f->file_done ? j->size - f->file_done : 0;
                if (e == EFBIG && j->size_known && f->file_done >= j->size)
                    return m3_error_set(err, M3_STATUS_FORMAT, e,
                                        "%s: the server sent more than the published %s; nothing was installed — "
                                        "check the endpoint (a mirror serving another file?)",
                                        j->url, human(j->size, a));
                return m3_error_set(err, M3_STATUS_IO, e,
                                    "cannot write %s: %s; %s more needed in %s (total %s) — free space and run "
                                    "again to resume",
                                    j->part_path, strerror(e), human(need, a), f->dir, human(f->total, b));
            }
            return m3_error_errno(err, e, "cannot write", j->part_path);
        }
        if (f->range_mismatch)
            return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: the server answered a Range request with another range",
                                j->url);

        if (is_get && f->file_done > 0 && !restarted &&
            (c == CURLE_RANGE_ERROR || (c == CURLE_HTTP_RETURNED_ERROR && code == 416))) {
            // The server cannot resume (no Range support), or our .part does not fit the file any
            // more (it changed upstream): start the file over, once.
            if (ftruncate(f->fd, 0) != 0) return m3_error_errno(err, errno, "cannot truncate", j->part_path);
            f->file_done = 0;
            hash_reset(f);
            restarted = true;
            attempt = 0;
            continue;
        }
        bool transient;
        char what[CURL_ERROR_SIZE + 64];
        if (c == CURLE_HTTP_RETURNED_ERROR) {
            if (code == 404) {
                if (quiet_404) return M3_STATUS_NOT_FOUND;
                return m3_error_set(err, M3_STATUS_NOT_FOUND, 404,
                                    "%s not found at %s (check --revision / the endpoint)", j->name, j->url);
            }
            if (code == 401 || code == 403)
                return m3_error_set(err, M3_STATUS_IO, (int)code,
                                    "access denied to %s (HTTP %ld): set HF_TOKEN to a token with access to %s, "
                                    "or check the endpoint",
                                    j->url, code, f->repo);
            transient = transient_http(code);
            snprintf(what, sizeof what, "HTTP %ld", code);
        } else {
            transient = transient_curl(c);
            snprintf(what, sizeof what, "%s", f->curl_error[0] ? f->curl_error : curl_easy_strerror(c));
        }
        // A try that moved the download forward is progress, not failure: the count starts over.
        if (is_get && f->file_done > before) {
            attempt = 1;
            delay = f->retry_delay_ms;
        }
        if (!transient || (int)attempt > f->retries) {
            if (transient)
                return m3_error_set(err, M3_STATUS_IO, c == CURLE_HTTP_RETURNED_ERROR ? (int)code : (int)c,
                                    "%s: %s after %u tries; the server or network is failing — run again later%s",
                                    j->url, what, attempt, is_get ? " to resume" : "");
            return m3_error_set(err, M3_STATUS_IO, c == CURLE_HTTP_RETURNED_ERROR ? (int)code : (int)c,
                                "%s: %s (check the endpoint, the network or the proxy settings)", j->url, what);
        }
        char msg[CURL_ERROR_SIZE + 600];
        snprintf(msg, sizeof msg, "%s: %s", j->name, what);
        if (report(f, M3_FETCH_EVENT_RETRY, msg, (unsigned)delay, attempt))
            return m3_error_set(err, M3_STATUS_IO, ECANCELED, "cancelled");
        // Sleep in slices so that cancellation stays prompt during a long back-off.
        for (int left = delay; left > 0; left -= 200) {
            sleep_ms(left < 200 ? (unsigned)left : 200);
            if (report(f, is_get ? M3_FETCH_EVENT_PROGRESS : M3_FETCH_EVENT_CHECK, NULL, 0, 0))
                return m3_error_set(err, M3_STATUS_IO, ECANCELED, "cancelled%s%s%s", is_get ? "; " : "",
                                    is_get ? j->part_path : "",
                                    is_get ? " is kept for resuming" : "");
        }
        delay = delay > 30000 ? 60000 : delay * 2;
    }
}

static char *make_url(const fetch *f, const char *name)
{
    size_t n = strlen(f->endpoint) + strlen(f->repo) + strlen(f->revision) + strlen(name) + 16;
    char *u = malloc(n);
    if (u) snprintf(u, n, "%s/%s/resolve/%s/%s", f->endpoint, f->repo, f->revision, name);
    return u;
}

static bool is_hex(const char *s, size_t n)
{
    if (strlen(s) != n) return false;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) return false;
    return true;
}

static m3_status job_set_name(fetch *f, job *j, const char *name, m3_error *err)
{
    free(j->url), free(j->final_path), free(j->part_path);
    j->name = name;
    j->url = make_url(f, name);
    j->final_path = m3_fetch_path_join(f->dir, name);
    size_t n = strlen(f->dir) + strlen(name) + 8;
    j->part_path = malloc(n);
    if (!j->url || !j->final_path || !j->part_path) return m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
    snprintf(j->part_path, n, "%s/%s.part", f->dir, name);
    return M3_STATUS_OK;
}

// HEAD: the published size and checksum of j (trying spec->alt after a 404).
static m3_status check(fetch *f, job *j, m3_error *err)
{
    f->cur = j;
    f->file_done = 0;
    f->event = M3_FETCH_EVENT_CHECK;
    for (int k = 0; k < 2; k++) {
        const char *name = k == 0 ? j->spec->name : j->spec->alt;
        m3_status st = job_set_name(f, j, name, err);
        if (st != M3_STATUS_OK) return st;
        if (report(f, M3_FETCH_EVENT_CHECK, NULL, 0, 0)) return m3_error_set(err, M3_STATUS_IO, ECANCELED, "cancelled");
        curl_easy_setopt(f->curl, CURLOPT_URL, j->url);
        curl_easy_setopt(f->curl, CURLOPT_NOBODY, 1L);
        curl_easy_setopt(f->curl, CURLOPT_RESUME_FROM_LARGE, (curl_off_t)0);
        long http;
        bool try_alt = k == 0 && j->spec->alt;
        st = perform(f, j, false, try_alt || j->spec->optional, &http, err);
        if (st == M3_STATUS_NOT_FOUND && try_alt) continue;
        if (st == M3_STATUS_NOT_FOUND && j->spec->optional) {
            // Not published (a mirror with only the encoder's files): nothing to fetch.
            free(j->url), free(j->final_path), free(j->part_path);
            j->url = j->final_path = j->part_path = NULL;
            return M3_STATUS_OK;
        }
        if (st != M3_STATUS_OK) {
            if (st == M3_STATUS_NOT_FOUND && k == 1)
                return m3_error_set(err, st, 404, "neither %s nor %s found at %s/%s/resolve/%s/ (check --revision / the endpoint)",
                                    j->spec->name, j->spec->alt, f->endpoint, f->repo, f->revision);
            return st;
        }
        break;
    }
    if (is_hex(f->linked_etag, 64)) {
        memcpy(j->sha256, f->linked_etag, 65);
    } else if (!f->linked_etag[0]) {
        if (is_hex(f->etag, 64))
            memcpy(j->sha256, f->etag, 65);
        else if (is_hex(f->etag, 40))
            memcpy(j->sha1, f->etag, 41);
    }
    if (f->has_linked_size) {
        j->size = f->linked_size, j->size_known = true;
    } else if (f->has_content_length) {
        j->size = f->content_length, j->size_known = true;
    }
    struct stat st;
    j->have = stat(j->part_path, &st) == 0 ? (uint64_t)st.st_size : 0;
    if (j->size_known && j->have > j->size) j->have = 0;  // a stale .part of another file: restarted
    return M3_STATUS_OK;
}

static m3_status check_space(fetch *f, job *jobs, size_t n, m3_error *err)
{
    uint64_t need = 0;
    for (size_t i = 0; i < n; i++)
        if (jobs[i].url && jobs[i].size_known) need += jobs[i].size - jobs[i].have;
    struct statvfs vfs;
    if (statvfs(f->dir, &vfs) != 0) return m3_error_errno(err, errno, "cannot query free space of", f->dir);
    uint64_t avail = (uint64_t)vfs.f_bavail * (uint64_t)vfs.f_frsize;
    if (need > avail) {
        char a[32], b[32];
        return m3_error_set(err, M3_STATUS_IO, ENOSPC,
                            "not enough free space in %s: %s (%" PRIu64 " bytes) needed, %s available — free space "
                            "or choose another folder with --dir",
                            f->dir, human(need, a), need, human(avail, b));
    }
    return M3_STATUS_OK;
}

// Hashes what an existing .part already holds, so that the resumed download is checked whole.
static m3_status hash_part(fetch *f, job *j, m3_error *err)
{
    enum { BUF = 1 << 16 };
    unsigned char *buf = malloc(BUF);
    if (!buf) return m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
    m3_status st = M3_STATUS_OK;
    uint64_t left = f->file_done;
    while (left > 0) {
        ssize_t r = read(f->fd, buf, left < BUF ? (size_t)left : BUF);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            st = m3_error_errno(err, r < 0 ? errno : EIO, "cannot read", j->part_path);
            break;
        }
        hash_update(f, buf, (size_t)r);
        left -= (uint64_t)r;
    }
    free(buf);
    return st;
}

static m3_status fsync_dir(const char *dir, m3_error *err)
{
    int d = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (d < 0) return m3_error_errno(err, errno, "cannot open", dir);
    int r = fsync(d);
    int e = errno;
    close(d);
    return r == 0 || e == EINVAL ? M3_STATUS_OK : m3_error_errno(err, e, "cannot sync", dir);
}

// GET: fetch j into j->part_path (resuming), verify it, rename it into place.
static m3_status download(fetch *f, job *j, m3_error *err)
{
    f->cur = j;
    f->write_errno = 0;
    f->range_mismatch = false;
    f->fd = open(j->part_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (f->fd < 0) return m3_error_errno(err, errno, "cannot create", j->part_path);
    // O_APPEND gives no read access: reopen for hashing what is there.
    m3_status st = M3_STATUS_OK;
    struct stat sb;
    if (fstat(f->fd, &sb) != 0) {
        st = m3_error_errno(err, errno, "cannot stat", j->part_path);
        goto out;
    }
    f->file_done = (uint64_t)sb.st_size;
    if (j->size_known && f->file_done > j->size) {
        if (ftruncate(f->fd, 0) != 0) {
            st = m3_error_errno(err, errno, "cannot truncate", j->part_path);
            goto out;
        }
        f->file_done = 0;
    }
    hash_reset(f);
    if (f->file_done > 0) {
        int rfd = open(j->part_path, O_RDONLY | O_CLOEXEC);
        if (rfd < 0) {
            st = m3_error_errno(err, errno, "cannot read", j->part_path);
            goto out;
        }
        int wfd = f->fd;
        f->fd = rfd;
        st = hash_part(f, j, err);
        f->fd = wfd;
        close(rfd);
        if (st != M3_STATUS_OK) goto out;
    }
    f->done_others -= j->have;  // counted in file_done from now on
    j->have = f->file_done;
    f->event = M3_FETCH_EVENT_PROGRESS;
    if (report(f, M3_FETCH_EVENT_START, NULL, 0, 0)) {
        st = m3_error_set(err, M3_STATUS_IO, ECANCELED, "cancelled; %s is kept for resuming",
                          j->part_path);
        goto out;
    }
    if (!j->size_known || f->file_done < j->size) {
        curl_easy_setopt(f->curl, CURLOPT_URL, j->url);
        curl_easy_setopt(f->curl, CURLOPT_NOBODY, 0L);
        curl_easy_setopt(f->curl, CURLOPT_HTTPGET, 1L);
        long http;
        st = perform(f, j, true, false, &http, err);
        if (st != M3_STATUS_OK) goto out;
    }

    char a[32], b[32];
    if (j->size_known && f->file_done != j->size) {
        unlink(j->part_path);
        st = m3_error_set(err, M3_STATUS_FORMAT, 0,
                          "%s: got %s, the server publishes %s; the download was removed and nothing installed — "
                          "run again, or check the endpoint",
                          j->url, human(f->file_done, a), human(j->size, b));
        goto out;
    }
    // The SHA-256 of what was received is always computed: it goes to SHA256SUMS (write_sums).
    char got[HASH_HEX_MAX + 1];
    hash_hex(f->sha256, got);
    if (j->sha256[0]) {
        if (strcmp(got, j->sha256) != 0) {
            unlink(j->part_path);
            st = m3_error_set(err, M3_STATUS_FORMAT, 0,
                              "%s: SHA-256 mismatch (got %s, %s publishes %s); the download was removed and "
                              "nothing installed — run again, or check the endpoint / mirror",
                              j->name, got, j->url, j->sha256);
            goto out;
        }
    } else if (j->sha1[0] && j->size_known) {
        char got_sha1[HASH_HEX_MAX + 1];
        hash_hex(f->sha1, got_sha1);
        if (strcmp(got_sha1, j->sha1) != 0) {
            unlink(j->part_path);
            st = m3_error_set(err, M3_STATUS_FORMAT, 0,
                              "%s: git blob SHA-1 mismatch (got %s, %s publishes %s); the download was removed "
                              "and nothing installed — run again, or check the endpoint / mirror",
                              j->name, got_sha1, j->url, j->sha1);
            goto out;
        }
    }
    if (fsync(f->fd) != 0) {
        st = m3_error_errno(err, errno, "cannot sync", j->part_path);
        goto out;
    }
    close(f->fd);
    f->fd = -1;
    if (rename(j->part_path, j->final_path) != 0) {
        st = m3_error_errno(err, errno, "cannot rename into place", j->final_path);
        goto out;
    }
    st = fsync_dir(f->dir, err);
    if (st != M3_STATUS_OK) goto out;
    memcpy(j->got_sha256, got, sizeof got);
    f->done_others += f->file_done;
    report(f, M3_FETCH_EVENT_DONE, NULL, 0, 0);
    f->file_done = 0;
out:
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
    return st;
}

// ---- DIR/SHA256SUMS ----

typedef struct sum_entry {
    char hex[HASH_HEX_MAX + 1];
    char name[256];
} sum_entry;

// Reads the "<64 hex>  <name>" lines of an existing SHA256SUMS (others are dropped); returns the count.
static size_t read_sums(const char *path, sum_entry *out, size_t cap)
{
    FILE *in = fopen(path, "r");
    if (!in) return 0;
    char line[512];
    size_t n = 0;
    while (n < cap && fgets(line, sizeof line, in)) {
        size_t len = strcspn(line, "\r\n");
        line[len] = '\0';
        if (len <= 66 || line[64] != ' ' || line[65] != ' ' || len - 66 >= sizeof out[n].name) continue;
        line[64] = '\0';
        if (!is_hex(line, 64) || strchr(line + 66, '/')) continue;
        memcpy(out[n].hex, line, 65);
        memcpy(out[n].name, line + 66, len - 66 + 1);  // fits: checked above
        n++;
    }
    fclose(in);
    return n;
}

// Records the SHA-256 of every file installed in DIR, in sha256sum's format, so that
// `m3 model verify DIR` (and `sha256sum -c`) can check the folder later: the files installed by this
// call (jobs with got_sha256) and those an earlier call recorded that are still there. Written to
// SHA256SUMS.tmp, synced and renamed: the file is either the old list or the whole new one.
static m3_status write_sums(fetch *f, const job *jobs, size_t njobs, m3_error *err)
{
    char *path = m3_fetch_path_join(f->dir, "SHA256SUMS");
    char *tmp = m3_fetch_path_join(f->dir, "SHA256SUMS.tmp");
    sum_entry old[32], list[32];
    size_t n_old = path ? read_sums(path, old, sizeof old / sizeof old[0]) : 0, n = 0;
    m3_status st = M3_STATUS_OK;
    if (!path || !tmp) {
        st = m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < njobs && n < sizeof list / sizeof list[0]; i++) {
        const char *name = m3_fetch_present_name(f->dir, jobs[i].spec);
        if (!name) continue;
        const char *hex = NULL;
        if (jobs[i].got_sha256[0] && !strcmp(jobs[i].name, name)) hex = jobs[i].got_sha256;
        for (size_t k = 0; !hex && k < n_old; k++)
            if (!strcmp(old[k].name, name)) hex = old[k].hex;
        if (!hex) continue;  // present but not verified by us (e.g. copied in by hand): not vouched for
        if (strlen(name) >= sizeof list[n].name) continue;
        memcpy(list[n].hex, hex, HASH_HEX_MAX + 1);
        memcpy(list[n].name, name, strlen(name) + 1);
        n++;
    }
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        st = m3_error_errno(err, errno, "cannot create", tmp);
        goto out;
    }
    FILE *w = fdopen(fd, "w");
    if (!w) {
        st = m3_error_errno(err, errno, "cannot write", tmp);
        close(fd);
        goto out;
    }
    for (size_t i = 0; i < n; i++) fprintf(w, "%s  %s\n", list[i].hex, list[i].name);
    bool ok = fflush(w) == 0 && !ferror(w) && fsync(fd) == 0;
    int e = errno;
    if (fclose(w) != 0 && ok) ok = false, e = errno;
    if (!ok) {
        st = m3_error_errno(err, e, "cannot write", tmp);
        unlink(tmp);
        goto out;
    }
    if (rename(tmp, path) != 0) {
        st = m3_error_errno(err, errno, "cannot rename into place", path);
        unlink(tmp);
        goto out;
    }
    st = fsync_dir(f->dir, err);
out:
    free(path);
    free(tmp);
    return st;
}

static m3_status setup_curl(fetch *f, m3_error *err)
{
    f->curl = curl_easy_init();
    if (!f->curl) return m3_error_set(err, M3_STATUS_NOMEM, 0, "cannot start libcurl");
    if (f->token && f->token[0]) {
        size_t n = strlen(f->token) + 32;
        char *h = malloc(n);
        if (!h) return m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
        snprintf(h, n, "Authorization: Bearer %s", f->token);
        f->headers = curl_slist_append(NULL, h);
        // The header held the secret: wipe our copy.
        memset(h, 0, n);
        free(h);
        if (!f->headers) return m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
    }
    CURL *c = f->curl;
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, f->headers);  // libcurl drops Authorization on cross-host redirects
    curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
    curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(c, CURLOPT_FAILONERROR, 1L);
    curl_easy_setopt(c, CURLOPT_USERAGENT, "m3search (libcurl)");
    curl_easy_setopt(c, CURLOPT_ERRORBUFFER, f->curl_error);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, (long)f->connect_timeout_s);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1024L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, (long)f->stall_timeout_s);
    curl_easy_setopt(c, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, f);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, f);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_xferinfo);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, f);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // thread-safe timeouts; SIGINT stays the caller's
    return M3_STATUS_OK;
}

// Optional files do not count: a folder from a mirror without them is complete.
static bool dir_complete(const char *dir)
{
    for (size_t i = 0; i < m3_fetch_file_count; i++)
        if (!m3_fetch_files[i].optional && !m3_fetch_present_name(dir, &m3_fetch_files[i])) return false;
    return true;
}

m3_status m3_fetch_model(const m3_fetch_options *opts, char **model_dir, bool *from_cache, m3_error *err)
{
    M3_ASSERT(model_dir);
    *model_dir = NULL;
    if (from_cache) *from_cache = false;
    m3_fetch_options none = {0};
    const m3_fetch_options *o = opts ? opts : &none;

    fetch f = {.fd = -1};
    const char *env_endpoint = getenv("HF_ENDPOINT");
    f.endpoint = o->endpoint ? o->endpoint : env_endpoint && env_endpoint[0] ? env_endpoint : "https://huggingface.co";
    f.repo = o->repo ? o->repo : "BAAI/bge-m3";
    f.revision = o->revision ? o->revision : "main";
    f.token = o->token ? o->token : getenv("HF_TOKEN");
    f.retries = o->retries == 0 ? 5 : o->retries < 0 ? 0 : o->retries;
    f.retry_delay_ms = o->retry_delay_ms == 0 ? 1000 : o->retry_delay_ms < 0 ? 0 : o->retry_delay_ms;
    f.connect_timeout_s = o->connect_timeout_s > 0 ? o->connect_timeout_s : 30;
    f.stall_timeout_s = o->stall_timeout_s > 0 ? o->stall_timeout_s : 60;
    f.progress = o->progress;
    f.progress_user = o->progress_user;

    if (strncmp(f.endpoint, "https://", 8) != 0 && strncmp(f.endpoint, "http://", 7) != 0)
        return m3_error_set(err, M3_STATUS_INVALID, 0, "endpoint %s: expected an http:// or https:// URL", f.endpoint);
    size_t el = strlen(f.endpoint);
    char *endpoint = NULL;
    if (el > 0 && f.endpoint[el - 1] == '/') {  // "https://hf-mirror.com/" is a common way to write it
        endpoint = strndup(f.endpoint, el - 1);
        if (!endpoint) return m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
        f.endpoint = endpoint;
    }
    if (!f.revision[0] || strstr(f.revision, "..") || strpbrk(f.revision, " ?#%"))
        return free(endpoint), m3_error_set(err, M3_STATUS_INVALID, 0, "revision '%s': not a branch, tag or commit", f.revision);

    if (o->dir && !o->dir[0])
        return free(endpoint), m3_error_set(err, M3_STATUS_INVALID, 0, "the model folder (--dir) is empty");
    m3_status st;
    if (o->dir) {
        f.dir = strdup(o->dir);
        st = f.dir ? M3_STATUS_OK : m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
    } else {
        st = m3_fetch_default_dir(&f.dir, err);
    }
    if (st != M3_STATUS_OK) return free(endpoint), st;

    // 1. Already complete here, 2. complete in the hub cache: no request at all.
    if (dir_complete(f.dir)) {
        *model_dir = f.dir;
        free(endpoint);
        return M3_STATUS_OK;
    }
    char *snapshot = NULL;
    if (m3_fetch_find_cached(o->hf_cache, f.repo, f.revision, &snapshot, NULL) == M3_STATUS_OK) {
        *model_dir = snapshot;
        if (from_cache) *from_cache = true;
        free(f.dir);
        free(endpoint);
        return M3_STATUS_OK;
    }

    // 3. Download what is missing.
    job jobs[16] = {0};
    size_t njobs = m3_fetch_file_count;
    M3_ASSERT(njobs <= sizeof jobs / sizeof jobs[0]);
    int lock = -1;
    bool curl_inited = false;
    st = m3_fetch_mkdirs(f.dir, err);
    if (st != M3_STATUS_OK) goto out;
    char *lock_path = m3_fetch_path_join(f.dir, ".m3-fetch.lock");
    if (!lock_path) {
        st = m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
        goto out;
    }
    lock = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    free(lock_path);
    if (lock < 0) {
        st = m3_error_errno(err, errno, "cannot create a lock file in", f.dir);
        goto out;
    }
    if (flock(lock, LOCK_EX | LOCK_NB) != 0) {
        st = m3_error_set(err, M3_STATUS_IO, EBUSY, "another download into %s is running; wait for it to finish",
                          f.dir);
        goto out;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        st = m3_error_set(err, M3_STATUS_IO, 0, "cannot initialise libcurl");
        goto out;
    }
    curl_inited = true;
    f.sha256 = EVP_MD_CTX_new();
    f.sha1 = EVP_MD_CTX_new();
    if (!f.sha256 || !f.sha1) {
        st = m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
        goto out;
    }
    st = setup_curl(&f, err);
    if (st != M3_STATUS_OK) goto out;

    for (size_t i = 0; i < njobs; i++) {
        jobs[i].spec = &m3_fetch_files[i];
        if (m3_fetch_present_name(f.dir, jobs[i].spec)) continue;  // installed by an earlier run
        st = check(&f, &jobs[i], err);
        if (st != M3_STATUS_OK) goto out;
        if (jobs[i].size_known) f.total += jobs[i].size;
        f.done_others += jobs[i].have;
    }
    st = check_space(&f, jobs, njobs, err);
    if (st != M3_STATUS_OK) goto out;
    for (size_t i = 0; i < njobs; i++) {
        if (!jobs[i].url) continue;
        st = download(&f, &jobs[i], err);
        if (st != M3_STATUS_OK) goto out;
        // After each file, so that an interrupted download keeps what it verified.
        st = write_sums(&f, jobs, njobs, err);
        if (st != M3_STATUS_OK) goto out;
    }
    *model_dir = f.dir;
    f.dir = NULL;
out:
    for (size_t i = 0; i < njobs; i++) free(jobs[i].url), free(jobs[i].final_path), free(jobs[i].part_path);
    if (f.curl) curl_easy_cleanup(f.curl);
    curl_slist_free_all(f.headers);
    EVP_MD_CTX_free(f.sha256);
    EVP_MD_CTX_free(f.sha1);
    if (curl_inited) curl_global_cleanup();
    if (lock >= 0) close(lock);
    free(f.dir);
    free(endpoint);
    return st;
}
