// SPDX-License-Identifier: MIT
//
// m3 extract-helper: internal, not listed in 'm3 --help'. The sandboxed process in which
// 'm3 index' runs the extractors (core/extract/sandbox.h): it reads documents on stdin and
// answers their text on stdout, under resource limits and a seccomp filter. The document
// extractors (app/extract/docs.h) are registered and warmed up before the filter goes on.
#include <stdio.h>
#include <unistd.h>

#include "cli.h"
#include "extract/docs.h"
#include "extract/sandbox.h"

int m3_cmd_extract_helper(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    m3_error err = {0};
    if (m3_docs_register(&err) != M3_STATUS_OK) fprintf(stderr, "m3 extract-helper: %s\n", err.message);
    m3_docs_warm_up();
    // _exit: at-exit handlers (LeakSanitizer's) would need calls that the filter denies.
    _exit(m3_sandbox_serve(0, 1));
}
