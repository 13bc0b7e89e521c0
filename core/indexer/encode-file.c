// SPDX-License-Identifier: MIT
//
// Encoding a file that the index does not hold (for "find similar"): read, extracted in the
// sandboxed helper, chunked and encoded as the pipeline would, first chunks only.
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "indexer/indexer.h"

// Reads the file at path whole (never changing its access time); at most 64 MiB, the default
// --max-file-size of m3 index.
static m3_status read_whole(const char *path, unsigned char **data, size_t *size, m3_error *err)
{
    enum { MAX_BYTES = 64 << 20 };
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, forever, while the
    // service holds its search lock; it makes no difference to reading a regular file.
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOATIME | O_NONBLOCK | O_NOCTTY);
    if (fd < 0 && errno == EPERM) fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        m3_status s = m3_error_errno(err, errno, "cannot read", path);
        if (fd >= 0) close(fd);
        return s;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return m3_error_set(err, M3_STATUS_INVALID, 0, "%s: not a regular file", path);
    }
    if (st.st_size > MAX_BYTES) {
        close(fd);
        return m3_error_set(err, M3_STATUS_LIMIT, 0, "%s: larger than %d MiB, the most m3 index reads of a file", path,
                            MAX_BYTES >> 20);
    }
    size_t want = (size_t)st.st_size;
    unsigned char *buf = malloc(want + 1);
    size_t got = 0;
    int read_errno = 0;
    while (buf && got < want) {
        ssize_t r = read(fd, buf + got, want - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) read_errno = errno;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    if (!buf) return m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory", path);
    if (got != want) {
        free(buf);
        if (read_errno) return m3_error_errno(err, read_errno, "cannot read", path);
        return m3_error_set(err, M3_STATUS_IO, 0, "%s: shorter than its size said (it changed while it was read)", path);
    }
    *data = buf;
    *size = got;
    return M3_STATUS_OK;
}

m3_status m3_indexer_file_queries(const char *path, m3_sandbox *sandbox, const m3_tokenizer *tok,
                                  m3_sequence seqs[M3_SIMILAR_QUERY_CHUNKS], size_t *n_out, m3_error *err)
{
    unsigned char *data = NULL;
    size_t size = 0, n = 0, n_chunks = 0;
    m3_extracted doc = {0};
    m3_text_chunk *chunks = NULL;
    memset(seqs, 0, M3_SIMILAR_QUERY_CHUNKS * sizeof *seqs);
    *n_out = 0;
    m3_status s = read_whole(path, &data, &size, err);
    if (s != M3_STATUS_OK) goto out;
    if (!m3_extract_find(path, data, size < 4096 ? size : 4096)) {
        s = m3_error_set(err, M3_STATUS_UNSUPPORTED, 0, "%s: not a format m3search reads", path);
        goto out;
    }
    m3_extractor_id who;
    if ((s = m3_sandbox_extract(sandbox, path, data, size, &doc, &who, err)) ||
        (s = m3_extract_chunk(tok, doc.text, doc.len, NULL, &chunks, &n_chunks, err)))
        goto out;
    if (n_chunks == 0) {
        s = m3_error_set(err, M3_STATUS_INVALID, 0, "%s: holds no text to compare", path);
        goto out;
    }
    for (; n < n_chunks && n < M3_SIMILAR_QUERY_CHUNKS; n++) {
        int32_t *ids = NULL;
        size_t len;
        if ((s = m3_tokenizer_encode(tok, doc.text + chunks[n].start, chunks[n].end - chunks[n].start, 8192, &ids,
                                     &len, err)))
            break;
        seqs[n] = (m3_sequence){ids, len};
    }
    if (s == M3_STATUS_OK) *n_out = n;
    else
        for (size_t i = 0; i < n; i++) free((void *)seqs[i].ids);
out:
    free(chunks);
    m3_extracted_clear(&doc);
    free(data);
    return s;
}

m3_status m3_indexer_encode_file(const char *path, m3_sandbox *sandbox, const m3_tokenizer *tok, m3_encoder *enc,
                                  m3_embedding out[M3_SIMILAR_QUERY_CHUNKS], size_t *n_out, m3_error *err)
{
    m3_sequence seqs[M3_SIMILAR_QUERY_CHUNKS];
    size_t n = 0;
    *n_out = 0;
    m3_status s = m3_indexer_file_queries(path, sandbox, tok, seqs, &n, err);
    if (s != M3_STATUS_OK) return s;
    memset(out, 0, M3_SIMILAR_QUERY_CHUNKS * sizeof *out);
    if ((s = m3_encoder_encode(enc, seqs, n, M3_OUTPUT_ALL, out, err)) == M3_STATUS_OK) *n_out = n;
    for (size_t i = 0; i < n; i++) free((void *)seqs[i].ids);
    return s;
}
