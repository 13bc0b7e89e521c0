// SPDX-License-Identifier: MIT
//
// Private to core/fetch: the list of model files and small path helpers.
#ifndef M3_FETCH_PRIVATE_H
#define M3_FETCH_PRIVATE_H

#include <stdbool.h>
#include <stddef.h>

#include "base/status.h"

typedef struct m3_fetch_file_spec {
    const char *name;  // the file's name in the repository
    const char *alt;   // a file that may stand in for it when the revision lacks it, or NULL
    bool encoder;      // needed to run the encoder (a cache snapshot must have it)
    bool optional;     // a 404 for it is no error: mirrors that serve only what the encoder needs
                       // leave it out, and the folder is complete without it
} m3_fetch_file_spec;

extern const m3_fetch_file_spec m3_fetch_files[];
extern const size_t m3_fetch_file_count;

// malloc'd "a/b" (or "a" + "/" + b with extra parts joined by '/'); NULL on out of memory.
char *m3_fetch_path_join(const char *a, const char *b);

// True when dir/name is a regular file (symlinks followed, so a dangling link is false).
bool m3_fetch_file_exists(const char *dir, const char *name);

// Which name of spec is present in dir: spec->name, spec->alt or NULL.
const char *m3_fetch_present_name(const char *dir, const m3_fetch_file_spec *spec);

// Creates dir and its missing parents (mode 0700 for the ones it creates).
m3_status m3_fetch_mkdirs(const char *dir, m3_error *err);

#endif
