// SPDX-License-Identifier: MIT
//
// The helper's side of the extraction sandbox (m3_sandbox_serve): limits, seccomp filter, then one
// document after another from the pipe. Linux only (prctl, seccomp through libseccomp).
#include <errno.h>
#include <fcntl.h>
#include <iconv.h>
#include <seccomp.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <unistd.h>

#include "extract/sandbox-protocol.h"
#include "extract/sandbox.h"

// ---- blocking I/O on the pipes -------------------------------------------------------------------

// 0: all read; 1: end of input before the first byte; -1: error or end in the middle.
static int read_full(int fd, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = read(fd, (char *)buf + got, n - got);
        if (r > 0) got += (size_t)r;
        else if (r == 0) return got ? -1 : 1;
        else if (errno != EINTR) return -1;
    }
    return 0;
}

// The documents' input, buffered: a small document comes in one read() with its request.
typedef struct input {
    int fd;
    size_t pos, len;
    unsigned char buf[64 << 10];
} input;

// Same results as read_full.
static int input_read(input *in, void *dst, size_t n)
{
    size_t got = 0;
    while (got < n) {
        if (in->pos < in->len) {
            size_t k = in->len - in->pos < n - got ? in->len - in->pos : n - got;
            memcpy((char *)dst + got, in->buf + in->pos, k);
            in->pos += k;
            got += k;
            continue;
        }
        // What is left of a large document goes straight to its buffer.
        bool direct = n - got >= sizeof in->buf;
        ssize_t r = direct ? read(in->fd, (char *)dst + got, n - got) : read(in->fd, in->buf, sizeof in->buf);
        if (r == 0) return got ? -1 : 1;
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (direct) {
            got += (size_t)r;
        } else {
            in->pos = 0;
            in->len = (size_t)r;
        }
    }
    return 0;
}

static int write_iov_full(int fd, struct iovec *iov, int n)
{
    while (n) {
        if (!iov->iov_len) {
            iov++, n--;
            continue;
        }
        ssize_t w = writev(fd, iov, n > 64 ? 64 : n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        size_t done = (size_t)w;
        while (n && done >= iov->iov_len) done -= iov->iov_len, iov++, n--;
        if (n) iov->iov_base = (char *)iov->iov_base + done, iov->iov_len -= done;
    }
    return 0;
}

static int reply_error(int fd, m3_status status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int reply_error(int fd, m3_status status, const char *fmt, ...)
{
    char msg[M3_SBX_MESSAGE_MAX + 1];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if (n > M3_SBX_MESSAGE_MAX) n = M3_SBX_MESSAGE_MAX;
    m3_sbx_reply h = {.magic = M3_SBX_REPLY_MAGIC, .status = status, .message_len = (uint32_t)n};
    struct iovec v[2] = {{&h, sizeof h}, {msg, (size_t)n}};
    return write_iov_full(fd, v, 2);
}

// ---- set-up --------------------------------------------------------------------------------------

// Every charset uchardet reports (and the WINDOWS-1252 fallback): glibc loads the converters of
// most of them with dlopen at the first iconv_open, which needs files the filter denies later.
// The descriptors stay open so that glibc keeps the modules loaded. Names glibc does not know
// (HZ-GB-2312...) fail here as they fail in-process: the extractor then falls back to WINDOWS-1252.
static const char *const warm_charsets[] = {
    "WINDOWS-1250", "WINDOWS-1251", "WINDOWS-1252", "WINDOWS-1253", "WINDOWS-1255", "WINDOWS-1256",
    "WINDOWS-1257", "WINDOWS-1258", "ISO-8859-1", "ISO-8859-2", "ISO-8859-3", "ISO-8859-4",
    "ISO-8859-5", "ISO-8859-6", "ISO-8859-7", "ISO-8859-8", "ISO-8859-9", "ISO-8859-10",
    "ISO-8859-11", "ISO-8859-13", "ISO-8859-15", "ISO-8859-16", "KOI8-R", "IBM852", "IBM855",
    "IBM866", "MAC-CENTRALEUROPE", "MAC-CYRILLIC", "TIS-620", "VISCII", "SHIFT_JIS", "EUC-JP",
    "ISO-2022-JP", "EUC-KR", "UHC", "ISO-2022-KR", "GB18030", "BIG5", "EUC-TW", "ISO-2022-CN",
    "HZ-GB-2312", "UTF-16", "UTF-32", "UTF-8", "ASCII",
};
static iconv_t warm_cd[sizeof warm_charsets / sizeof warm_charsets[0]];

static void warm_up(void)
{
    for (size_t i = 0; i < sizeof warm_charsets / sizeof warm_charsets[0]; i++)
        warm_cd[i] = iconv_open("UTF-8", warm_charsets[i]);
    // One legacy document through uchardet and iconv: whatever they set up lazily is set up now.
    static const unsigned char sample[] = "Caf\xe9 cr\xe8me br\xfbl\xe9" "e, na\xefve r\xe9sum\xe9.\n";
    m3_extracted doc;
    if (m3_extract_decode_text(sample, sizeof sample - 1, "warm-up", &doc, NULL) == M3_STATUS_OK)
        m3_extracted_clear(&doc);
}

static uint64_t address_space_now(void)
{
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    char buf[128];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = 0;
    return strtoull(buf, NULL, 10) * (uint64_t)sysconf(_SC_PAGESIZE);
}

static int limit(int resource, rlim_t soft, rlim_t hard)
{
    struct rlimit cur;
    if (getrlimit(resource, &cur) != 0) return -1;
    if (cur.rlim_max != RLIM_INFINITY && (hard == RLIM_INFINITY || hard > cur.rlim_max)) hard = cur.rlim_max;
    if (hard != RLIM_INFINITY && (soft == RLIM_INFINITY || soft > hard)) soft = hard;
    return setrlimit(resource, &(struct rlimit){soft, hard});
}

static int set_limits(const m3_sbx_config *cfg, char *msg, size_t cap)
{
    // Address space: what is mapped now (the program, its libraries, under AddressSanitizer the
    // shadow and allocator regions reserved at start-up) plus the budget.
    uint64_t now = address_space_now();
    rlim_t as = RLIM_INFINITY;
    if (cfg->memory_limit && now && now < UINT64_MAX - cfg->memory_limit) as = (rlim_t)(now + cfg->memory_limit);
    const struct {
        int resource;
        const char *name;
        rlim_t soft, hard;
    } limits[] = {
        {RLIMIT_AS, "RLIMIT_AS", as, as},
        // Soft only: the parent moves it forward before each document (prlimit).
        {RLIMIT_CPU, "RLIMIT_CPU", cfg->cpu_limit_s ? (rlim_t)cfg->cpu_limit_s : 60, RLIM_INFINITY},
        {RLIMIT_NOFILE, "RLIMIT_NOFILE", 8, 8},
        {RLIMIT_FSIZE, "RLIMIT_FSIZE", 0, 0},
        {RLIMIT_CORE, "RLIMIT_CORE", 0, 0},
    };
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++)
        if (limit(limits[i].resource, limits[i].soft, limits[i].hard) != 0) {
            snprintf(msg, cap, "%s: %s", limits[i].name, strerror(errno));
            return -1;
        }
    return 0;
}

typedef struct rule {
    uint32_t action;
    const char *name;
    unsigned n_args;
    struct scmp_arg_cmp args[2];
} rule;

static int install_filter(int in_fd, int out_fd, char *msg, size_t cap)
{
    // Denied by default with EPERM: libc and the sanitizers probe optional calls and cope.
    scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_ERRNO(EPERM));
    if (!ctx) {
        snprintf(msg, cap, "seccomp_init failed");
        return -1;
    }
    const uint32_t allow = SCMP_ACT_ALLOW, kill = SCMP_ACT_KILL_PROCESS, eacces = SCMP_ACT_ERRNO(EACCES);
    const scmp_datum_t self = (scmp_datum_t)getpid();
    const scmp_datum_t tmpfile = O_TMPFILE & ~O_DIRECTORY;
    const scmp_datum_t writing = O_ACCMODE | O_CREAT | O_TRUNC | O_APPEND | tmpfile;
    const rule rules[] = {
        // The pipes (and stderr, for crash reports).
        {allow, "read", 1, {SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)in_fd)}},
        {allow, "write", 1, {SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)out_fd)}},
        {allow, "writev", 1, {SCMP_A0(SCMP_CMP_EQ, (scmp_datum_t)out_fd)}},
        {allow, "write", 1, {SCMP_A0(SCMP_CMP_EQ, 2)}},
        {allow, "writev", 1, {SCMP_A0(SCMP_CMP_EQ, 2)}},
        {allow, "close", 0, {{0}}},
        // Memory, never executable.
        {allow, "brk", 0, {{0}}},
        {allow, "mmap", 1, {SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)}},
        {allow, "mprotect", 1, {SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)}},
        {allow, "munmap", 0, {{0}}},
        {allow, "mremap", 0, {{0}}},
        {allow, "madvise", 0, {{0}}},
        // Threads' and time's basics; signals only to itself (abort()).
        {allow, "futex", 0, {{0}}},
        {allow, "clock_gettime", 0, {{0}}},
        {allow, "clock_getres", 0, {{0}}},
        {allow, "clock_nanosleep", 0, {{0}}},
        {allow, "nanosleep", 0, {{0}}},
        {allow, "gettimeofday", 0, {{0}}},
        {allow, "getrandom", 0, {{0}}},
        {allow, "sched_yield", 0, {{0}}},
        {allow, "getpid", 0, {{0}}},
        {allow, "gettid", 0, {{0}}},
        {allow, "rt_sigprocmask", 0, {{0}}},
        {allow, "rt_sigreturn", 0, {{0}}},
        {allow, "sigaltstack", 0, {{0}}},  // AddressSanitizer checks it before every noreturn call
        {allow, "restart_syscall", 0, {{0}}},
        {allow, "tgkill", 1, {SCMP_A0(SCMP_CMP_EQ, self)}},
        {allow, "kill", 1, {SCMP_A0(SCMP_CMP_EQ, self)}},
        {allow, "exit", 0, {{0}}},
        {allow, "exit_group", 0, {{0}}},
        // Files: reading fails softly (a lazy loader); writing is an attack.
        {eacces, "open", 1, {SCMP_A1(SCMP_CMP_MASKED_EQ, writing, 0)}},
        {eacces, "openat", 1, {SCMP_A2(SCMP_CMP_MASKED_EQ, writing, 0)}},
        {kill, "open", 1, {SCMP_A1(SCMP_CMP_MASKED_EQ, O_ACCMODE, O_WRONLY)}},
        {kill, "open", 1, {SCMP_A1(SCMP_CMP_MASKED_EQ, O_ACCMODE, O_RDWR)}},
        {kill, "open", 1, {SCMP_A1(SCMP_CMP_MASKED_EQ, O_CREAT, O_CREAT)}},
        {kill, "open", 1, {SCMP_A1(SCMP_CMP_MASKED_EQ, O_TRUNC, O_TRUNC)}},
        {kill, "open", 1, {SCMP_A1(SCMP_CMP_MASKED_EQ, tmpfile, tmpfile)}},
        {kill, "openat", 1, {SCMP_A2(SCMP_CMP_MASKED_EQ, O_ACCMODE, O_WRONLY)}},
        {kill, "openat", 1, {SCMP_A2(SCMP_CMP_MASKED_EQ, O_ACCMODE, O_RDWR)}},
        {kill, "openat", 1, {SCMP_A2(SCMP_CMP_MASKED_EQ, O_CREAT, O_CREAT)}},
        {kill, "openat", 1, {SCMP_A2(SCMP_CMP_MASKED_EQ, O_TRUNC, O_TRUNC)}},
        {kill, "openat", 1, {SCMP_A2(SCMP_CMP_MASKED_EQ, tmpfile, tmpfile)}},
        {kill, "creat", 0, {{0}}},
        {kill, "truncate", 0, {{0}}},
        {kill, "ftruncate", 0, {{0}}},
        {kill, "unlink", 0, {{0}}},
        {kill, "unlinkat", 0, {{0}}},
        {kill, "rename", 0, {{0}}},
        {kill, "renameat", 0, {{0}}},
        {kill, "renameat2", 0, {{0}}},
        {kill, "mkdir", 0, {{0}}},
        {kill, "mkdirat", 0, {{0}}},
        {kill, "rmdir", 0, {{0}}},
        {kill, "link", 0, {{0}}},
        {kill, "linkat", 0, {{0}}},
        {kill, "symlink", 0, {{0}}},
        {kill, "symlinkat", 0, {{0}}},
        {kill, "chmod", 0, {{0}}},
        {kill, "fchmod", 0, {{0}}},
        {kill, "fchmodat", 0, {{0}}},
        // The network, other programs, other processes.
        {kill, "socket", 0, {{0}}},
        {kill, "socketpair", 0, {{0}}},
        {kill, "connect", 0, {{0}}},
        {kill, "bind", 0, {{0}}},
        {kill, "listen", 0, {{0}}},
        {kill, "accept", 0, {{0}}},
        {kill, "accept4", 0, {{0}}},
        {kill, "sendto", 0, {{0}}},
        {kill, "sendmsg", 0, {{0}}},
        {kill, "sendmmsg", 0, {{0}}},
        {kill, "execve", 0, {{0}}},
        {kill, "execveat", 0, {{0}}},
        {kill, "ptrace", 0, {{0}}},
        {kill, "process_vm_readv", 0, {{0}}},
        {kill, "process_vm_writev", 0, {{0}}},
    };
    int rc = 0;
    for (size_t i = 0; i < sizeof rules / sizeof rules[0] && rc == 0; i++) {
        int nr = seccomp_syscall_resolve_name(rules[i].name);
        if (nr < 0) continue;  // not a system call on this architecture (open on arm64...)
        rc = seccomp_rule_add_array(ctx, rules[i].action, nr, rules[i].n_args, rules[i].args);
        if (rc) snprintf(msg, cap, "seccomp rule for %s: %s", rules[i].name, strerror(-rc));
    }
    // All threads, should a library have started one.
    if (!rc && (rc = seccomp_attr_set(ctx, SCMP_FLTATR_CTL_TSYNC, 1)) != 0)
        snprintf(msg, cap, "seccomp thread sync: %s", strerror(-rc));
    if (!rc && (rc = seccomp_load(ctx)) != 0) snprintf(msg, cap, "seccomp filter: %s", strerror(-rc));
    seccomp_release(ctx);
    return rc ? -1 : 0;
}

// ---- serving ---------------------------------------------------------------------------------------

// Reads and drops n bytes (a document too large to hold), so that the next request is in sync.
static int drain(input *in, uint64_t n)
{
    char buf[4096];
    while (n) {
        size_t k = n < sizeof buf ? (size_t)n : sizeof buf;
        if (input_read(in, buf, k) != 0) return -1;
        n -= k;
    }
    return 0;
}

static int serve_one(input *in, int out_fd, const m3_sbx_request *rq)
{
    char path[M3_SBX_PATH_MAX + 1];
    if (input_read(in, path, rq->path_len) != 0) return -1;
    path[rq->path_len] = 0;
    if (rq->size > SIZE_MAX - 1) return -1;
    unsigned char *data = malloc(rq->size ? (size_t)rq->size : 1);
    if (!data) {
        if (drain(in, rq->size) != 0) return -1;
        return reply_error(out_fd, M3_STATUS_NOMEM, "%s: out of memory (larger than the extraction helper's memory limit)",
                           path);
    }
    if (input_read(in, data, (size_t)rq->size) != 0) {
        free(data);
        return -1;
    }
    size_t size = (size_t)rq->size;
    const m3_extractor *ex = m3_extract_find(path, data, size < 4096 ? size : 4096);
    if (!ex) {
        free(data);
        return reply_error(out_fd, M3_STATUS_UNSUPPORTED, "%s: no extractor for this file", path);
    }
    m3_extracted doc;
    m3_error err = {0};
    memset(&doc, 0, sizeof doc);
    m3_status s = ex->extract(data, size, path, &doc, &err);
    free(data);
    if (s != M3_STATUS_OK) {
        m3_extracted_clear(&doc);
        return reply_error(out_fd, s, "%s", err.message[0] ? err.message : m3_status_name(s));
    }
    m3_sbx_reply h = {
        .magic = M3_SBX_REPLY_MAGIC,
        .version = ex->version,
        .identity = (doc.identity ? 1u : 0u) | (doc.derived ? 2u : 0u),
        .text_len = doc.len,
        .n_anchors = doc.n_anchors,
        .n_marks = (uint32_t)doc.n_marks,
    };
    snprintf(h.extractor, sizeof h.extractor, "%s", ex->name);
    snprintf(h.encoding, sizeof h.encoding, "%s", doc.encoding);
    if (doc.n_marks > UINT32_MAX) {
        m3_extracted_clear(&doc);
        return reply_error(out_fd, M3_STATUS_LIMIT, "%s: too many places", path);
    }
    struct iovec v[4] = {{&h, sizeof h},
                         {doc.text, doc.len},
                         {doc.anchors, doc.n_anchors * sizeof *doc.anchors},
                         {doc.marks, doc.n_marks * sizeof *doc.marks}};
    int rc = write_iov_full(out_fd, v, 4);
    m3_extracted_clear(&doc);
    return rc;
}

int m3_sandbox_serve(int in_fd, int out_fd)
{
    // Die with the thread that started us, even inside an endless loop of an extractor.
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    m3_sbx_config cfg;
    if (read_full(in_fd, &cfg, sizeof cfg) != 0 || cfg.magic != M3_SBX_CONFIG_MAGIC || cfg.version != M3_SBX_VERSION) {
        fputs("m3 extract-helper: not started by m3 (this is an internal command)\n", stderr);
        return 2;
    }
    if (getppid() != (pid_t)cfg.parent_pid) return 3;  // the parent died before PR_SET_PDEATHSIG
    char msg[256] = "";
    int rc = 0;
    if (chdir("/") != 0) {
        snprintf(msg, sizeof msg, "chdir /: %s", strerror(errno));
        rc = -1;
    }
    // A write to stderr when it is a file must fail (RLIMIT_FSIZE 0), not kill.
    signal(SIGXFSZ, SIG_IGN);
    if (!rc) warm_up();
    if (!rc) rc = set_limits(&cfg, msg, sizeof msg);
    if (!rc && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
        snprintf(msg, sizeof msg, "PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
        rc = -1;
    }
    if (!rc) rc = install_filter(in_fd, out_fd, msg, sizeof msg);
    if (rc) {
        reply_error(out_fd, M3_STATUS_UNSUPPORTED, "%s", msg);
        return 1;
    }
    m3_sbx_reply ready = {.magic = M3_SBX_REPLY_MAGIC};
    struct iovec v = {&ready, sizeof ready};
    if (write_iov_full(out_fd, &v, 1) != 0) return 1;
    static input in;
    in.fd = in_fd;
    for (;;) {
        m3_sbx_request rq;
        int r = input_read(&in, &rq, sizeof rq);
        if (r == 1) return 0;
        if (r != 0 || rq.magic != M3_SBX_REQUEST_MAGIC || !rq.path_len || rq.path_len > M3_SBX_PATH_MAX) return 2;
        if (serve_one(&in, out_fd, &rq) != 0) return 2;
    }
}
