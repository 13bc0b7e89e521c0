// SPDX-License-Identifier: MIT
//
// The parent's side of the extraction sandbox: starts the helper, sends it documents, checks its
// replies, enforces the timeouts and restarts it after a failure (see sandbox.h; the helper's side
// is sandbox-serve.c).
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "extract/sandbox-protocol.h"
#include "extract/sandbox.h"

extern char **environ;

enum { START_TIMEOUT_S = 20, EXIT_WAIT_MS = 2000 };

struct m3_sandbox {
    m3_sandbox_options opt;
    pid_t pid;            // 0: none running
    int to_fd, from_fd;   // our ends of its stdin and stdout (non-blocking)
    bool have_cpu_clock;  // its CPU clock and RLIMIT_CPU (see move_cpu_limit)
    clockid_t cpu_clock;
    struct rlimit cpu_limit;
};

// Set when a write met a closed pipe: the SIGPIPE it raised is pending (see pipe_guard).
static _Thread_local bool pipe_broken;

m3_sandbox_options m3_sandbox_options_default(void)
{
    return (m3_sandbox_options){
        .argv = NULL,
        .memory_limit = (uint64_t)2 << 30,
        .timeout_s = 30,
        .timeout_per_mb_s = 1,
        .max_text = (uint64_t)256 << 20,
    };
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

// ---- I/O with a deadline -----------------------------------------------------------------------

enum { IO_OK = 0, IO_EOF = 1, IO_ERROR = -1, IO_TIMEOUT = -2 };

// Waits until fd is ready for ev or the deadline passes. It looks once more at the deadline: when
// we were stopped (Ctrl-Z) past it, an answer that came meanwhile is taken, not timed out.
static int wait_fd(int fd, short ev, double deadline)
{
    for (;;) {
        double left = deadline - now_s();
        struct pollfd p = {fd, ev, 0};
        int ms = left <= 0 ? 0 : left > 1e6 ? 1000000000 : (int)ceil(left * 1000);
        int r = poll(&p, 1, ms);
        if (r > 0) return IO_OK;  // POLLERR / POLLHUP: the read or write says what happened
        if (r < 0 && errno != EINTR) return IO_ERROR;
        if (r == 0 && left <= 0) return IO_TIMEOUT;
    }
}

static void iov_advance(struct iovec **iov, int *n, size_t done)
{
    while (*n && done >= (*iov)->iov_len) {
        done -= (*iov)->iov_len;
        (*iov)++;
        (*n)--;
    }
    if (*n) {
        (*iov)->iov_base = (char *)(*iov)->iov_base + done;
        (*iov)->iov_len -= done;
    }
}

// Writes all of iov. IO_ERROR with errno EPIPE when the helper has gone.
static int write_iov(int fd, struct iovec *iov, int n, double deadline)
{
    while (n && !iov->iov_len) iov++, n--;
    while (n) {
        ssize_t w = writev(fd, iov, n > 64 ? 64 : n);
        if (w > 0) {
            iov_advance(&iov, &n, (size_t)w);
            while (n && !iov->iov_len) iov++, n--;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && errno == EPIPE) pipe_broken = true;
        if (w < 0 && errno != EAGAIN) return IO_ERROR;
        int r = wait_fd(fd, POLLOUT, deadline);
        if (r != IO_OK) return r;
    }
    return IO_OK;
}

// Reads exactly all of iov; IO_EOF when the helper closed its end first. wait_first: poll before
// the first read (the answer to what was just sent cannot be there yet).
static int read_iov(int fd, struct iovec *iov, int n, double deadline, bool wait_first)
{
    while (n && !iov->iov_len) iov++, n--;
    if (n && wait_first) {
        int w = wait_fd(fd, POLLIN, deadline);
        if (w != IO_OK) return w;
    }
    while (n) {
        ssize_t r = readv(fd, iov, n > 64 ? 64 : n);
        if (r > 0) {
            iov_advance(&iov, &n, (size_t)r);
            while (n && !iov->iov_len) iov++, n--;
            continue;
        }
        if (r == 0) return IO_EOF;
        if (errno == EINTR) continue;
        if (errno != EAGAIN) return IO_ERROR;
        int w = wait_fd(fd, POLLIN, deadline);
        if (w != IO_OK) return w;
    }
    return IO_OK;
}

// ---- the helper's life ----------------------------------------------------------------------------

static void close_fds(m3_sandbox *sb)
{
    if (sb->to_fd >= 0) close(sb->to_fd);
    if (sb->from_fd >= 0) close(sb->from_fd);
    sb->to_fd = sb->from_fd = -1;
}

// Waits up to wait_ms for the helper to end, then kills it; reaps it either way. Returns its wait
// status; *killed tells whether we had to kill it.
static int reap(m3_sandbox *sb, int wait_ms, bool *killed)
{
    int status = 0;
    *killed = false;
    if (!sb->pid) return 0;
    for (int waited = 0;; waited++) {
        pid_t r = waitpid(sb->pid, &status, WNOHANG);
        if (r == sb->pid || (r < 0 && errno != EINTR)) break;
        if (r == 0 && waited >= wait_ms) {
            kill(sb->pid, SIGKILL);
            *killed = true;
            while (waitpid(sb->pid, &status, 0) < 0 && errno == EINTR) {}
            break;
        }
        if (r == 0) nanosleep(&(struct timespec){0, 1000000}, NULL);
    }
    sb->pid = 0;
    close_fds(sb);
    return status;
}

static void kill_helper(m3_sandbox *sb)
{
    if (!sb->pid) return;
    kill(sb->pid, SIGKILL);
    bool killed;
    reap(sb, 0x7fffffff, &killed);
}

// Says what became of a helper that ended (closed its output or its input) while working.
static m3_status report_end(m3_sandbox *sb, const char *path, m3_error *err)
{
    bool killed;
    int st = reap(sb, EXIT_WAIT_MS, &killed);
    if (killed)
        return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: the extraction helper closed its pipe and was killed", path);
    if (WIFSIGNALED(st)) {
        int sig = WTERMSIG(st);
        const char *abbrev = sigabbrev_np(sig);
        if (sig == SIGSYS)
            return m3_error_set(err, M3_STATUS_FORMAT, sig,
                                "%s: extractor made a forbidden system call (signal %d, SIGSYS: seccomp)", path, sig);
        if (sig == SIGXCPU)
            return m3_error_set(err, M3_STATUS_LIMIT, sig,
                                "%s: extractor exceeded its CPU time limit (signal %d, SIGXCPU)", path, sig);
        return m3_error_set(err, M3_STATUS_FORMAT, sig, "%s: extractor crashed (signal %d, SIG%s)", path, sig,
                            abbrev ? abbrev : "?");
    }
    return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: extractor exited with status %d", path,
                        WIFEXITED(st) ? WEXITSTATUS(st) : -1);
}

// Blocks SIGPIPE in this thread while it writes to the helper (a write to a dead helper is then
// EPIPE, not the end of the process) and consumes the SIGPIPE such a write left pending.
typedef struct pipe_guard {
    sigset_t set, old;
} pipe_guard;

static void pipe_guard_begin(pipe_guard *g)
{
    sigemptyset(&g->set);
    sigaddset(&g->set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &g->set, &g->old);
}

static void pipe_guard_end(pipe_guard *g)
{
    struct timespec zero = {0, 0};
    if (pipe_broken)
        while (sigtimedwait(&g->set, NULL, &zero) == SIGPIPE) {}
    pipe_broken = false;
    pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

// Copies the message of a reply into a one-line printable string.
static void clean_message(char *s)
{
    for (unsigned char *p = (unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p == 0x7f) *p = '?';
}

static bool printable_name(const char *s, size_t cap)
{
    const char *end = memchr(s, 0, cap);
    if (!end) return false;
    for (const unsigned char *p = (const unsigned char *)s; p < (const unsigned char *)end; p++)
        if (*p < 0x21 || *p > 0x7e) return false;
    return true;
}

static bool known_status(int32_t s)
{
    return s < 0 && strcmp(m3_status_name((m3_status)s), "unknown status") != 0;
}

static m3_status start(m3_sandbox *sb, m3_error *err)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1};
    if (pipe2(in, O_CLOEXEC) != 0 || pipe2(out, O_CLOEXEC) != 0) {
        int e = errno;
        if (in[0] >= 0) close(in[0]), close(in[1]);
        return m3_error_set(err, M3_STATUS_IO, e, "cannot start the extraction helper: pipe: %s", strerror(e));
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawnattr_init(&attr);
    // Its stdin and stdout are the pipes; stderr stays ours (crash reports); nothing else is
    // inherited, CLOEXEC or not.
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    posix_spawn_file_actions_addclosefrom_np(&fa, 3);
#endif
    // Default signal handling, nothing blocked, and a process group of its own: a Ctrl-C meant
    // for us must not kill the helper in the middle of a document and fail that document; the
    // helper dies with us anyway (PR_SET_PDEATHSIG, end of its input).
    sigset_t none, all;
    sigemptyset(&none);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);
    pid_t pid;
    int e = posix_spawn(&pid, sb->opt.argv[0], &fa, &attr, (char *const *)sb->opt.argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(in[0]);
    close(out[1]);
    if (e != 0) {
        close(in[1]);
        close(out[0]);
        return m3_error_set(err, M3_STATUS_IO, e, "cannot start the extraction helper %s: %s", sb->opt.argv[0],
                            strerror(e));
    }
    sb->pid = pid;
    sb->to_fd = in[1];
    sb->from_fd = out[0];
    fcntl(sb->to_fd, F_SETFL, O_NONBLOCK);
    fcntl(sb->from_fd, F_SETFL, O_NONBLOCK);
    // Bigger pipes: fewer round trips for large documents (best effort).
    fcntl(sb->to_fd, F_SETPIPE_SZ, 1 << 20);
    fcntl(sb->from_fd, F_SETPIPE_SZ, 1 << 20);

    m3_sbx_config cfg = {
        .magic = M3_SBX_CONFIG_MAGIC,
        .version = M3_SBX_VERSION,
        .parent_pid = (int32_t)getpid(),
        .memory_limit = sb->opt.memory_limit,
        .cpu_limit_s = (uint64_t)ceil(sb->opt.timeout_s) + 1,
    };
    double deadline = now_s() + START_TIMEOUT_S;
    struct iovec wv = {&cfg, sizeof cfg};
    m3_sbx_reply rep;
    struct iovec rv = {&rep, sizeof rep};
    int w = write_iov(sb->to_fd, &wv, 1, deadline);
    int r = w == IO_OK ? read_iov(sb->from_fd, &rv, 1, deadline, true) : w;
    if (r == IO_TIMEOUT) {
        kill_helper(sb);
        return m3_error_set(err, M3_STATUS_LIMIT, 0, "the extraction helper did not start within %d s",
                            START_TIMEOUT_S);
    }
    if (r != IO_OK) {
        m3_error e2 = {0};
        report_end(sb, sb->opt.argv[0], &e2);
        return m3_error_set(err, M3_STATUS_IO, e2.code, "cannot start the extraction helper: %s", e2.message);
    }
    if (rep.magic != M3_SBX_REPLY_MAGIC || (rep.status != 0 && !known_status(rep.status)) ||
        rep.message_len > M3_SBX_MESSAGE_MAX || rep.text_len || rep.n_anchors || rep.n_marks ||
        (rep.status == 0 && rep.message_len)) {
        kill_helper(sb);
        return m3_error_set(err, M3_STATUS_FORMAT, 0, "cannot start the extraction helper (%s): malformed reply",
                            sb->opt.argv[0]);
    }
    if (rep.status != 0) {
        char msg[M3_SBX_MESSAGE_MAX + 1] = "";
        struct iovec mv = {msg, rep.message_len};
        read_iov(sb->from_fd, &mv, 1, deadline, false);
        msg[rep.message_len] = 0;
        clean_message(msg);
        kill_helper(sb);
        return m3_error_set(err, (m3_status)rep.status, 0, "extraction sandbox: %s", msg);
    }
    // The helper has set its soft RLIMIT_CPU; move_cpu_limit keeps it ahead of each document.
    sb->have_cpu_clock = clock_getcpuclockid(pid, &sb->cpu_clock) == 0 &&
                         prlimit(pid, RLIMIT_CPU, NULL, &sb->cpu_limit) == 0;
    return M3_STATUS_OK;
}

m3_status m3_sandbox_new(const m3_sandbox_options *opt, m3_sandbox **out, m3_error *err)
{
    *out = NULL;
    if (!opt || !opt->argv || !opt->argv[0] || !(opt->timeout_s > 0) || opt->timeout_per_mb_s < 0)
        return m3_error_set(err, M3_STATUS_INVALID, 0, "m3_sandbox_new: no helper command line or bad timeout");
    m3_sandbox *sb = calloc(1, sizeof *sb);
    if (!sb) return m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
    sb->opt = *opt;
    sb->to_fd = sb->from_fd = -1;
    pipe_guard g;
    pipe_guard_begin(&g);
    m3_status s = start(sb, err);
    pipe_guard_end(&g);
    if (s != M3_STATUS_OK) {
        free(sb);
        return s;
    }
    *out = sb;
    return M3_STATUS_OK;
}

pid_t m3_sandbox_get_pid(const m3_sandbox *sb) { return sb ? sb->pid : 0; }

void m3_sandbox_free(m3_sandbox *sb)
{
    if (!sb) return;
    if (sb->pid) {
        // End of its input: it returns from m3_sandbox_serve and exits.
        close(sb->to_fd);
        sb->to_fd = -1;
        bool killed;
        reap(sb, EXIT_WAIT_MS, &killed);
    }
    free(sb);
}

// A backstop for a parent that stops watching (SIGSTOP, a debugger): the helper's soft CPU limit
// is kept between its CPU time + this document's timeout + 1 s and that + 10 s (moved only when it
// leaves that window: one clock read per document, rarely a prlimit). Best effort.
static void move_cpu_limit(m3_sandbox *sb, double timeout)
{
    struct timespec used;
    if (!sb->have_cpu_clock || clock_gettime(sb->cpu_clock, &used) != 0) return;
    rlim_t need = (rlim_t)used.tv_sec + 1 + (rlim_t)ceil(timeout) + 1;
    if (sb->cpu_limit.rlim_cur >= need && sb->cpu_limit.rlim_cur <= need + 10) return;
    struct rlimit rl = sb->cpu_limit;
    rl.rlim_cur = need + 5;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_cur > rl.rlim_max) rl.rlim_cur = rl.rlim_max;
    if (prlimit(sb->pid, RLIMIT_CPU, &rl, NULL) == 0) sb->cpu_limit = rl;
}


// Checks a reply's header against what a document of size bytes can produce. NULL when fine.
static const char *check_header(const m3_sandbox *sb, const m3_sbx_reply *h, size_t size)
{
    if (h->magic != M3_SBX_REPLY_MAGIC) return "bad magic";
    if (h->status != 0 && !known_status(h->status)) return "unknown status";
    if (h->status != 0 && (h->text_len || h->n_anchors || h->n_marks)) return "text with an error";
    if (h->status == 0 && h->message_len) return "message without an error";
    if (h->message_len > M3_SBX_MESSAGE_MAX) return "message too long";
    if (h->identity > 2) return "bad identity flag";  // identity (1) or derived (2), not both
    if (h->n_marks > h->text_len + 1) return "more places than bytes of text";
    if (h->text_len > sb->opt.max_text || h->text_len > SIZE_MAX / 2) return "text longer than the limit";
    // At most one anchor per byte of the file, plus one.
    if (h->n_anchors > (uint64_t)size + 1) return "more anchors than bytes";
    if (h->identity == 1 && h->n_anchors < 1) return "identity map without an anchor";
    if (h->identity == 2 && h->n_anchors) return "anchors with derived text";
    if (h->status == 0 && (!printable_name(h->extractor, sizeof h->extractor) || !h->extractor[0]))
        return "bad extractor name";
    if (h->status == 0 && !printable_name(h->encoding, sizeof h->encoding)) return "bad encoding name";
    return NULL;
}

static const char *check_body(const m3_extracted *d, size_t size)
{
    if (!m3_extract_utf8_valid((const unsigned char *)d->text, d->len, false)) return "text is not UTF-8";
    for (size_t i = 0; i < d->n_anchors; i++) {
        const m3_offset_anchor *a = &d->anchors[i];
        if (a->text > d->len || a->file > size) return "anchor out of range";
        if (i && (a->text < a[-1].text || a->file < a[-1].file)) return "anchors not sorted";
    }
    if (d->identity && d->anchors[0].file + d->len > size) return "identity map beyond the file";
    for (size_t i = 0; i < d->n_marks; i++) {
        const m3_location_mark *m = &d->marks[i];
        size_t n = strnlen(m->where, sizeof m->where);
        if (m->text > d->len) return "place out of range";
        if (i && m->text <= m[-1].text) return "places not sorted";
        if (!n || n == sizeof m->where || !m3_extract_utf8_valid((const unsigned char *)m->where, n, false))
            return "bad place name";
        for (size_t k = 0; k < n; k++)
            if ((unsigned char)m->where[k] < 0x20 || m->where[k] == 0x7f) return "bad place name";
    }
    return NULL;
}

m3_status m3_sandbox_extract(m3_sandbox *sb, const char *path, const unsigned char *data, size_t size,
                             m3_extracted *out, m3_extractor_id *who, m3_error *err)
{
    memset(out, 0, sizeof *out);
    if (who) memset(who, 0, sizeof *who);
    size_t path_len = strlen(path);
    if (!path_len || path_len > M3_SBX_PATH_MAX)
        return m3_error_set(err, M3_STATUS_INVALID, 0, "%.200s: path too long for the extraction helper", path);
    // A helper that ended while idle (its starting thread exited, someone killed it) is replaced
    // before the document is sent, so that the document is not blamed.
    if (sb->pid) {
        int st;
        if (waitpid(sb->pid, &st, WNOHANG) == sb->pid) {
            sb->pid = 0;
            close_fds(sb);
        }
    }
    pipe_guard g;
    pipe_guard_begin(&g);
    m3_status s = M3_STATUS_OK;
    if (!sb->pid) {
        m3_error e = {0};
        if ((s = start(sb, &e)) != M3_STATUS_OK) {
            m3_error_set(err, s, e.code, "%s: %s", path, e.message);
            goto out;
        }
    }
    double timeout = sb->opt.timeout_s + sb->opt.timeout_per_mb_s * (double)size / (1 << 20);
    double deadline = now_s() + timeout;
    move_cpu_limit(sb, timeout);

    m3_sbx_request rq = {M3_SBX_REQUEST_MAGIC, (uint32_t)path_len, size};
    struct iovec wv[3] = {{&rq, sizeof rq}, {(void *)path, path_len}, {(void *)data, size}};
    int r = write_iov(sb->to_fd, wv, 3, deadline);
    m3_sbx_reply h;
    struct iovec hv = {&h, sizeof h};
    if (r == IO_OK) r = read_iov(sb->from_fd, &hv, 1, deadline, true);
    if (r != IO_OK) goto io_failed;
    const char *bad = check_header(sb, &h, size);
    if (bad) goto malformed;
    char msg[M3_SBX_MESSAGE_MAX + 1];
    out->len = (size_t)h.text_len;
    out->n_anchors = (size_t)h.n_anchors;
    out->identity = h.identity == 1;
    out->derived = h.identity == 2;
    out->n_marks = h.n_marks;
    out->text = malloc(out->len + 1);
    out->anchors = out->n_anchors ? malloc(out->n_anchors * sizeof *out->anchors) : NULL;
    out->marks = out->n_marks ? malloc(out->n_marks * sizeof *out->marks) : NULL;
    if (!out->text || (out->n_anchors && !out->anchors) || (out->n_marks && !out->marks)) {
        kill_helper(sb);
        m3_extracted_clear(out);
        s = m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory for the extracted text", path);
        goto out;
    }
    struct iovec bv[4] = {{msg, h.message_len},
                          {out->text, out->len},
                          {out->anchors, out->n_anchors * sizeof *out->anchors},
                          {out->marks, out->n_marks * sizeof *out->marks}};
    if ((r = read_iov(sb->from_fd, bv, 4, deadline, false)) != IO_OK) goto io_failed;
    out->text[out->len] = 0;
    if (h.status != 0) {
        msg[h.message_len] = 0;
        clean_message(msg);
        m3_extracted_clear(out);
        s = (m3_status)h.status;
        // Extractor messages usually start with the path; say which file when one does not.
        if (!strncmp(msg, path, path_len) && msg[path_len] == ':') m3_error_set(err, s, 0, "%s", msg);
        else m3_error_set(err, s, 0, "%s: %s", path, msg);
        // An exhausted heap is not worth keeping: the next document gets a fresh helper.
        if (s == M3_STATUS_NOMEM) kill_helper(sb);
        goto out;
    }
    if ((bad = check_body(out, size))) goto malformed;
    memcpy(out->encoding, h.encoding, sizeof out->encoding);
    if (who) {
        memcpy(who->name, h.extractor, sizeof who->name);
        who->version = h.version;
    }
    goto out;

io_failed:
    m3_extracted_clear(out);
    if (r == IO_TIMEOUT) {
        kill_helper(sb);
        s = m3_error_set(err, M3_STATUS_LIMIT, 0, "%s: extraction timed out after %.3g s (helper killed)", path, timeout);
    } else {
        s = report_end(sb, path, err);
    }
    goto out;
malformed:
    m3_extracted_clear(out);
    kill_helper(sb);
    s = m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: malformed reply from the extraction helper (%s)", path, bad);
out:
    pipe_guard_end(&g);
    return s;
}
