// SPDX-License-Identifier: MIT
//
// The LMDB store: opening (model identity, damage detection), reading records, and the batched
// writer (quantisation, postings maintenance, map growth on MDB_MAP_FULL).
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <time.h>
#include <unistd.h>
#include <zstd.h>

#include "index/index-private.h"
#include "model/model.h"

enum {
    MAX_DBS = 16,
    FILE_REC_VERSION = 1,
    MAX_GROW_TRIES = 24,
};
#define INITIAL_MAP_SIZE ((size_t)64 << 20)

// ---- errors ------------------------------------------------------------------------------------

m3_status m3_index_mdb_error(const m3_index *idx, int rc, const char *what, m3_error *err)
{
    const char *dir = idx ? idx->dir : "index";
    switch (rc) {
    case MDB_CORRUPTED:
    case MDB_PAGE_NOTFOUND:
    case MDB_INVALID:
    case MDB_VERSION_MISMATCH:
    case MDB_INCOMPATIBLE:
    case MDB_BAD_VALSIZE:
        return m3_error_set(err, M3_STATUS_FORMAT, rc,
                            "index %s is damaged (%s: %s); remove it or run 'm3 index --rebuild'", dir,
                            what, mdb_strerror(rc));
    case MDB_MAP_FULL:
        return m3_error_set(err, M3_STATUS_LIMIT, rc, "index %s: %s: the map is full", dir, what);
    case ENOSPC:
    case EFBIG:
    case EDQUOT:
        return m3_error_set(err, M3_STATUS_IO, rc,
                            "index %s: %s: disk full (%s); free some space and run 'm3 index' again",
                            dir, what, strerror(rc));
    case ENOMEM: return m3_error_set(err, M3_STATUS_NOMEM, rc, "index %s: %s: out of memory", dir, what);
    default:
        return m3_error_set(err, M3_STATUS_IO, rc, "index %s: %s: %s", dir, what, mdb_strerror(rc));
    }
}

int m3_index_begin_read(m3_index *idx, MDB_txn **txn)
{
    int rc = mdb_txn_begin(idx->env, NULL, MDB_RDONLY, txn);
    if (rc == MDB_MAP_RESIZED) {
        mdb_env_set_mapsize(idx->env, 0);
        rc = mdb_txn_begin(idx->env, NULL, MDB_RDONLY, txn);
    }
    return rc;
}

// ---- hashing and model identity ------------------------------------------------------------------

static inline uint64_t mix64(uint64_t h)
{
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    return h;
}

uint64_t m3_index_hash(const void *data, size_t len, uint64_t seed)
{
    const unsigned char *p = data;
    uint64_t h = mix64(seed ^ (0x9e3779b97f4a7c15ULL * (len + 1)));
    size_t i = 0;
    for (; i + 8 <= len; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        h = (h ^ mix64(v)) * 0x9e3779b97f4a7c15ULL;
        h = (h << 27) | (h >> 37);
    }
    uint64_t tail = 0;
    memcpy(&tail, p + i, len - i);
    h ^= mix64(tail ^ (len - i));
    return mix64(h);
}

static uint64_t hash_file(const char *path, bool sample, bool *found, uint64_t h)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    *found = fd >= 0;
    if (fd < 0) return h;
    struct stat st;
    if (fstat(fd, &st) != 0) {
        close(fd);
        return h;
    }
    enum { SAMPLE = 4 << 20 };
    size_t cap = 1 << 20;
    unsigned char *buf = malloc(cap);
    if (!buf) {
        close(fd);
        return h;
    }
    uint64_t size = (uint64_t)st.st_size;
    h = m3_index_hash(&size, sizeof size, h);
    // Whole file, or the first and last SAMPLE bytes of a large one.
    off_t ranges[2][2] = {{0, st.st_size}, {0, 0}};
    if (sample && st.st_size > 2 * SAMPLE) {
        ranges[0][1] = SAMPLE;
        ranges[1][0] = st.st_size - SAMPLE;
        ranges[1][1] = st.st_size;
    }
    for (int r = 0; r < 2; r++) {
        for (off_t off = ranges[r][0]; off < ranges[r][1];) {
            size_t want = (size_t)(ranges[r][1] - off) < cap ? (size_t)(ranges[r][1] - off) : cap;
            ssize_t got = pread(fd, buf, want, off);
            if (got <= 0) break;
            h = m3_index_hash(buf, (size_t)got, h);
            off += got;
        }
    }
    free(buf);
    close(fd);
    return h;
}

// A model file (GGUF) is identified by the SHA-256 it carries (its header only is read).
static m3_status identify_file(const char *file, m3_index_model *out, m3_error *err)
{
    m3_model_config cfg;
    char sum[72];
    m3_status s = m3_model_file_identify(file, &cfg, sum, err);
    if (s != M3_STATUS_OK) return s;
    const char *base = strrchr(file, '/');
    base = base && base[1] ? base + 1 : file;
    snprintf(out->id, sizeof out->id, "%.64s hidden=%d layers=%d vocab=%d", base, cfg.hidden, cfg.layers,
             cfg.vocab);
    uint64_t h = m3_index_hash(sum, strlen(sum), 0x6d33736561726368ULL);
    snprintf(out->checksum, sizeof out->checksum, "%016llx", (unsigned long long)h);
    out->dim = cfg.hidden;
    out->vocab = cfg.vocab;
    return M3_STATUS_OK;
}

m3_status m3_index_model_identify(const char *dir, m3_index_model *out, m3_error *err)
{
    memset(out, 0, sizeof *out);
    struct stat sb;
    if (stat(dir, &sb) == 0 && S_ISREG(sb.st_mode)) return identify_file(dir, out, err);
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/config.json", dir);
    FILE *f = fopen(path, "rb");
    if (!f) return m3_error_errno(err, errno, "cannot read the model configuration", path);
    char buf[1 << 16];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    m3_model_config cfg;
    m3_status s = m3_model_config_parse(buf, n, path, &cfg, err);
    if (s != M3_STATUS_OK) return s;
    uint64_t h = 0x6d33736561726368ULL;  // "m3search"
    static const char *const whole[] = {"config.json", "sentencepiece.bpe.model", "colbert_linear.pt",
                                        "sparse_linear.pt"};
    bool found;
    for (size_t i = 0; i < sizeof whole / sizeof whole[0]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, whole[i]);
        h = hash_file(path, false, &found, h);
    }
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    h = hash_file(path, true, &found, h);
    if (!found) {
        snprintf(path, sizeof path, "%s/pytorch_model.bin", dir);
        h = hash_file(path, true, &found, h);
    }
    const char *base = strrchr(dir, '/');
    base = base && base[1] ? base + 1 : dir;
    snprintf(out->id, sizeof out->id, "%.64s hidden=%d layers=%d vocab=%d", base, cfg.hidden, cfg.layers,
             cfg.vocab);
    snprintf(out->checksum, sizeof out->checksum, "%016llx", (unsigned long long)h);
    out->dim = cfg.hidden;
    out->vocab = cfg.vocab;
    return M3_STATUS_OK;
}

// ---- opening -----------------------------------------------------------------------------------

char *m3_index_default_dir(void)
{
    const char *xdg = getenv("XDG_DATA_HOME");
    const char *home = getenv("HOME");
    char buf[PATH_MAX];
    if (xdg && xdg[0] == '/') snprintf(buf, sizeof buf, "%s/m3search/index", xdg);
    else snprintf(buf, sizeof buf, "%s/.local/share/m3search/index", home && *home ? home : ".");
    return strdup(buf);
}

static m3_status mkdir_p(const char *dir, m3_error *err)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof buf, "%s", dir) >= (int)sizeof buf)
        return m3_error_set(err, M3_STATUS_INVALID, 0, "%s: path too long", dir);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(buf, 0700) != 0 && errno != EEXIST) return m3_error_errno(err, errno, "cannot create folder", buf);
        *p = '/';
    }
    if (mkdir(buf, 0700) != 0 && errno != EEXIST) return m3_error_errno(err, errno, "cannot create folder", buf);
    return M3_STATUS_OK;
}

static bool meta_get(MDB_txn *txn, MDB_dbi dbi, const char *key, MDB_val *v)
{
    MDB_val k = {strlen(key), (void *)key};
    return mdb_get(txn, dbi, &k, v) == 0;
}

static int meta_put(MDB_txn *txn, MDB_dbi dbi, const char *key, const void *data, size_t size)
{
    MDB_val k = {strlen(key), (void *)key}, v = {size, (void *)data};
    return mdb_put(txn, dbi, &k, &v, 0);
}

static bool meta_u32(MDB_txn *txn, MDB_dbi dbi, const char *key, uint32_t *out)
{
    MDB_val v;
    if (!meta_get(txn, dbi, key, &v) || v.mv_size != 4) return false;
    memcpy(out, v.mv_data, 4);
    return true;
}

static bool meta_str(MDB_txn *txn, MDB_dbi dbi, const char *key, char *out, size_t cap)
{
    MDB_val v;
    if (!meta_get(txn, dbi, key, &v) || v.mv_size >= cap) return false;
    memcpy(out, v.mv_data, v.mv_size);
    out[v.mv_size] = 0;
    return true;
}

static const struct {
    const char *name;
    size_t offset;
} db_names[] = {
    {"meta", offsetof(m3_index, meta)},       {"files", offsetof(m3_index, files)},
    {"fileids", offsetof(m3_index, fileids)}, {"chunks", offsetof(m3_index, chunks)},
    {"text", offsetof(m3_index, text)},       {"dense", offsetof(m3_index, dense)},
    {"bits", offsetof(m3_index, bits)},       {"sparse", offsetof(m3_index, post)},
    {"forward", offsetof(m3_index, fwd)},     {"colbert", offsetof(m3_index, colbert)},
};

static m3_status open_dbs_and_meta(m3_index *idx, const m3_index_options *opt, m3_error *err)
{
    MDB_txn *txn;
    int rc = idx->readonly ? m3_index_begin_read(idx, &txn) : mdb_txn_begin(idx->env, NULL, 0, &txn);
    if (rc) return m3_index_mdb_error(idx, rc, "begin", err);
    for (size_t i = 0; i < sizeof db_names / sizeof db_names[0]; i++) {
        MDB_dbi *dbi = (MDB_dbi *)((char *)idx + db_names[i].offset);
        rc = mdb_dbi_open(txn, db_names[i].name, idx->readonly ? 0 : MDB_CREATE, dbi);
        if (rc) {
            mdb_txn_abort(txn);
            // No table at all: the index was being created when its writer died, before its first
            // commit. Nothing was lost; it is simply not there yet.
            if (rc == MDB_NOTFOUND && i == 0)
                return m3_error_set(err, M3_STATUS_NOT_FOUND, rc, "no index in %s yet (run 'm3 index PATH' first)",
                                    idx->dir);
            if (rc == MDB_NOTFOUND)
                return m3_error_set(err, M3_STATUS_FORMAT, rc,
                                    "index %s is damaged or incomplete (no '%s' table); remove it or run "
                                    "'m3 index --rebuild'",
                                    idx->dir, db_names[i].name);
            return m3_index_mdb_error(idx, rc, db_names[i].name, err);
        }
    }
    // Places came later: an older index gets the table when opened for writing, and is read
    // without places when opened read-only.
    rc = mdb_dbi_open(txn, "location", idx->readonly ? 0 : MDB_CREATE, &idx->location);
    if (rc && rc != MDB_NOTFOUND) {
        mdb_txn_abort(txn);
        return m3_index_mdb_error(idx, rc, "location", err);
    }
    idx->has_location = rc == 0;
    uint32_t version, dim, exact;
    MDB_val v;
    if (!meta_get(txn, idx->meta, "format", &v)) {
        // A new index.
        if (idx->readonly || !opt || !opt->model) {
            mdb_txn_abort(txn);
            return m3_error_set(err, M3_STATUS_NOT_FOUND, 0, "no index in %s (run 'm3 index PATH' first)",
                                idx->dir);
        }
        version = M3_INDEX_FORMAT_VERSION;
        dim = (uint32_t)opt->model->dim;
        exact = (opt->flags & M3_INDEX_EXACT) != 0;
        uint32_t vocab = (uint32_t)opt->model->vocab, zero = 0;
        m3_colbert_storage cs = opt->colbert ? opt->colbert : exact ? M3_COLBERT_F32 : M3_COLBERT_BITS;
        uint32_t pool = cs == M3_COLBERT_NONE || !opt->colbert_pool ? 1 : opt->colbert_pool;
        if (!m3_colbert_storage_name(cs) || (pool != 1 && pool != 2)) {
            mdb_txn_abort(txn);
            return m3_error_set(err, M3_STATUS_INVALID, 0,
                                "index %s: unknown multi-vector storage %d or pooling %u (int8, bits, none or f32; "
                                "pooling 1 or 2)",
                                idx->dir, (int)cs, pool);
        }
        if (exact && (cs == M3_COLBERT_INT8 || cs == M3_COLBERT_BITS || pool != 1)) {
            mdb_txn_abort(txn);
            return m3_error_set(err, M3_STATUS_INVALID, 0,
                                "index %s: an exact index keeps fp32 multi-vectors of every token, not '%s'%s "
                                "(leave --exact out for compressed ones)",
                                idx->dir, m3_colbert_storage_name(cs), pool > 1 ? " pooled x2" : "");
        }
        const char *cname = m3_colbert_storage_name(cs);
        if ((rc = meta_put(txn, idx->meta, "colbert", cname, strlen(cname))) ||
            (rc = meta_put(txn, idx->meta, "colbert_pool", &pool, 4)) ||
            (rc = meta_put(txn, idx->meta, "format", &version, 4)) ||
            (rc = meta_put(txn, idx->meta, "dim", &dim, 4)) ||
            (rc = meta_put(txn, idx->meta, "vocab", &vocab, 4)) ||
            (rc = meta_put(txn, idx->meta, "exact", &exact, 4)) ||
            (rc = meta_put(txn, idx->meta, "next_chunk", &zero, 4)) ||
            (rc = meta_put(txn, idx->meta, "next_file", &zero, 4)) ||
            (rc = meta_put(txn, idx->meta, "model_id", opt->model->id, strlen(opt->model->id))) ||
            (rc = meta_put(txn, idx->meta, "model_checksum", opt->model->checksum,
                           strlen(opt->model->checksum)))) {
            mdb_txn_abort(txn);
            return m3_index_mdb_error(idx, rc, "writing the header", err);
        }
    }
    uint32_t vocab = 0;
    m3_index_model *m = &idx->model;
    if (!meta_u32(txn, idx->meta, "format", &version) || !meta_u32(txn, idx->meta, "dim", &dim) ||
        !meta_u32(txn, idx->meta, "exact", &exact) || !meta_u32(txn, idx->meta, "vocab", &vocab) ||
        !meta_str(txn, idx->meta, "model_id", m->id, sizeof m->id) ||
        !meta_str(txn, idx->meta, "model_checksum", m->checksum, sizeof m->checksum)) {
        mdb_txn_abort(txn);
        return m3_error_set(err, M3_STATUS_FORMAT, 0,
                            "index %s is damaged (bad header); remove it or run 'm3 index --rebuild'", idx->dir);
    }
    if (version < M3_INDEX_FORMAT_OLDEST || version > M3_INDEX_FORMAT_VERSION) {
        mdb_txn_abort(txn);
        return m3_error_set(err, M3_STATUS_UNSUPPORTED, 0,
                            "index %s has format version %u, this m3 reads versions %d to %d: run 'm3 index "
                            "--rebuild'",
                            idx->dir, version, M3_INDEX_FORMAT_OLDEST, M3_INDEX_FORMAT_VERSION);
    }
    // Version 1 knew one ColBERT storage: int8 (fp32 when exact), one vector per token.
    m3_colbert_storage cs = exact ? M3_COLBERT_F32 : M3_COLBERT_INT8;
    uint32_t pool = 1;
    char cname[16];
    if (version >= 2 && (!meta_str(txn, idx->meta, "colbert", cname, sizeof cname) ||
                         !m3_colbert_storage_parse(cname, &cs) || !meta_u32(txn, idx->meta, "colbert_pool", &pool) ||
                         (pool != 1 && pool != 2) || (cs == M3_COLBERT_NONE && pool != 1))) {
        mdb_txn_abort(txn);
        return m3_error_set(err, M3_STATUS_FORMAT, 0,
                            "index %s is damaged (bad multi-vector header); remove it or run 'm3 index --rebuild'",
                            idx->dir);
    }
    idx->colbert_storage = cs;
    idx->colbert_pool = pool;
    idx->colbert_kind = cs == M3_COLBERT_INT8   ? COLBERT_INT8
                        : cs == M3_COLBERT_F32  ? COLBERT_F32
                        : cs == M3_COLBERT_BITS ? COLBERT_BITS
                                                : COLBERT_NONE;
    if (dim == 0 || dim > 65536) {
        mdb_txn_abort(txn);
        return m3_error_set(err, M3_STATUS_FORMAT, 0, "index %s is damaged (dimension %u)", idx->dir, dim);
    }
    m->dim = (int)dim;
    m->vocab = (int)vocab;
    if (opt && opt->model && strcmp(opt->model->checksum, m->checksum) != 0) {
        mdb_txn_abort(txn);
        return m3_error_set(err, M3_STATUS_UNSUPPORTED, 0,
                            "index %s was built with model '%s' (checksum %s), not with '%s' (checksum "
                            "%s): use that model, or rebuild the index with 'm3 index --rebuild'",
                            idx->dir, m->id, m->checksum, opt->model->id, opt->model->checksum);
    }
    idx->exact = exact != 0;
    idx->dim = dim;
    idx->code_bytes = (dim + 7) / 8;
    idx->dense_bytes = dim + 4 + (idx->exact ? 4 * (size_t)dim : 0);
    if (idx->colbert_kind == COLBERT_BITS && !(idx->colbert_signs = m3_index_colbert_signs(dim))) {
        mdb_txn_abort(txn);
        return m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
    }
    rc = mdb_txn_commit(txn);
    if (rc) return m3_index_mdb_error(idx, rc, "opening the tables", err);
    return M3_STATUS_OK;
}

m3_status m3_index_open(const char *dir, const m3_index_options *opt, m3_index **out, m3_error *err)
{
    *out = NULL;
    unsigned flags = opt ? opt->flags : M3_INDEX_READONLY;
    char data_path[PATH_MAX];
    if (snprintf(data_path, sizeof data_path, "%s/data.mdb", dir) >= (int)sizeof data_path)
        return m3_error_set(err, M3_STATUS_INVALID, 0, "%s: path too long", dir);
    struct stat st;
    bool exists = stat(data_path, &st) == 0;
    if (!exists) {
        if (!(flags & M3_INDEX_CREATE) || (flags & M3_INDEX_READONLY))
            return m3_error_set(err, M3_STATUS_NOT_FOUND, ENOENT, "no index in %s (run 'm3 index PATH' first)",
                                dir);
        m3_status s = mkdir_p(dir, err);
        if (s != M3_STATUS_OK) return s;
    } else if (!S_ISREG(st.st_mode)) {
        return m3_error_set(err, M3_STATUS_FORMAT, 0, "index %s is damaged (data.mdb is not a file)", dir);
    } else if ((st.st_size == 0 && (flags & M3_INDEX_READONLY)) || (st.st_size > 0 && st.st_size < 2 * 4096)) {
        return m3_error_set(err, M3_STATUS_FORMAT, 0,
                            "index %s is damaged (data.mdb truncated to %lld bytes); remove it or run 'm3 "
                            "index --rebuild'",
                            dir, (long long)st.st_size);
    }
    m3_index *idx = calloc(1, sizeof *idx);
    if (!idx || !(idx->dir = strdup(dir))) {
        free(idx);
        return m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
    }
    idx->readonly = (flags & M3_INDEX_READONLY) != 0;
    int rc = mdb_env_create(&idx->env);
    if (rc) {
        free(idx->dir);
        free(idx);
        return m3_index_mdb_error(NULL, rc, "mdb_env_create", err);
    }
    mdb_env_set_maxdbs(idx->env, MAX_DBS);
    size_t map = INITIAL_MAP_SIZE;
    // Tests start from a tiny map to exercise the growth on MDB_MAP_FULL.
    const char *env_map = getenv("M3_INDEX_MAP_SIZE");
    if (env_map && strtoull(env_map, NULL, 10) >= 32768) map = (size_t)strtoull(env_map, NULL, 10);
    if (exists && (size_t)st.st_size + (size_t)st.st_size / 2 > map)
        map = (size_t)st.st_size + (size_t)st.st_size / 2;
    mdb_env_set_mapsize(idx->env, map);
    unsigned env_flags = MDB_NOTLS | MDB_NOMETASYNC | (idx->readonly ? MDB_RDONLY : 0);
    rc = mdb_env_open(idx->env, dir, env_flags, 0600);
    m3_status s = M3_STATUS_OK;
    if (rc) {
        s = m3_index_mdb_error(idx, rc, "open", err);
        if (rc == ENOENT && idx->readonly)
            s = m3_error_set(err, M3_STATUS_NOT_FOUND, rc, "no index in %s (run 'm3 index PATH' first)", dir);
        goto fail;
    }
    // A file shorter than the pages its header claims would fault on access: refuse it here.
    MDB_envinfo info;
    MDB_stat mst;
    mdb_env_info(idx->env, &info);
    mdb_env_stat(idx->env, &mst);
    if (stat(data_path, &st) == 0 && exists &&
        (uint64_t)(info.me_last_pgno + 1) * mst.ms_psize > (uint64_t)st.st_size) {
        s = m3_error_set(err, M3_STATUS_FORMAT, 0,
                         "index %s is damaged (data.mdb is %lld bytes, its header needs %llu); remove it or "
                         "run 'm3 index --rebuild'",
                         dir, (long long)st.st_size,
                         (unsigned long long)(info.me_last_pgno + 1) * mst.ms_psize);
        goto fail;
    }
    int dead = 0;
    mdb_reader_check(idx->env, &dead);
    s = open_dbs_and_meta(idx, opt, err);
    if (s != M3_STATUS_OK) goto fail;
    *out = idx;
    return M3_STATUS_OK;
fail:
    mdb_env_close(idx->env);
    free(idx->colbert_signs);
    free(idx->dir);
    free(idx);
    return s;
}

static m3_status lock_writer(const char *dir, int *fd_out, m3_error *err);

m3_status m3_index_remove(const char *dir, m3_error *err)
{
    static const char *const names[] = {"data.mdb", "lock.mdb"};
    char path[PATH_MAX];
    struct stat st;
    int lock_fd = -1;
    // Never pull the files from under a running writer.
    if (stat(dir, &st) == 0) {
        m3_status s = lock_writer(dir, &lock_fd, err);
        if (s != M3_STATUS_OK) return s;
    }
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (unlink(path) != 0 && errno != ENOENT) {
            m3_status s = m3_error_errno(err, errno, "cannot remove", path);
            if (lock_fd >= 0) close(lock_fd);
            return s;
        }
    }
    if (lock_fd >= 0) close(lock_fd);
    return M3_STATUS_OK;
}

const m3_index_model *m3_index_get_model(const m3_index *idx) { return &idx->model; }
bool m3_index_is_exact(const m3_index *idx) { return idx->exact; }

m3_colbert_storage m3_index_get_colbert(const m3_index *idx, unsigned *pool)
{
    if (pool) *pool = idx->colbert_pool;
    return idx->colbert_storage;
}

static const char *const colbert_names[] = {
    [M3_COLBERT_INT8] = "int8", [M3_COLBERT_BITS] = "bits", [M3_COLBERT_NONE] = "none", [M3_COLBERT_F32] = "f32"};

const char *m3_colbert_storage_name(m3_colbert_storage storage)
{
    return (unsigned)storage < sizeof colbert_names / sizeof colbert_names[0] ? colbert_names[storage] : NULL;
}

bool m3_colbert_storage_parse(const char *name, m3_colbert_storage *out)
{
    for (size_t i = 0; i < sizeof colbert_names / sizeof colbert_names[0]; i++)
        if (colbert_names[i] && !strcmp(name, colbert_names[i])) {
            *out = (m3_colbert_storage)i;
            return true;
        }
    return false;
}
const char *m3_index_get_dir(const m3_index *idx) { return idx->dir; }

void m3_index_close(m3_index *idx)
{
    if (!idx) return;
    mdb_env_close(idx->env);
    free(idx->colbert_signs);
    free(idx->dir);
    free(idx);
}

// ---- records -----------------------------------------------------------------------------------

typedef struct file_rec {
    uint32_t version;
    uint32_t state, extractor_version, model_version, file_id, first_chunk, n_chunks, pad;
    uint64_t size, hash, tokens;
    int64_t mtime_ns;
    char extractor[16];
} file_rec;

// A file record: the fixed part, then the reason (UTF-8, no NUL) when there is one.
static size_t file_to_rec(const m3_index_file *f, unsigned char *buf)
{
    file_rec r;
    memset(&r, 0, sizeof r);
    r.version = FILE_REC_VERSION;
    r.state = f->state;
    r.extractor_version = f->extractor_version;
    r.model_version = f->model_version;
    r.file_id = f->file_id;
    r.first_chunk = f->first_chunk;
    r.n_chunks = f->n_chunks;
    r.size = f->size;
    r.hash = f->hash;
    r.tokens = f->tokens;
    r.mtime_ns = f->mtime_ns;
    memcpy(r.extractor, f->extractor, sizeof r.extractor);
    r.extractor[sizeof r.extractor - 1] = 0;
    memcpy(buf, &r, sizeof r);
    size_t reason = strnlen(f->reason, sizeof f->reason - 1);
    memcpy(buf + sizeof r, f->reason, reason);
    return sizeof r + reason;
}

enum { FILE_REC_MAX = sizeof(file_rec) + sizeof(((m3_index_file *)0)->reason) };

static bool rec_to_file(const MDB_val *v, m3_index_file *f)
{
    file_rec r;
    if (v->mv_size < sizeof r || v->mv_size >= FILE_REC_MAX) return false;
    memcpy(&r, v->mv_data, sizeof r);
    if (r.version != FILE_REC_VERSION || r.state > M3_FILE_SKIPPED) return false;
    memset(f, 0, sizeof *f);
    f->state = r.state;
    f->extractor_version = r.extractor_version;
    f->model_version = r.model_version;
    f->file_id = r.file_id;
    f->first_chunk = r.first_chunk;
    f->n_chunks = r.n_chunks;
    f->size = r.size;
    f->hash = r.hash;
    f->tokens = r.tokens;
    f->mtime_ns = r.mtime_ns;
    memcpy(f->extractor, r.extractor, sizeof f->extractor);
    f->extractor[sizeof f->extractor - 1] = 0;
    memcpy(f->reason, (const char *)v->mv_data + sizeof r, v->mv_size - sizeof r);
    return true;
}

static m3_status damaged(const m3_index *idx, m3_error *err, const char *what, uint32_t id)
{
    return m3_error_set(err, M3_STATUS_FORMAT, MDB_CORRUPTED,
                        "index %s is damaged (%s %u); remove it or run 'm3 index --rebuild'", idx->dir, what, id);
}

m3_status m3_index_read_file(m3_index *idx, MDB_txn *txn, const char *path, m3_index_file *out, m3_error *err)
{
    MDB_val k = {strlen(path), (void *)path}, v;
    if (k.mv_size == 0 || k.mv_size > 511) return m3_error_set(err, M3_STATUS_NOT_FOUND, 0, "%s: not indexed", path);
    int rc = mdb_get(txn, idx->files, &k, &v);
    if (rc == MDB_NOTFOUND) return m3_error_set(err, M3_STATUS_NOT_FOUND, 0, "%s: not in the index", path);
    if (rc) return m3_index_mdb_error(idx, rc, "files", err);
    if (!rec_to_file(&v, out)) return damaged(idx, err, "file record of", 0);
    return M3_STATUS_OK;
}

m3_status m3_index_get_file(m3_index *idx, const char *path, m3_index_file *out, m3_error *err)
{
    MDB_txn *txn;
    int rc = m3_index_begin_read(idx, &txn);
    if (rc) return m3_index_mdb_error(idx, rc, "begin", err);
    m3_status s = m3_index_read_file(idx, txn, path, out, err);
    mdb_txn_abort(txn);
    return s;
}

m3_status m3_index_list_files_under(m3_index *idx, const char *prefix,
                                    int (*fn)(const char *, const m3_index_file *, void *), void *user,
                                    m3_error *err)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = m3_index_begin_read(idx, &txn);
    if (rc) return m3_index_mdb_error(idx, rc, "begin", err);
    if ((rc = mdb_cursor_open(txn, idx->files, &cur))) {
        mdb_txn_abort(txn);
        return m3_index_mdb_error(idx, rc, "files", err);
    }
    // Paths are keys in byte order: a folder's files are one range starting at the prefix.
    size_t pl = prefix ? strlen(prefix) : 0;
    while (pl > 1 && prefix[pl - 1] == '/') pl--;
    MDB_val k = {pl, (void *)prefix}, v;
    m3_status s = M3_STATUS_OK;
    char path[PATH_MAX];
    for (rc = mdb_cursor_get(cur, &k, &v, pl ? MDB_SET_RANGE : MDB_FIRST); rc == 0;
         rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (pl && (k.mv_size < pl || memcmp(k.mv_data, prefix, pl))) break;
        // "/a/b" holds "/a/b" and "/a/b/..." but not "/a/bc" (which sorts between them).
        if (pl && k.mv_size > pl && ((const char *)k.mv_data)[pl] != '/' && !(pl == 1 && prefix[0] == '/')) continue;
        m3_index_file f;
        if (!rec_to_file(&v, &f) || k.mv_size >= sizeof path) {
            s = damaged(idx, err, "file record", 0);
            break;
        }
        memcpy(path, k.mv_data, k.mv_size);
        path[k.mv_size] = 0;
        if (fn(path, &f, user)) break;
    }
    if (s == M3_STATUS_OK && rc && rc != MDB_NOTFOUND) s = m3_index_mdb_error(idx, rc, "files", err);
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return s;
}

m3_status m3_index_list_files(m3_index *idx, int (*fn)(const char *, const m3_index_file *, void *), void *user,
                              m3_error *err)
{
    return m3_index_list_files_under(idx, NULL, fn, user, err);
}

m3_status m3_index_read_chunk(m3_index *idx, MDB_txn *txn, uint32_t id, chunk_rec *out, m3_error *err)
{
    unsigned char kb[4];
    MDB_val k, v;
    key_be32(&k, kb, id);
    int rc = mdb_get(txn, idx->chunks, &k, &v);
    if (rc == MDB_NOTFOUND) return m3_error_set(err, M3_STATUS_NOT_FOUND, 0, "chunk %u is not in the index", id);
    if (rc) return m3_index_mdb_error(idx, rc, "chunks", err);
    if (v.mv_size != sizeof *out) return damaged(idx, err, "chunk", id);
    memcpy(out, v.mv_data, sizeof *out);
    return M3_STATUS_OK;
}

bool m3_index_read_location(m3_index *idx, MDB_txn *txn, uint32_t id, char *buf, size_t cap)
{
    if (!idx->has_location || !cap) return false;
    unsigned char kb[4];
    MDB_val k, v;
    key_be32(&k, kb, id);
    if (mdb_get(txn, idx->location, &k, &v) != 0 || !v.mv_size || v.mv_size >= cap || v.mv_size >= M3_INDEX_LOCATION_MAX)
        return false;
    memcpy(buf, v.mv_data, v.mv_size);
    buf[v.mv_size] = 0;
    return strlen(buf) == v.mv_size;
}

m3_status m3_index_get_chunk_location(m3_index *idx, uint32_t chunk_id, char *buf, size_t cap, m3_error *err)
{
    MDB_txn *txn;
    int rc = m3_index_begin_read(idx, &txn);
    if (rc) return m3_index_mdb_error(idx, rc, "begin", err);
    bool ok = m3_index_read_location(idx, txn, chunk_id, buf, cap);
    mdb_txn_abort(txn);
    if (!ok) return m3_error_set(err, M3_STATUS_NOT_FOUND, 0, "chunk %u has no place", chunk_id);
    return M3_STATUS_OK;
}

m3_status m3_index_get_chunk(m3_index *idx, uint32_t chunk_id, m3_index_chunk *out, m3_error *err)
{
    MDB_txn *txn;
    int rc = m3_index_begin_read(idx, &txn);
    if (rc) return m3_index_mdb_error(idx, rc, "begin", err);
    chunk_rec r;
    m3_status s = m3_index_read_chunk(idx, txn, chunk_id, &r, err);
    mdb_txn_abort(txn);
    if (s == M3_STATUS_OK) *out = (m3_index_chunk){r.file_id, r.tokens, r.start, r.end};
    return s;
}

m3_status m3_index_list_chunks(m3_index *idx, int (*fn)(uint32_t, const m3_index_chunk *, void *), void *user,
                               m3_error *err)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    int rc = m3_index_begin_read(idx, &txn);
    if (rc) return m3_index_mdb_error(idx, rc, "begin", err);
    if ((rc = mdb_cursor_open(txn, idx->chunks, &cur))) {
        mdb_txn_abort(txn);
        return m3_index_mdb_error(idx, rc, "chunks", err);
    }
    MDB_val k, v;
    m3_status s = M3_STATUS_OK;
    for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        chunk_rec r;
        if (k.mv_size != 4 || v.mv_size != sizeof r) {
            s = damaged(idx, err, "chunk record", 0);
            break;
        }
        memcpy(&r, v.mv_data, sizeof r);
        m3_index_chunk c = {r.file_id, r.tokens, r.start, r.end};
        if (fn(get_be32(k.mv_data), &c, user)) break;
    }
    if (s == M3_STATUS_OK && rc && rc != MDB_NOTFOUND) s = m3_index_mdb_error(idx, rc, "chunks", err);
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return s;
}

m3_status m3_index_read_path(m3_index *idx, MDB_txn *txn, uint32_t file_id, char **path, m3_error *err)
{
    unsigned char kb[4];
    MDB_val k, v;
    key_be32(&k, kb, file_id);
    int rc = mdb_get(txn, idx->fileids, &k, &v);
    if (rc == MDB_NOTFOUND) return damaged(idx, err, "no path for file", file_id);
    if (rc) return m3_index_mdb_error(idx, rc, "fileids", err);
    if (!(*path = strndup(v.mv_data, v.mv_size))) return m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
    return M3_STATUS_OK;
}

m3_status m3_index_read_text(m3_index *idx, MDB_txn *txn, uint32_t id, char **text, size_t *len, m3_error *err)
{
    unsigned char kb[4];
    MDB_val k, v;
    key_be32(&k, kb, id);
    int rc = mdb_get(txn, idx->text, &k, &v);
    if (rc == MDB_NOTFOUND) return damaged(idx, err, "no text for chunk", id);
    if (rc) return m3_index_mdb_error(idx, rc, "text", err);
    if (v.mv_size < 4) return damaged(idx, err, "text of chunk", id);
    uint32_t raw;
    memcpy(&raw, v.mv_data, 4);
    if (raw > (64u << 20)) return damaged(idx, err, "text of chunk", id);
    char *buf = malloc((size_t)raw + 1);
    if (!buf) return m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
    size_t got = ZSTD_decompress(buf, raw, (const char *)v.mv_data + 4, v.mv_size - 4);
    if (ZSTD_isError(got) || got != raw) {
        free(buf);
        return damaged(idx, err, "text of chunk", id);
    }
    buf[raw] = 0;
    *text = buf;
    *len = raw;
    return M3_STATUS_OK;
}

m3_status m3_index_dup_chunk_text(m3_index *idx, uint32_t chunk_id, char **text, size_t *len, m3_error *err)
{
    MDB_txn *txn;
    int rc = m3_index_begin_read(idx, &txn);
    if (rc) return m3_index_mdb_error(idx, rc, "begin", err);
    m3_status s = m3_index_read_text(idx, txn, chunk_id, text, len, err);
    mdb_txn_abort(txn);
    return s;
}

m3_status m3_index_read_embedding(m3_index *idx, MDB_txn *txn, uint32_t id, unsigned what, m3_embedding *out,
                                  m3_error *err)
{
    memset(out, 0, sizeof *out);
    size_t d = idx->dim;
    unsigned char kb[4];
    MDB_val k, v;
    key_be32(&k, kb, id);
    int rc;
    out->dim = d;
    if (what & M3_OUTPUT_DENSE) {
        if ((rc = mdb_get(txn, idx->dense, &k, &v))) goto mdb_fail;
        if (v.mv_size != idx->dense_bytes) goto bad;
        if (!(out->dense = malloc(d * sizeof(float)))) goto nomem;
        const unsigned char *p = v.mv_data;
        if (idx->exact) {
            memcpy(out->dense, p + d + 4, d * sizeof(float));
        } else {
            float scale;
            memcpy(&scale, p + d, 4);
            for (size_t i = 0; i < d; i++) out->dense[i] = (float)(int8_t)p[i] * scale;
        }
    }
    if (what & M3_OUTPUT_SPARSE) {
        if ((rc = mdb_get(txn, idx->fwd, &k, &v))) goto mdb_fail;
        if (v.mv_size % 8) goto bad;
        size_t n = v.mv_size / 8;
        if (n && !(out->sparse = malloc(n * sizeof *out->sparse))) goto nomem;
        for (size_t i = 0; i < n; i++) {
            memcpy(&out->sparse[i].id, (const char *)v.mv_data + 8 * i, 4);
            memcpy(&out->sparse[i].weight, (const char *)v.mv_data + 8 * i + 4, 4);
        }
        out->n_sparse = n;
    }
    if ((what & M3_OUTPUT_COLBERT) && idx->colbert_kind != COLBERT_NONE) {
        if ((rc = mdb_get(txn, idx->colbert, &k, &v))) goto mdb_fail;
        colbert_view cv;
        if (!m3_index_colbert_parse(idx, &v, &cv)) goto bad;
        if (cv.n && !(out->colbert = malloc((size_t)cv.n * d * sizeof(float)))) goto nomem;
        for (size_t r = 0; r < cv.n; r++) m3_index_colbert_decode(idx, &cv, r, out->colbert + r * d);
        out->n_colbert = cv.n;
        out->tokens = (size_t)cv.tokens + 1;
    }
    return M3_STATUS_OK;
mdb_fail:
    m3_embedding_clear(out);
    if (rc == MDB_NOTFOUND) return damaged(idx, err, "missing vectors of chunk", id);
    return m3_index_mdb_error(idx, rc, "vectors", err);
bad:
    m3_embedding_clear(out);
    return damaged(idx, err, "vectors of chunk", id);
nomem:
    m3_embedding_clear(out);
    return m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
}

m3_status m3_index_read_colbert(m3_index *idx, MDB_txn *txn, uint32_t id, colbert_view *out, m3_error *err)
{
    memset(out, 0, sizeof *out);
    if (idx->colbert_kind == COLBERT_NONE) return M3_STATUS_OK;
    unsigned char kb[4];
    MDB_val k, v;
    key_be32(&k, kb, id);
    int rc = mdb_get(txn, idx->colbert, &k, &v);
    if (rc == MDB_NOTFOUND) return damaged(idx, err, "missing multi-vectors of chunk", id);
    if (rc) return m3_index_mdb_error(idx, rc, "colbert", err);
    if (!m3_index_colbert_parse(idx, &v, out)) return damaged(idx, err, "multi-vectors of chunk", id);
    return M3_STATUS_OK;
}

m3_status m3_index_load_embedding(m3_index *idx, uint32_t chunk_id, m3_embedding *out, m3_error *err)
{
    MDB_txn *txn;
    int rc = m3_index_begin_read(idx, &txn);
    if (rc) return m3_index_mdb_error(idx, rc, "begin", err);
    m3_status s = m3_index_read_embedding(idx, txn, chunk_id, M3_OUTPUT_ALL, out, err);
    mdb_txn_abort(txn);
    return s;
}

// ---- the writer --------------------------------------------------------------------------------

typedef struct pending_chunk {
    chunk_rec rec;
    void *text;        // u32 raw length + zstd frame
    size_t text_len;
    void *dense;       // idx->dense_bytes
    unsigned char *code;  // code_bytes
    void *colbert;
    size_t colbert_len;
    void *fwd;         // n × (u32 id, f32 weight)
    size_t n_sparse;
    char location[M3_INDEX_LOCATION_MAX];  // "" for none
} pending_chunk;

typedef struct pending_op {
    bool put, touch;
    char *path;
    char *move_from;   // a move: the file's old path
    m3_index_file info;
    pending_chunk *chunks;
    size_t n;
} pending_op;

typedef struct cached_block {
    uint32_t no;
    bool used, dirty;
    unsigned char *buf;
} cached_block;

enum { BLOCK_CACHE = 8 };

struct m3_index_writer {
    m3_index *idx;
    int lock_fd;  // dir/writer.lock, flock'ed for the writer's life
    pending_op *ops;
    size_t n_ops, cap_ops, bytes;
    ZSTD_CCtx *zc;
    // During a commit:
    MDB_txn *txn;
    uint32_t next_chunk, next_file;
    cached_block cache[BLOCK_CACHE];
    size_t cache_clock;
};

// LMDB would only serialise two writers' transactions: both would encode the same files and the
// second would wait, unseen, for the first's commits. One writer per index instead: an exclusive
// flock on dir/writer.lock (released by the kernel when the process dies), holding the pid for the
// message.
static m3_status lock_writer(const char *dir, int *fd_out, m3_error *err)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s/writer.lock", dir) >= (int)sizeof path)
        return m3_error_set(err, M3_STATUS_INVALID, 0, "%s: path too long", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) return m3_error_errno(err, errno, "cannot open the writer lock", path);
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        char pid[24] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = 0;
        pid[strcspn(pid, "\n")] = 0;
        close(fd);
        if (e != EWOULDBLOCK) return m3_error_errno(err, e, "cannot lock", path);
        // The indexer service keeps this index current by itself: say so, and how to stop it.
        char comm_path[64], comm[32] = "";
        snprintf(comm_path, sizeof comm_path, "/proc/%s/comm", *pid ? pid : "0");
        FILE *cf = fopen(comm_path, "re");
        if (cf) {
            if (!fgets(comm, sizeof comm, cf)) comm[0] = 0;
            fclose(cf);
        }
        if (!strncmp(comm, "m3searchd", 9))
            return m3_error_set(err, M3_STATUS_BUSY, e,
                                "index %s is kept current by the indexer service m3searchd (pid %s), its only "
                                "writer: let it index (see 'm3 daemon status'), or stop it first "
                                "('systemctl --user stop m3searchd')",
                                dir, pid);
        return m3_error_set(err, M3_STATUS_BUSY, e,
                            "index %s is being written by another process (pid %s, another `m3 index`?): "
                            "wait for it to finish",
                            dir, *pid ? pid : "?");
    }
    char pid[24];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        // The pid is only for the message: a full disk must not stop the lock from working.
    }
    *fd_out = fd;
    return M3_STATUS_OK;
}

m3_status m3_index_writer_new(m3_index *idx, m3_index_writer **out, m3_error *err)
{
    *out = NULL;
    if (idx->readonly) return m3_error_set(err, M3_STATUS_INVALID, 0, "index %s is open read-only", idx->dir);
    int lock_fd;
    m3_status s = lock_writer(idx->dir, &lock_fd, err);
    if (s != M3_STATUS_OK) return s;
    m3_index_writer *w = calloc(1, sizeof *w);
    if (!w || !(w->zc = ZSTD_createCCtx())) {
        free(w);
        close(lock_fd);
        return m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
    }
    w->idx = idx;
    w->lock_fd = lock_fd;
    size_t block_bytes = BITS_LIVE_BYTES + (size_t)BITS_BLOCK * idx->code_bytes;
    for (int i = 0; i < BLOCK_CACHE; i++)
        if (!(w->cache[i].buf = malloc(block_bytes))) {
            m3_index_writer_free(w);
            return m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
        }
    *out = w;
    return M3_STATUS_OK;
}

static void free_op(pending_op *op)
{
    for (size_t i = 0; i < op->n; i++) {
        pending_chunk *c = &op->chunks[i];
        free(c->text);
        free(c->dense);
        free(c->code);
        free(c->colbert);
        free(c->fwd);
    }
    free(op->chunks);
    free(op->path);
    free(op->move_from);
}

static void drop_pending(m3_index_writer *w)
{
    for (size_t i = 0; i < w->n_ops; i++) free_op(&w->ops[i]);
    w->n_ops = 0;
    w->bytes = 0;
}

void m3_index_writer_free(m3_index_writer *w)
{
    if (!w) return;
    drop_pending(w);
    free(w->ops);
    for (int i = 0; i < BLOCK_CACHE; i++) free(w->cache[i].buf);
    ZSTD_freeCCtx(w->zc);
    close(w->lock_fd);
    free(w);
}

size_t m3_index_writer_pending_bytes(const m3_index_writer *w) { return w->bytes; }
size_t m3_index_writer_pending_files(const m3_index_writer *w) { return w->n_ops; }

static pending_op *new_op(m3_index_writer *w, const char *path, m3_error *err)
{
    if (strlen(path) == 0 || strlen(path) > 511) {
        m3_error_set(err, M3_STATUS_LIMIT, 0, "%s: path longer than 511 bytes", path);
        return NULL;
    }
    if (w->n_ops == w->cap_ops) {
        size_t cap = w->cap_ops ? 2 * w->cap_ops : 16;
        pending_op *ops = realloc(w->ops, cap * sizeof *ops);
        if (!ops) goto nomem;
        w->ops = ops;
        w->cap_ops = cap;
    }
    pending_op *op = &w->ops[w->n_ops];
    memset(op, 0, sizeof *op);
    if (!(op->path = strdup(path))) goto nomem;
    w->n_ops++;
    return op;
nomem:
    m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
    return NULL;
}

static void quantize_int8(const float *x, size_t d, unsigned char *dst, float *scale_out)
{
    float maxabs = 0;
    for (size_t i = 0; i < d; i++) maxabs = fmaxf(maxabs, fabsf(x[i]));
    float scale = maxabs > 0 ? maxabs / 127.0f : 1.0f;
    float inv = 1.0f / scale;
    for (size_t i = 0; i < d; i++) {
        long q = lrintf(x[i] * inv);
        dst[i] = (unsigned char)(int8_t)(q > 127 ? 127 : q < -127 ? -127 : q);
    }
    *scale_out = scale;
}

static m3_status prepare_chunk(m3_index_writer *w, const m3_index_chunk_input *in, pending_chunk *c, m3_error *err)
{
    m3_index *idx = w->idx;
    const m3_embedding *e = in->emb;
    size_t d = idx->dim;
    if (!e || !e->dense || e->dim != d || (e->n_colbert && !e->colbert) || (e->n_sparse && !e->sparse))
        return m3_error_set(err, M3_STATUS_INVALID, 0, "chunk vectors missing or of dimension %zu, index has %zu",
                            e ? e->dim : 0, d);
    if (in->text_len > (32u << 20)) return m3_error_set(err, M3_STATUS_LIMIT, 0, "chunk text over 32 MiB");
    c->rec.start = in->start;
    c->rec.end = in->end;
    if (in->location) {
        // Cut at a character boundary.
        size_t n = strnlen(in->location, sizeof c->location - 1);
        if (n == sizeof c->location - 1)
            while (n && ((unsigned char)in->location[n] & 0xc0) == 0x80) n--;
        memcpy(c->location, in->location, n);
        c->location[n] = 0;
    }
    c->rec.tokens = (uint32_t)e->tokens;
    size_t bound = ZSTD_compressBound(in->text_len);
    if (!(c->text = malloc(4 + bound))) goto nomem;
    size_t z = ZSTD_compressCCtx(w->zc, (char *)c->text + 4, bound, in->text, in->text_len, 3);
    if (ZSTD_isError(z)) return m3_error_set(err, M3_STATUS_NOMEM, 0, "zstd: %s", ZSTD_getErrorName(z));
    uint32_t raw = (uint32_t)in->text_len;
    memcpy(c->text, &raw, 4);
    c->text_len = 4 + z;
    // Dense: int8 + scale (+ exact fp32), and the sign code for the scan.
    if (!(c->dense = malloc(idx->dense_bytes)) || !(c->code = calloc(1, idx->code_bytes))) goto nomem;
    float scale;
    quantize_int8(e->dense, d, c->dense, &scale);
    memcpy((char *)c->dense + d, &scale, 4);
    if (idx->exact) memcpy((char *)c->dense + d + 4, e->dense, 4 * d);
    for (size_t i = 0; i < d; i++)
        if (e->dense[i] > 0) c->code[i / 8] |= (unsigned char)(1u << (i % 8));
    // ColBERT rows (pooled and quantised as the index keeps them; none at all with M3_COLBERT_NONE).
    if (idx->colbert_kind != COLBERT_NONE) {
        m3_status s = m3_index_colbert_encode(idx, e->colbert, e->n_colbert, &c->colbert, &c->colbert_len, err);
        if (s != M3_STATUS_OK) return s;
    }
    // Forward sparse vector (exact weights).
    c->n_sparse = 0;
    if (e->n_sparse && !(c->fwd = malloc(8 * e->n_sparse))) goto nomem;
    for (size_t i = 0; i < e->n_sparse; i++) {
        if (e->sparse[i].id < 0 || !(e->sparse[i].weight > 0) ||
            (i && e->sparse[i].id <= e->sparse[i - 1].id))
            return m3_error_set(err, M3_STATUS_INVALID, 0, "sparse weights must be sorted, unique and positive");
        memcpy((char *)c->fwd + 8 * i, &e->sparse[i].id, 4);
        memcpy((char *)c->fwd + 8 * i + 4, &e->sparse[i].weight, 4);
        c->n_sparse++;
    }
    w->bytes += c->text_len + idx->dense_bytes + c->colbert_len + 8 * c->n_sparse * 2 + 64;
    return M3_STATUS_OK;
nomem:
    return m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
}

m3_status m3_index_writer_put_file(m3_index_writer *w, const char *path, const m3_index_file *info,
                                   const m3_index_chunk_input *chunks, size_t n, m3_error *err)
{
    if (n > (1u << 24)) return m3_error_set(err, M3_STATUS_LIMIT, 0, "%s: too many chunks", path);
    pending_op *op = new_op(w, path, err);
    if (!op) return err ? err->status : M3_STATUS_NOMEM;
    op->put = true;
    op->info = *info;
    op->info.model_version = (uint32_t)strtoull(w->idx->model.checksum + 8, NULL, 16);
    op->info.n_chunks = (uint32_t)n;
    if (n && !(op->chunks = calloc(n, sizeof *op->chunks))) {
        free_op(op);
        w->n_ops--;
        return m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
    }
    op->n = n;
    for (size_t i = 0; i < n; i++) {
        m3_status s = prepare_chunk(w, &chunks[i], &op->chunks[i], err);
        if (s != M3_STATUS_OK) {
            free_op(op);
            w->n_ops--;
            return s;
        }
    }
    w->bytes += strlen(path) + 128;
    return M3_STATUS_OK;
}

m3_status m3_index_writer_touch_file(m3_index_writer *w, const char *path, const m3_index_file *info,
                                     m3_error *err)
{
    pending_op *op = new_op(w, path, err);
    if (!op) return err ? err->status : M3_STATUS_NOMEM;
    op->touch = true;
    op->info = *info;
    w->bytes += strlen(path) + 128;
    return M3_STATUS_OK;
}

m3_status m3_index_writer_move_file(m3_index_writer *w, const char *from, const char *to,
                                    const m3_index_file *info, m3_error *err)
{
    if (strlen(from) == 0 || strlen(from) > 511)
        return m3_error_set(err, M3_STATUS_LIMIT, 0, "%s: path longer than 511 bytes", from);
    pending_op *op = new_op(w, to, err);
    if (!op) return err ? err->status : M3_STATUS_NOMEM;
    if (!(op->move_from = strdup(from))) {
        free_op(op);
        w->n_ops--;
        return m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
    }
    op->info = *info;
    w->bytes += strlen(from) + strlen(to) + 128;
    return M3_STATUS_OK;
}

m3_status m3_index_writer_delete_file(m3_index_writer *w, const char *path, m3_error *err)
{
    pending_op *op = new_op(w, path, err);
    if (!op) return err ? err->status : M3_STATUS_NOMEM;
    w->bytes += strlen(path) + 64;
    return M3_STATUS_OK;
}

// Block cache of sign codes during a commit.
static int block_get(m3_index_writer *w, uint32_t no, unsigned char **buf)
{
    m3_index *idx = w->idx;
    size_t bytes = BITS_LIVE_BYTES + (size_t)BITS_BLOCK * idx->code_bytes;
    for (int i = 0; i < BLOCK_CACHE; i++)
        if (w->cache[i].used && w->cache[i].no == no) {
            *buf = w->cache[i].buf;
            w->cache[i].dirty = true;
            return 0;
        }
    cached_block *cb = &w->cache[w->cache_clock++ % BLOCK_CACHE];
    if (cb->used && cb->dirty) {
        unsigned char kb[4];
        MDB_val k, v = {bytes, cb->buf};
        key_be32(&k, kb, cb->no);
        int rc = mdb_put(w->txn, idx->bits, &k, &v, 0);
        if (rc) return rc;
    }
    cb->used = true;
    cb->dirty = true;
    cb->no = no;
    unsigned char kb[4];
    MDB_val k, v;
    key_be32(&k, kb, no);
    int rc = mdb_get(w->txn, idx->bits, &k, &v);
    if (rc == 0 && v.mv_size == bytes) memcpy(cb->buf, v.mv_data, bytes);
    else if (rc == 0 || rc == MDB_NOTFOUND) memset(cb->buf, 0, bytes);
    else return rc;
    *buf = cb->buf;
    return 0;
}

static int block_flush_all(m3_index_writer *w)
{
    size_t bytes = BITS_LIVE_BYTES + (size_t)BITS_BLOCK * w->idx->code_bytes;
    for (int i = 0; i < BLOCK_CACHE; i++) {
        cached_block *cb = &w->cache[i];
        if (cb->used && cb->dirty) {
            unsigned char kb[4];
            MDB_val k, v = {bytes, cb->buf};
            key_be32(&k, kb, cb->no);
            bool empty = true;
            for (size_t b = 0; b < BITS_LIVE_BYTES; b++)
                if (cb->buf[b]) empty = false;
            int rc = empty ? mdb_del(w->txn, w->idx->bits, &k, NULL) : mdb_put(w->txn, w->idx->bits, &k, &v, 0);
            if (rc && rc != MDB_NOTFOUND) return rc;
        }
        cb->used = cb->dirty = false;
    }
    return 0;
}

static void posting_key(unsigned char kb[8], MDB_val *k, uint32_t term, uint32_t first)
{
    put_be32(kb, term);
    put_be32(kb + 4, first);
    k->mv_data = kb;
    k->mv_size = 8;
}

// Writes a block (count ≥ 1) from decoded ids and weights.
static int posting_write(m3_index_writer *w, uint32_t term, const uint32_t *ids, const float *wts, size_t n)
{
    unsigned char buf[8 + POSTING_BLOCK * 5];
    float max = 0;
    for (size_t i = 0; i < n; i++) max = fmaxf(max, wts[i]);
    uint16_t count = (uint16_t)n, zero = 0;
    memcpy(buf, &count, 2);
    memcpy(buf + 2, &zero, 2);
    memcpy(buf + 4, &max, 4);
    for (size_t i = 0; i < n; i++) {
        memcpy(buf + 8 + 4 * i, &ids[i], 4);
        long q = lrintf(wts[i] / max * 255.0f);
        buf[8 + 4 * n + i] = (unsigned char)(q < 1 ? 1 : q > 255 ? 255 : q);
    }
    unsigned char kb[8];
    MDB_val k, v = {8 + 5 * n, buf};
    posting_key(kb, &k, term, ids[0]);
    return mdb_put(w->txn, w->idx->post, &k, &v, 0);
}

static void posting_decode(const posting_block *b, uint32_t *ids, float *wts)
{
    for (size_t i = 0; i < b->count; i++) {
        ids[i] = posting_id(b, i);
        wts[i] = b->q[i] / 255.0f * b->max;
    }
}

// Finds the block of term that holds (or would hold) chunk id: the last block with first ≤ id.
static int posting_find(MDB_cursor *cur, uint32_t term, uint32_t id, MDB_val *k, MDB_val *v)
{
    unsigned char kb[8];
    posting_key(kb, k, term, id);
    int rc = mdb_cursor_get(cur, k, v, MDB_SET_RANGE);
    if (rc == 0 && k->mv_size == 8 && get_be32(k->mv_data) == term && get_be32((unsigned char *)k->mv_data + 4) == id)
        return 0;
    rc = rc == MDB_NOTFOUND ? mdb_cursor_get(cur, k, v, MDB_LAST) : mdb_cursor_get(cur, k, v, MDB_PREV);
    if (rc) return rc;
    if (k->mv_size != 8 || get_be32(k->mv_data) != term) return MDB_NOTFOUND;
    return 0;
}

static int posting_add(m3_index_writer *w, MDB_cursor *cur, uint32_t term, uint32_t id, float weight)
{
    uint32_t ids[POSTING_BLOCK];
    float wts[POSTING_BLOCK];
    MDB_val k, v;
    int rc = posting_find(cur, term, id, &k, &v);
    posting_block b;
    if (rc == 0 && posting_block_parse(&v, &b) && b.count < POSTING_BLOCK && posting_id(&b, b.count - 1) < id) {
        posting_decode(&b, ids, wts);
        ids[b.count] = id;
        wts[b.count] = weight;
        return posting_write(w, term, ids, wts, b.count + 1);
    }
    if (rc && rc != MDB_NOTFOUND) return rc;
    return posting_write(w, term, &id, &weight, 1);
}

static int posting_remove(m3_index_writer *w, MDB_cursor *cur, uint32_t term, uint32_t id)
{
    uint32_t ids[POSTING_BLOCK];
    float wts[POSTING_BLOCK];
    MDB_val k, v;
    int rc = posting_find(cur, term, id, &k, &v);
    if (rc == MDB_NOTFOUND) return 0;
    if (rc) return rc;
    posting_block b;
    if (!posting_block_parse(&v, &b)) return MDB_CORRUPTED;
    posting_decode(&b, ids, wts);
    size_t n = 0;
    for (size_t i = 0; i < b.count; i++)
        if (ids[i] != id) {
            ids[n] = ids[i];
            wts[n++] = wts[i];
        }
    if (n == b.count) return 0;
    uint32_t old_first = get_be32((unsigned char *)k.mv_data + 4);
    if (n == 0 || ids[0] != old_first) {
        if ((rc = mdb_cursor_del(cur, 0))) return rc;
    }
    return n ? posting_write(w, term, ids, wts, n) : 0;
}

static int del_key(MDB_txn *txn, MDB_dbi dbi, uint32_t id)
{
    unsigned char kb[4];
    MDB_val k;
    key_be32(&k, kb, id);
    int rc = mdb_del(txn, dbi, &k, NULL);
    return rc == MDB_NOTFOUND ? 0 : rc;
}

static int remove_chunks(m3_index_writer *w, MDB_cursor *pc, const m3_index_file *f)
{
    m3_index *idx = w->idx;
    for (uint32_t i = 0; i < f->n_chunks; i++) {
        uint32_t id = f->first_chunk + i;
        unsigned char kb[4];
        MDB_val k, v;
        key_be32(&k, kb, id);
        int rc = mdb_get(w->txn, idx->fwd, &k, &v);
        if (rc == 0) {
            size_t n = v.mv_size / 8;
            // Copy: the value lives in a page that the postings updates may move.
            uint32_t *terms = malloc(n * 4 + 1);
            if (!terms) return ENOMEM;
            for (size_t t = 0; t < n; t++) memcpy(&terms[t], (char *)v.mv_data + 8 * t, 4);
            for (size_t t = 0; t < n && !rc; t++) rc = posting_remove(w, pc, terms[t], id);
            free(terms);
            if (rc) return rc;
        } else if (rc != MDB_NOTFOUND) {
            return rc;
        }
        if ((rc = del_key(w->txn, idx->fwd, id)) || (rc = del_key(w->txn, idx->chunks, id)) ||
            (rc = del_key(w->txn, idx->text, id)) || (rc = del_key(w->txn, idx->dense, id)) ||
            (rc = del_key(w->txn, idx->colbert, id)) || (rc = del_key(w->txn, idx->location, id)))
            return rc;
        unsigned char *blk;
        if ((rc = block_get(w, id / BITS_BLOCK, &blk))) return rc;
        blk[(id % BITS_BLOCK) / 8] &= (unsigned char)~(1u << (id % 8));
    }
    return 0;
}

static int put_id(MDB_txn *txn, MDB_dbi dbi, uint32_t id, const void *data, size_t size)
{
    unsigned char kb[4];
    MDB_val k, v = {size, (void *)data};
    key_be32(&k, kb, id);
    return mdb_put(txn, dbi, &k, &v, 0);
}

// A move: the record at move_from goes to path (replacing what was there), chunks untouched.
static int apply_move(m3_index_writer *w, MDB_cursor *pc, pending_op *op)
{
    m3_index *idx = w->idx;
    MDB_val from = {strlen(op->move_from), op->move_from}, to = {strlen(op->path), op->path}, v;
    m3_index_file f, old;
    int rc = mdb_get(w->txn, idx->files, &from, &v);
    if (rc) return rc == MDB_NOTFOUND ? 0 : rc;
    if (!rec_to_file(&v, &f)) return MDB_CORRUPTED;
    if ((rc = mdb_get(w->txn, idx->files, &to, &v)) == 0) {
        if (!rec_to_file(&v, &old)) return MDB_CORRUPTED;
        if ((rc = remove_chunks(w, pc, &old)) || (rc = del_key(w->txn, idx->fileids, old.file_id))) return rc;
    } else if (rc != MDB_NOTFOUND) {
        return rc;
    }
    if ((rc = mdb_del(w->txn, idx->files, &from, NULL))) return rc;
    f.size = op->info.size;
    f.mtime_ns = op->info.mtime_ns;
    f.hash = op->info.hash;
    unsigned char r[FILE_REC_MAX];
    v.mv_size = file_to_rec(&f, r);
    v.mv_data = r;
    if ((rc = mdb_put(w->txn, idx->files, &to, &v, 0))) return rc;
    return put_id(w->txn, idx->fileids, f.file_id, op->path, strlen(op->path));
}

static int apply_op(m3_index_writer *w, MDB_cursor *pc, pending_op *op)
{
    m3_index *idx = w->idx;
    MDB_val k = {strlen(op->path), op->path}, v;
    m3_index_file old;
    bool had = false;
    int rc = mdb_get(w->txn, idx->files, &k, &v);
    if (op->touch) {
        if (rc) return rc == MDB_NOTFOUND ? 0 : rc;
        if (!rec_to_file(&v, &old)) return MDB_CORRUPTED;
        old.size = op->info.size;
        old.mtime_ns = op->info.mtime_ns;
        old.hash = op->info.hash;
        unsigned char r[FILE_REC_MAX];
        v.mv_size = file_to_rec(&old, r);
        v.mv_data = r;
        return mdb_put(w->txn, idx->files, &k, &v, 0);
    }
    if (op->move_from) return apply_move(w, pc, op);
    if (rc == 0) {
        if (!rec_to_file(&v, &old)) return MDB_CORRUPTED;
        had = true;
        if ((rc = remove_chunks(w, pc, &old))) return rc;
    } else if (rc != MDB_NOTFOUND) {
        return rc;
    }
    if (!op->put) {
        if (!had) return 0;
        if ((rc = mdb_del(w->txn, idx->files, &k, NULL))) return rc;
        return del_key(w->txn, idx->fileids, old.file_id);
    }
    m3_index_file f = op->info;
    f.file_id = had ? old.file_id : w->next_file++;
    if ((uint64_t)w->next_chunk + op->n > UINT32_MAX) return MDB_MAP_FULL;
    f.first_chunk = w->next_chunk;
    w->next_chunk += (uint32_t)op->n;
    for (size_t i = 0; i < op->n; i++) {
        pending_chunk *c = &op->chunks[i];
        uint32_t id = f.first_chunk + (uint32_t)i;
        c->rec.file_id = f.file_id;
        if ((rc = put_id(w->txn, idx->chunks, id, &c->rec, sizeof c->rec)) ||
            (rc = put_id(w->txn, idx->text, id, c->text, c->text_len)) ||
            (rc = put_id(w->txn, idx->dense, id, c->dense, idx->dense_bytes)) ||
            (c->colbert && (rc = put_id(w->txn, idx->colbert, id, c->colbert, c->colbert_len))) ||
            (rc = put_id(w->txn, idx->fwd, id, c->fwd ? c->fwd : "", 8 * c->n_sparse)) ||
            (c->location[0] && (rc = put_id(w->txn, idx->location, id, c->location, strlen(c->location)))))
            return rc;
        for (size_t t = 0; t < c->n_sparse; t++) {
            uint32_t term;
            float wt;
            memcpy(&term, (char *)c->fwd + 8 * t, 4);
            memcpy(&wt, (char *)c->fwd + 8 * t + 4, 4);
            if ((rc = posting_add(w, pc, term, id, wt))) return rc;
        }
        unsigned char *blk;
        if ((rc = block_get(w, id / BITS_BLOCK, &blk))) return rc;
        size_t slot = id % BITS_BLOCK;
        blk[slot / 8] |= (unsigned char)(1u << (slot % 8));
        memcpy(blk + BITS_LIVE_BYTES + slot * idx->code_bytes, c->code, idx->code_bytes);
    }
    unsigned char r[FILE_REC_MAX];
    v.mv_size = file_to_rec(&f, r);
    v.mv_data = r;
    if ((rc = mdb_put(w->txn, idx->files, &k, &v, 0))) return rc;
    return put_id(w->txn, idx->fileids, f.file_id, op->path, strlen(op->path));
}

static int diagnose_short_write(const m3_index *idx)
{
    char path[PATH_MAX];
    snprintf(path, sizeof path, "%s/data.mdb", idx->dir);
    struct statvfs vfs;
    struct rlimit rl;
    struct stat st;
    if (statvfs(idx->dir, &vfs) == 0 && (uint64_t)vfs.f_bavail * vfs.f_frsize < ((uint64_t)64 << 20)) return ENOSPC;
    if (getrlimit(RLIMIT_FSIZE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && stat(path, &st) == 0 &&
        (uint64_t)st.st_size + ((uint64_t)1 << 20) >= (uint64_t)rl.rlim_cur)
        return EFBIG;
    return EIO;
}

static int commit_once(m3_index_writer *w)
{
    m3_index *idx = w->idx;
    int rc = mdb_txn_begin(idx->env, NULL, 0, &w->txn);
    if (rc) return rc;
    for (int i = 0; i < BLOCK_CACHE; i++) w->cache[i].used = w->cache[i].dirty = false;
    if (!meta_u32(w->txn, idx->meta, "next_chunk", &w->next_chunk) ||
        !meta_u32(w->txn, idx->meta, "next_file", &w->next_file)) {
        rc = MDB_CORRUPTED;
        goto fail;
    }
    MDB_cursor *pc;
    if ((rc = mdb_cursor_open(w->txn, idx->post, &pc))) goto fail;
    for (size_t i = 0; i < w->n_ops && !rc; i++) rc = apply_op(w, pc, &w->ops[i]);
    mdb_cursor_close(pc);
    if (rc) goto fail;
    if ((rc = block_flush_all(w))) goto fail;
    if ((rc = meta_put(w->txn, idx->meta, "next_chunk", &w->next_chunk, 4)) ||
        (rc = meta_put(w->txn, idx->meta, "next_file", &w->next_file, 4)))
        goto fail;
    errno = 0;
    rc = mdb_txn_commit(w->txn);  // frees the transaction, even on failure
    // LMDB reports a failed write as EIO; the errno of the write says whether the disk was full.
    if (rc == EIO && (errno == ENOSPC || errno == EFBIG || errno == EDQUOT)) rc = errno;
    // A short write is also reported as EIO: look at the free space and the file size limit.
    if (rc == EIO) rc = diagnose_short_write(idx);
    w->txn = NULL;
    return rc;
fail:
    mdb_txn_abort(w->txn);
    w->txn = NULL;
    return rc;
}

m3_status m3_index_writer_commit(m3_index_writer *w, m3_error *err)
{
    if (!w->n_ops) return M3_STATUS_OK;
    m3_index *idx = w->idx;
    int rc = 0;
    for (int tries = 0; tries < MAX_GROW_TRIES; tries++) {
        rc = commit_once(w);
        if (rc != MDB_MAP_FULL) break;
        // Grow the map (no transaction of ours is active now) and redo the whole batch.
        MDB_envinfo info;
        mdb_env_info(idx->env, &info);
        size_t grow = info.me_mapsize < ((size_t)1 << 30) ? info.me_mapsize : ((size_t)1 << 30);
        if (grow < w->bytes * 2) grow = w->bytes * 2;
        int rc2 = mdb_env_set_mapsize(idx->env, info.me_mapsize + grow);
        if (rc2) {
            rc = rc2;
            break;
        }
    }
    drop_pending(w);
    if (rc) return m3_index_mdb_error(idx, rc, "commit", err);
    return M3_STATUS_OK;
}

// ---- stats -------------------------------------------------------------------------------------

static uint64_t db_bytes(MDB_txn *txn, MDB_dbi dbi, size_t *entries)
{
    MDB_stat st;
    if (mdb_stat(txn, dbi, &st) != 0) return 0;
    if (entries) *entries = st.ms_entries;
    return (uint64_t)(st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages) * st.ms_psize;
}

typedef struct stats_ctx {
    m3_index_stats *st;
} stats_ctx;

static int stats_file_cb(const char *path, const m3_index_file *f, void *user)
{
    (void)path;
    m3_index_stats *st = user;
    st->files++;
    if (f->state == M3_FILE_FAILED) st->files_failed++;
    if (f->state == M3_FILE_SKIPPED) st->files_skipped++;
    st->tokens += f->tokens;
    return 0;
}

m3_status m3_index_get_stats(m3_index *idx, m3_index_stats *out, m3_error *err)
{
    memset(out, 0, sizeof *out);
    m3_status s = m3_index_list_files(idx, stats_file_cb, out, err);
    if (s != M3_STATUS_OK) return s;
    MDB_txn *txn;
    int rc = m3_index_begin_read(idx, &txn);
    if (rc) return m3_index_mdb_error(idx, rc, "begin", err);
    size_t n = 0;
    out->bytes_text = db_bytes(txn, idx->text, NULL);
    out->bytes_dense = db_bytes(txn, idx->dense, &n);
    out->chunks = n;
    out->bytes_bits = db_bytes(txn, idx->bits, NULL);
    out->bytes_sparse = db_bytes(txn, idx->post, NULL) + db_bytes(txn, idx->fwd, NULL);
    out->bytes_colbert = db_bytes(txn, idx->colbert, NULL);
    // Postings and ColBERT vectors: counted from the forward vectors' and ColBERT headers' sizes.
    MDB_cursor *cur;
    MDB_val k, v;
    if (mdb_cursor_open(txn, idx->fwd, &cur) == 0) {
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
            out->postings += v.mv_size / 8;
        mdb_cursor_close(cur);
    }
    if (mdb_cursor_open(txn, idx->colbert, &cur) == 0) {
        for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
            colbert_view cv;
            if (!m3_index_colbert_parse(idx, &v, &cv)) continue;  // m3 check reports it
            out->colbert_vectors += cv.n;
            out->colbert_tokens += cv.tokens;
            out->colbert_value_bytes += v.mv_size;
        }
        mdb_cursor_close(cur);
    }
    mdb_txn_abort(txn);
    MDB_envinfo info;
    MDB_stat mst;
    mdb_env_info(idx->env, &info);
    mdb_env_stat(idx->env, &mst);
    out->map_size = info.me_mapsize;
    out->used_bytes = (uint64_t)(info.me_last_pgno + 1) * mst.ms_psize;
    char path[PATH_MAX];
    struct stat st;
    snprintf(path, sizeof path, "%s/data.mdb", idx->dir);
    if (stat(path, &st) == 0) out->file_bytes = (uint64_t)st.st_blocks * 512;
    return M3_STATUS_OK;
}
