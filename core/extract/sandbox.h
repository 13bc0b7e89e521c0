// SPDX-License-Identifier: MIT
//
// Extraction in a sandboxed helper process. The extractors parse outside data (later PDF and
// office formats too): a hostile or broken document may crash them, hang them, make them allocate
// without bound or, through a bug, run code. They therefore run in a long-lived helper process
// that holds no user files, no index and no model, under resource limits and a seccomp filter; the
// parent reads the file, sends its bytes over a pipe and gets the text back.
//
//     // In main() of the program that is also the helper ("m3 extract-helper", a test program):
//     if (argc > 1 && !strcmp(argv[1], "extract-helper")) _exit(m3_sandbox_serve(0, 1));
//
//     static const char *const helper[] = {"/proc/self/exe", "extract-helper", NULL};
//     m3_sandbox_options opt = m3_sandbox_options_default();
//     opt.argv = helper;
//     m3_sandbox *sb;
//     if (m3_sandbox_new(&opt, &sb, &err) != M3_STATUS_OK) ...;   // the helper runs, filter on
//     m3_extracted doc;
//     m3_extractor_id who;
//     if (m3_sandbox_extract(sb, path, data, size, &doc, &who, &err) == M3_STATUS_OK) {
//         ... as after ex->extract(): m3_extract_chunk, m3_extracted_file_offset ...
//         m3_extracted_clear(&doc);
//     } else {
//         ... err.message names the file and what happened; the next call works again ...
//     }
//     m3_sandbox_free(sb);
//
// The helper (m3_sandbox_serve), before it reads the first document:
//   - PR_SET_PDEATHSIG(SIGKILL): it dies with the thread that started it, even in an endless loop;
//   - opens the iconv converters of every charset uchardet may report (glibc loads them with
//     dlopen on first use) and keeps them open, so that it needs no file afterwards;
//   - limits: RLIMIT_AS = its address space at that moment + opt.memory_limit (so the same rule
//     holds under AddressSanitizer, whose shadow and allocator regions are reserved at start-up:
//     there only the large allocations that map new memory are limited, see docs/index.md);
//     RLIMIT_CPU (soft; the parent keeps it between the CPU time used + the document's timeout +
//     1 s and that + 10 s: a backstop for a parent that stopped watching); RLIMIT_NOFILE 8;
//     RLIMIT_FSIZE 0 (SIGXFSZ ignored: a write to a file fails); RLIMIT_CORE 0; it runs in "/",
//     in a process group of its own, with no descriptor but its pipes and stderr;
//   - PR_SET_NO_NEW_PRIVS and a seccomp filter (libseccomp). Allowed: read on its input, write on
//     its output and stderr (crash reports), memory (brk, mmap / mprotect without PROT_EXEC,
//     munmap, mremap, madvise), futex, clocks, signals to itself (abort), exit. open / openat
//     read-only fail with EACCES (a lazy loader degrades instead of dying). Calls that no extractor
//     needs and an exploit does (sockets, exec, ptrace, opening or changing files for writing)
//     kill the helper (SCMP_ACT_KILL_PROCESS, SIGSYS); every other call fails with EPERM, so that
//     the probing of libc and the sanitizers fails softly.
// A helper that cannot set this up refuses to serve: m3_sandbox_new fails (nothing runs unconfined).
//
// The parent never trusts the helper's reply: the frame is length-checked against the limits
// below, the text must be UTF-8 without NUL bytes, the anchors in range and sorted, the places
// (m3_location_mark) in range, strictly increasing and with printable UTF-8 names, derived text
// without anchors, the names printable. Per document it enforces a wall-clock timeout with poll() (timeout_s +
// timeout_per_mb_s × MiB of the file). When the helper crashes, times out, answers a malformed
// frame or runs out of memory it is killed if need be, reaped (no zombies) and started again at
// the next call; the document gets the error. A helper found dead before a document is sent (its
// starting thread exited, someone killed it) is replaced without blaming that document. An answer
// that arrived while the parent was stopped (Ctrl-Z) past the deadline is taken.
//
// Errors of m3_sandbox_extract (err names the file):
//   what the extractor returned (M3_STATUS_UNSUPPORTED for binary files, M3_STATUS_NOMEM when the
//     helper's memory limit was reached...), message prefixed with the path when it lacks it;
//   M3_STATUS_FORMAT: "extractor crashed (signal 11, SIGSEGV)", "extractor made a forbidden system
//     call (signal 31, SIGSYS: seccomp)", "extractor exited with status N", "malformed reply from
//     the extraction helper (...)"; code holds the signal number for crashes;
//   M3_STATUS_LIMIT: "extraction timed out after N s", "extractor exceeded its CPU time limit";
//   M3_STATUS_IO: the helper could not be started (errno in code).
//
// Threads: a sandbox is used by one thread at a time. PR_SET_PDEATHSIG follows the *thread* that
// started the helper: when that thread exits the helper is killed, and the next call starts a new
// one. Teardown: m3_sandbox_free closes the helper's input, waits for it (SIGKILL after 2 s) and
// reaps it.
#ifndef M3_EXTRACT_SANDBOX_H
#define M3_EXTRACT_SANDBOX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/status.h"
#include "extract/extract.h"

typedef struct m3_sandbox m3_sandbox;

typedef struct m3_sandbox_options {
    // The helper's command line (argv[0] is the program run; "/proc/self/exe" re-runs the caller).
    // Borrowed: must outlive the sandbox. Its environment is the caller's.
    const char *const *argv;
    uint64_t memory_limit;    // bytes the helper may map beyond its start-up (default 2 GiB)
    double timeout_s;         // per document: timeout_s + timeout_per_mb_s × size / MiB
    double timeout_per_mb_s;  // (defaults 30 s and 1 s per MiB)
    uint64_t max_text;        // longest text accepted from the helper (default 256 MiB)
} m3_sandbox_options;

// Who extracted a document, as the helper reports it.
typedef struct m3_extractor_id {
    char name[16];
    uint32_t version;
} m3_extractor_id;

m3_sandbox_options m3_sandbox_options_default(void);

// Starts the helper and waits until it reports its limits and filter in place (or fails: the
// helper's own message, e.g. "seccomp filter: Invalid argument"). opt->argv is required.
m3_status m3_sandbox_new(const m3_sandbox_options *opt, m3_sandbox **out, m3_error *err);

// Extracts size bytes of the file path (the path is only a name for the helper: it picks the
// extractor by extension or by sniffing, as m3_extract_find). On success *out is filled as by an
// extractor (release with m3_extracted_clear) and *who, when not NULL, names the extractor.
// On error *out is zeroed; see the header comment for the errors.
m3_status m3_sandbox_extract(m3_sandbox *sb, const char *path, const unsigned char *data, size_t size,
                             m3_extracted *out, m3_extractor_id *who, m3_error *err);

// The helper's process id, 0 when none runs (it is started again at the next call). For tests
// and diagnostics.
pid_t m3_sandbox_get_pid(const m3_sandbox *sb);

// Stops and reaps the helper. NULL is a no-op.
void m3_sandbox_free(m3_sandbox *sb);

// The helper's side: sets up the limits and the filter described above, then extracts the
// documents that come on in_fd and answers on out_fd until in_fd ends. Returns the process exit
// status (0 at the end of the input). Call it from main() and leave with _exit(): at-exit handlers
// (LeakSanitizer's among them) would need system calls that the filter denies. Extractors added
// with m3_extract_register before the call are used.
int m3_sandbox_serve(int in_fd, int out_fd);

#endif
