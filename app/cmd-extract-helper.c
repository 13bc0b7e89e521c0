// SPDX-License-Identifier: MIT
//
// m3 extract-helper: internal, not listed in 'm3 --help'. The sandboxed process in which
// 'm3 index' runs the extractors (core/extract/sandbox.h): it reads documents on stdin and
// answers their text on stdout, under resource limits and a seccomp filter.
#include <unistd.h>

#include "cli.h"
#include "extract/sandbox.h"

int m3_cmd_extract_helper(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    // _exit: at-exit handlers (LeakSanitizer's) would need calls that the filter denies.
    _exit(m3_sandbox_serve(0, 1));
}
