// SPDX-License-Identifier: MIT
#include "base/mapped-file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct mapped_file_impl {
    m3_mapped_file pub;
    bool owns_mapping;
};

static m3_status mapped_file_alloc(const char *path, struct mapped_file_impl **out, m3_error *err)
{
    struct mapped_file_impl *impl = calloc(1, sizeof *impl);
    char *copy = strdup(path);
    if (!impl || !copy) {
        free(impl);
        free(copy);
        return m3_error_set(err, M3_STATUS_NOMEM, ENOMEM, "%s: out of memory", path);
    }
    impl->pub.path = copy;
    *out = impl;
    return M3_STATUS_OK;
}

m3_status m3_mapped_file_open(const char *path, m3_mapped_file **out, m3_error *err)
{
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return m3_error_errno(err, errno, "cannot open", path);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return m3_error_errno(err, e, "cannot stat", path);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return m3_error_errno(err, S_ISDIR(st.st_mode) ? EISDIR : EINVAL, "not a regular file", path);
    }
    struct mapped_file_impl *impl = NULL;
    m3_status s = mapped_file_alloc(path, &impl, err);
    if (s != M3_STATUS_OK) {
        close(fd);
        return s;
    }
    if (st.st_size > 0) {
        // Shared and read-only: the pages are the page cache's, shared by every process that maps
        // the file (a model's packed weights used in place) and reclaimable by the kernel, never
        // copied. The files are replaced by rename, never rewritten in place, so a mapping keeps
        // the bytes it was opened with.
        void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_SHARED, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            m3_mapped_file_close(&impl->pub);
            return m3_error_errno(err, e, "cannot map", path);
        }
        impl->pub.data = p;
        impl->pub.size = (size_t)st.st_size;
        impl->owns_mapping = true;
    }
    close(fd);
    *out = &impl->pub;
    return M3_STATUS_OK;
}

m3_status m3_mapped_file_wrap(const void *data, size_t size, const char *name, m3_mapped_file **out,
                              m3_error *err)
{
    *out = NULL;
    struct mapped_file_impl *impl = NULL;
    m3_status s = mapped_file_alloc(name, &impl, err);
    if (s != M3_STATUS_OK) return s;
    impl->pub.data = data;
    impl->pub.size = size;
    *out = &impl->pub;
    return M3_STATUS_OK;
}

void m3_mapped_file_close(m3_mapped_file *file)
{
    if (!file) return;
    struct mapped_file_impl *impl = (struct mapped_file_impl *)file;
    if (impl->owns_mapping) munmap((void *)file->data, file->size);
    free(file->path);
    free(impl);
}
