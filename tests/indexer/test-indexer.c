// SPDX-License-Identifier: MIT
//
// The indexing pipeline's API (core/indexer/indexer.h) driven directly, with the tiny model:
//   - a sync indexes what it finds, skips what no extractor reads, and a second sync changes
//     nothing;
//   - an upgraded extractor (another version under the same name) re-reads exactly the files it
//     read (the others are not even opened), and a new extractor gives the files none could read
//     another look;
//   - the per-file callback reports every outcome; a cancelled run returns M3_STATUS_CANCELLED;
//   - exclusions and hidden names (m3_indexer_wants);
//   - which folders count as network or removable (skipped unless the user allows them);
//   - an unreadable file or folder is recorded as failed with its reason and looked at again at
//     every run; what the index holds under an unreadable folder stays (run as `nobody` when the
//     test runs as root, who reads anything);
//   - a path longer than the index's key limit is reported as failed at every run, never skipped
//     unsaid, also when named directly.
// usage: test-indexer M3_EXECUTABLE   (its `extract-helper` is the sandboxed extraction helper)
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "encoder/encoder.h"
#include "extract/extract.h"
#include "index/index.h"
#include "indexer/indexer-private.h"
#include "indexer/indexer.h"
#include "model/model.h"

static int failures;
#define CHECK(cond, ...)                                                                  \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            failures++;                                                                   \
            printf("FAIL %s:%d: ", __FILE__, __LINE__);                                   \
            printf(__VA_ARGS__);                                                          \
            printf("\n");                                                                 \
        }                                                                                 \
    } while (0)

// Outcomes of the last run, per file name (the last component of the path).
typedef struct seen {
    char names[16][256];
    char reasons[16][256];
    int outcome[16];
    int n;
} seen;

static void on_file(const char *path, m3_file_outcome outcome, const char *reason, void *user)
{
    seen *s = user;
    if (s->n < 16) {
        snprintf(s->names[s->n], sizeof s->names[0], "%s", strrchr(path, '/') + 1);
        snprintf(s->reasons[s->n], sizeof s->reasons[0], "%s", reason ? reason : "");
        s->outcome[s->n++] = (int)outcome;
    }
}

static int outcome_of(const seen *s, const char *name)
{
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->names[i], name)) return s->outcome[i];
    return -1;
}

static const char *reason_of(const seen *s, const char *name)
{
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->names[i], name)) return s->reasons[i];
    return "";
}

static m3_status read_as_text(const unsigned char *data, size_t size, const char *path, m3_extracted *out,
                              m3_error *err)
{
    return m3_extract_decode_text(data, size, path, out, err);
}

static const char *const fk_ext[] = {"fk", NULL};
static const char *const zz_ext[] = {"zz", NULL};
static const char *const yy_ext[] = {"yy", NULL};
static const m3_extractor fake_v1 = {.name = "fakefmt", .version = 1, .extensions = fk_ext, .extract = read_as_text};
static const m3_extractor fake_v2 = {.name = "fakefmt", .version = 2, .extensions = fk_ext, .extract = read_as_text};
static const m3_extractor zz_v1 = {.name = "zzfmt", .version = 1, .extensions = zz_ext, .extract = read_as_text};
static const m3_extractor yy_v1 = {.name = "yyfmt", .version = 1, .extensions = yy_ext, .extract = read_as_text};

static void write_file(const char *dir, const char *name, const char *text, size_t len)
{
    char path[1500];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (!f) {
        printf("FAIL: cannot write %s\n", path);
        failures++;
        return;
    }
    fwrite(text, 1, len, f);
    fclose(f);
}

// The crawler's rule for network and removable file systems: statfs magics and mount points.
static void test_remote_fs(void)
{
    const unsigned long ext4 = 0xEF53, tmpfs = 0x01021994, btrfs = 0x9123683E;
    CHECK(!m3_indexer_remote_fs("/home/ana/Documents", ext4), "ext4 home is local");
    CHECK(!m3_indexer_remote_fs("/tmp/x", tmpfs), "tmpfs is local");
    CHECK(!m3_indexer_remote_fs("/mnt/data", btrfs), "a disk under /mnt is local");
    CHECK(!m3_indexer_remote_fs("/home/mediaplayer", ext4), "a name starting with 'media' is local");
    CHECK(m3_indexer_remote_fs("/media/ana/USB/Docs", ext4), "udisks mounts under /media are removable");
    CHECK(m3_indexer_remote_fs("/run/media/ana/SD", 0x4d44), "udisks mounts under /run/media are removable");
    const unsigned long network[] = {0x6969, 0xFF534D42, 0xFE534D42, 0x517B, 0x65735546, 0x01021997};
    for (size_t i = 0; i < sizeof network / sizeof *network; i++)
        CHECK(m3_indexer_remote_fs("/home/ana/net", network[i]), "statfs magic %#lx is a network file system",
              network[i]);
}

// The model, an encoder and an index with its writer.
typedef struct rig {
    m3_model *model;
    m3_encoder *enc;
    m3_index *idx;
    m3_index_writer *wr;
} rig;

static bool rig_open(rig *r, const char *model_dir, const char *idx_dir)
{
    m3_error err = {0};
    m3_index_model mid;
    m3_encoder_options eo = m3_encoder_options_default();
    eo.threads = 1;
    *r = (rig){0};
    if (m3_model_open(model_dir, &r->model, &err) || m3_index_model_identify(model_dir, &mid, &err) ||
        m3_encoder_new(r->model, &eo, &r->enc, &err)) {
        printf("FAIL: model: %s\n", err.message);
        return false;
    }
    m3_index_options io = {.flags = M3_INDEX_CREATE, .model = &mid};
    if (m3_index_open(idx_dir, &io, &r->idx, &err) || m3_index_writer_new(r->idx, &r->wr, &err)) {
        printf("FAIL: index: %s\n", err.message);
        return false;
    }
    return true;
}

static void rig_close(rig *r)
{
    m3_index_writer_free(r->wr);
    m3_index_close(r->idx);
    m3_encoder_free(r->enc);
    m3_model_close(r->model);
}

static m3_indexer *indexer_over(rig *r, const char *root, const char *const *helper, seen *s)
{
    const char *roots[] = {root};
    m3_indexer_options o = m3_indexer_options_default();
    o.roots = roots;
    o.n_roots = 1;
    o.helper_argv = helper;
    o.on_file = on_file;
    o.user = s;
    m3_indexer *ix = NULL;
    m3_error err = {0};
    CHECK(m3_indexer_new(r->idx, r->wr, r->enc, m3_model_get_tokenizer(r->model), &o, &ix, &err) == M3_STATUS_OK,
          "indexer over %s: %s", root, err.message);
    return ix;
}

static void remove_tree(const char *dir)
{
    char cmd[700];
    snprintf(cmd, sizeof cmd, "chmod -R u+rwX '%s' 2>/dev/null; rm -rf '%s'", dir, dir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", dir);
}

// Unreadable files and folders are failures the user sees (recorded with the reason, looked at
// again at every run), never left out unsaid. Needs a user whom permissions stop.
static void test_unreadable(const char *m3, const char *model_dir)
{
    char tmpl[] = "/tmp/m3-indexer-perm-XXXXXX", docs[600], locked[700], idx_dir[600], path[800];
    if (!mkdtemp(tmpl)) {
        CHECK(false, "mkdtemp");
        return;
    }
    snprintf(docs, sizeof docs, "%s/docs", tmpl);
    snprintf(locked, sizeof locked, "%s/locked", docs);
    snprintf(idx_dir, sizeof idx_dir, "%s/index", tmpl);
    mkdir(docs, 0700);
    mkdir(locked, 0700);
    write_file(docs, "ok.txt", "A readable file about dolphins.\n", 32);
    write_file(docs, "noread.txt", "A secret about tigers.\n", 23);
    write_file(locked, "z.txt", "Zebras on the savanna.\n", 23);
    snprintf(path, sizeof path, "%s/noread.txt", docs);
    chmod(path, 0);
    rig r;
    const char *helper[] = {m3, "extract-helper", NULL};
    seen s = {0};
    m3_indexer *ix = rig_open(&r, model_dir, idx_dir) ? indexer_over(&r, docs, helper, &s) : NULL;
    m3_error err = {0};
    m3_index_file f;
    if (!ix) goto out;

    CHECK(m3_indexer_sync(ix, &err) == M3_STATUS_OK, "sync with an unreadable file: %s", err.message);
    CHECK(outcome_of(&s, "ok.txt") == M3_OUTCOME_INDEXED && outcome_of(&s, "z.txt") == M3_OUTCOME_INDEXED,
          "the readable files are indexed");
    CHECK(outcome_of(&s, "noread.txt") == M3_OUTCOME_FAILED &&
              !strcmp(reason_of(&s, "noread.txt"), "cannot open: Permission denied"),
          "an unreadable file fails with its reason (%d, '%s')", outcome_of(&s, "noread.txt"),
          reason_of(&s, "noread.txt"));
    CHECK(m3_index_get_file(r.idx, path, &f, NULL) == M3_STATUS_OK && f.state == M3_FILE_FAILED &&
              !strcmp(f.reason, "cannot open: Permission denied"),
          "the index records the unreadable file as failed, with the reason");
    CHECK(ix->prog.failed == 1, "the run counts it as failed (%zu)", ix->prog.failed);

    // The folder becomes unreadable: it fails, and what the index holds in it stays.
    chmod(locked, 0);
    memset(&s, 0, sizeof s);
    CHECK(m3_indexer_sync(ix, &err) == M3_STATUS_OK, "sync with an unreadable folder: %s", err.message);
    CHECK(outcome_of(&s, "locked") == M3_OUTCOME_FAILED && strstr(reason_of(&s, "locked"), "Permission denied"),
          "an unreadable folder fails with its reason (%d, '%s')", outcome_of(&s, "locked"), reason_of(&s, "locked"));
    CHECK(m3_index_get_file(r.idx, locked, &f, NULL) == M3_STATUS_OK && f.state == M3_FILE_FAILED,
          "the index records the unreadable folder as failed");
    CHECK(outcome_of(&s, "z.txt") == -1, "a file in an unreadable folder is not dropped (%d)", outcome_of(&s, "z.txt"));
    CHECK(outcome_of(&s, "noread.txt") == M3_OUTCOME_FAILED, "the unreadable file is looked at again at every run");
    CHECK(outcome_of(&s, "ok.txt") == -1, "an unchanged file is not (%d)", outcome_of(&s, "ok.txt"));

    // Readable again (a chmod changes neither size nor mtime): both are picked up.
    chmod(path, 0644);
    chmod(locked, 0755);
    memset(&s, 0, sizeof s);
    CHECK(m3_indexer_sync(ix, &err) == M3_STATUS_OK, "sync after chmod: %s", err.message);
    CHECK(outcome_of(&s, "noread.txt") == M3_OUTCOME_INDEXED, "the file is indexed once readable (%d)",
          outcome_of(&s, "noread.txt"));
    CHECK(outcome_of(&s, "locked") == M3_OUTCOME_REMOVED && m3_index_get_file(r.idx, locked, &f, NULL) == M3_STATUS_NOT_FOUND,
          "the folder's failure is dropped once it can be read (%d)", outcome_of(&s, "locked"));
    snprintf(path, sizeof path, "%s/z.txt", locked);
    CHECK(m3_index_get_file(r.idx, path, &f, NULL) == M3_STATUS_OK && f.state == M3_FILE_DONE, "its file is still indexed");
    CHECK(ix->prog.failed == 0, "nothing failed (%zu)", ix->prog.failed);

    // Deleted between the walk and the read: gone, not failed (the walk of a vanished path too).
    memset(&s, 0, sizeof s);
    snprintf(path, sizeof path, "%s/never-there.txt", docs);
    const char *paths[] = {path};
    CHECK(m3_indexer_update(ix, paths, 1, 0, &err) == M3_STATUS_OK && s.n == 0 && ix->prog.failed == 0,
          "a path that does not exist is no failure (%d outcomes)", s.n);
out:
    m3_indexer_free(ix);
    rig_close(&r);
    remove_tree(tmpl);
}

// Runs test_unreadable in a child that permissions stop: this user, or `nobody` for root.
static void test_unreadable_as_user(const char *m3, const char *model_dir)
{
    fflush(stdout);
    pid_t pid = fork();
    if (pid < 0) {
        CHECK(false, "fork");
        return;
    }
    if (pid == 0) {
        if (geteuid() == 0) {
            const struct passwd *pw = getpwnam("nobody");
            if (!pw || setgroups(0, NULL) != 0 || setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0 || geteuid() == 0) {
                printf("SKIP unreadable files: running as root, who reads anything, and cannot become nobody\n");
                fflush(stdout);
                _exit(0);
            }
            char probe[700];
            snprintf(probe, sizeof probe, "%s/config.json", model_dir);
            if (access(m3, X_OK) != 0 || access(probe, R_OK) != 0) {
                printf("SKIP unreadable files: running as root, and nobody cannot reach %s or %s\n", m3, model_dir);
                fflush(stdout);
                _exit(0);
            }
        }
        test_unreadable(m3, model_dir);
        fflush(stdout);
        _exit(failures ? 1 : 0);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "the unreadable-files checks failed (status %#x)", status);
}

// A name of n times c (n < 256), valid until the next call.
static const char *repeat(char c, size_t n)
{
    static char buf[256];
    memset(buf, c, n);
    buf[n] = 0;
    return buf;
}

// Paths longer than the index's key limit cannot be indexed, nor recorded: each run says so.
static void test_long_paths(rig *r, const char *const *helper, const char *base)
{
    char root[600], dir[1200], file[1400], name[300];
    snprintf(root, sizeof root, "%s/long", base);
    mkdir(root, 0700);
    write_file(root, "horses.txt", "A short file about horses.\n", 27);
    // root/bbb…/ccc… fits; a file of 120 characters in it does not, nor does the folder eee… .
    snprintf(dir, sizeof dir, "%s/%s", root, repeat('b', 200));
    mkdir(dir, 0700);
    snprintf(dir + strlen(dir), sizeof dir - strlen(dir), "/%s", repeat('c', 200));
    mkdir(dir, 0700);
    snprintf(name, sizeof name, "%s.txt", repeat('f', 120));
    write_file(dir, name, "A file too deep about owls.\n", 28);
    snprintf(file, sizeof file, "%s/%s", dir, name);
    char deep[1400];
    snprintf(deep, sizeof deep, "%s/%s", dir, repeat('e', 200));
    mkdir(deep, 0700);
    write_file(deep, "penguins.txt", "Penguins on the ice.\n", 21);
    CHECK(strlen(dir) <= M3_INDEXER_PATH_MAX && strlen(file) > M3_INDEXER_PATH_MAX &&
              strlen(deep) > M3_INDEXER_PATH_MAX,
          "the long paths are as long as the test needs (%zu, %zu, %zu)", strlen(dir), strlen(file), strlen(deep));
    seen s = {0};
    m3_indexer *ix = indexer_over(r, root, helper, &s);
    m3_error err = {0};
    if (!ix) return;
    const char *deep_name = strrchr(deep, '/') + 1;
    for (int run = 0; run < 2; run++) {
        memset(&s, 0, sizeof s);
        CHECK(m3_indexer_sync(ix, &err) == M3_STATUS_OK, "sync with long paths: %s", err.message);
        CHECK(outcome_of(&s, "horses.txt") == (run ? -1 : M3_OUTCOME_INDEXED), "run %d: the short file (%d)", run,
              outcome_of(&s, "horses.txt"));
        CHECK(outcome_of(&s, name) == M3_OUTCOME_FAILED &&
                  !strcmp(reason_of(&s, name), "path longer than 511 bytes: not indexed"),
              "run %d: a file path over 511 bytes is reported (%d, '%s')", run, outcome_of(&s, name),
              reason_of(&s, name));
        CHECK(outcome_of(&s, deep_name) == M3_OUTCOME_FAILED && strstr(reason_of(&s, deep_name), "longer than 511 bytes"),
              "run %d: a folder path over 511 bytes is reported once for what is in it (%d, '%s')", run,
              outcome_of(&s, deep_name), reason_of(&s, deep_name));
        CHECK(outcome_of(&s, "penguins.txt") == -1, "run %d: not each file in it", run);
        CHECK(ix->prog.failed == 2, "run %d: both are counted as failed (%zu)", run, ix->prog.failed);
    }
    // Named directly (the service's update of a path it was told about).
    memset(&s, 0, sizeof s);
    const char *paths[] = {file};
    CHECK(m3_indexer_update(ix, paths, 1, 0, &err) == M3_STATUS_OK && s.n == 1 &&
              outcome_of(&s, name) == M3_OUTCOME_FAILED,
          "a long path named directly is reported (%d outcomes)", s.n);
    m3_indexer_free(ix);
}

int main(int argc, char **argv)
{
    test_remote_fs();
    const char *data = getenv("M3_TEST_DATA");
    if (argc < 2 || !data) {
        fprintf(stderr, "usage: test-indexer M3_EXECUTABLE (with M3_TEST_DATA set)\n");
        return 2;
    }
    char tmpl[] = "/tmp/m3-indexer-XXXXXX", docs[600], idx_dir[600], model_dir[600];
    snprintf(model_dir, sizeof model_dir, "%s/m3-tiny", data);
    test_unreadable_as_user(argv[1], model_dir);  // first: a child forked before any thread starts
    if (!mkdtemp(tmpl)) return 2;
    snprintf(docs, sizeof docs, "%s/docs", tmpl);
    snprintf(idx_dir, sizeof idx_dir, "%s/index", tmpl);
    mkdir(docs, 0700);
    mkdir(strcat(strcpy((char[700]){0}, docs), "/node_modules"), 0700);
    write_file(docs, "a.fk", "Die Steuererklärung muss bis Ende Mai beim Finanzamt sein.\n", 59);
    write_file(docs, "b.fk", "Le chat dort sur le canapé toute la journée.\n", 46);
    write_file(docs, "c.txt", "The compiler builds the program from its sources.\n", 50);
    write_file(docs, "d.txt", "El gato duerme en el sofá todo el día.\n", 40);
    write_file(docs, "e.zz", "binary\0\1\2 data", 15);
    write_file(docs, "f.yy", "Tomatoes and beans grow in the garden.\n", 39);  // text, for now
    write_file(docs, ".hidden.txt", "hidden\n", 7);
    char nm[700];
    snprintf(nm, sizeof nm, "%s/node_modules", docs);
    write_file(nm, "dep.txt", "excluded\n", 9);

    CHECK(m3_extract_register(&fake_v1) == M3_STATUS_OK, "register fakefmt v1");
    m3_error err = {0};
    m3_model *model = NULL;
    m3_encoder *enc = NULL;
    m3_index *idx = NULL;
    m3_index_writer *wr = NULL;
    m3_index_model mid;
    m3_encoder_options eo = m3_encoder_options_default();
    eo.threads = 1;
    if (m3_model_open(model_dir, &model, &err) || m3_index_model_identify(model_dir, &mid, &err) ||
        m3_encoder_new(model, &eo, &enc, &err)) {
        printf("FAIL: model: %s\n", err.message);
        return 1;
    }
    m3_index_options io = {.flags = M3_INDEX_CREATE, .model = &mid};
    if (m3_index_open(idx_dir, &io, &idx, &err) || m3_index_writer_new(idx, &wr, &err)) {
        printf("FAIL: index: %s\n", err.message);
        return 1;
    }
    const char *helper[] = {argv[1], "extract-helper", NULL};
    const char *roots[] = {docs};
    const char *exclude[] = {"node_modules"};
    seen s = {0};
    m3_indexer_options o = m3_indexer_options_default();
    o.roots = roots;
    o.n_roots = 1;
    o.exclude = exclude;
    o.n_exclude = 1;
    o.helper_argv = helper;
    o.on_file = on_file;
    o.user = &s;
    m3_indexer *ix = NULL;
    CHECK(m3_indexer_new(idx, wr, enc, m3_model_get_tokenizer(model), &o, &ix, &err) == M3_STATUS_OK, "indexer: %s",
          err.message);
    if (!ix) return 1;

    CHECK(!m3_indexer_wants(ix, nm) && !m3_indexer_wants(ix, strcat(strcpy((char[800]){0}, docs), "/.hidden.txt")) &&
              m3_indexer_wants(ix, docs),
          "exclusions and hidden names are not wanted");
    CHECK(m3_indexer_sync(ix, &err) == M3_STATUS_OK, "first sync: %s", err.message);
    CHECK(outcome_of(&s, "a.fk") == M3_OUTCOME_INDEXED && outcome_of(&s, "b.fk") == M3_OUTCOME_INDEXED &&
              outcome_of(&s, "c.txt") == M3_OUTCOME_INDEXED && outcome_of(&s, "d.txt") == M3_OUTCOME_INDEXED,
          "first sync indexes the four readable files");
    CHECK(outcome_of(&s, "e.zz") == M3_OUTCOME_SKIPPED, "a file no extractor reads is skipped (%d)", outcome_of(&s, "e.zz"));
    CHECK(outcome_of(&s, ".hidden.txt") == -1 && outcome_of(&s, "dep.txt") == -1, "hidden and excluded files untouched");

    memset(&s, 0, sizeof s);
    CHECK(m3_indexer_sync(ix, &err) == M3_STATUS_OK && s.n == 0, "a second sync finds nothing to do (%d files)", s.n);

    // fakefmt 2 replaces 1: exactly its two files are read again.
    CHECK(m3_extract_register(&fake_v2) == M3_STATUS_OK && m3_extract_find_name("fakefmt") == &fake_v2,
          "fakefmt v2 replaces v1");
    memset(&s, 0, sizeof s);
    CHECK(m3_indexer_sync(ix, &err) == M3_STATUS_OK, "sync after the upgrade: %s", err.message);
    // (The file no extractor reads is looked at again too, and skipped again: the set changed.)
    CHECK(outcome_of(&s, "a.fk") == M3_OUTCOME_INDEXED && outcome_of(&s, "b.fk") == M3_OUTCOME_INDEXED &&
              outcome_of(&s, "c.txt") == -1 && outcome_of(&s, "d.txt") == -1 &&
              (outcome_of(&s, "e.zz") == -1 || outcome_of(&s, "e.zz") == M3_OUTCOME_SKIPPED),
          "an upgraded extractor re-reads exactly its files (%d files looked at)", s.n);
    m3_index_file f;
    char apath[700];
    snprintf(apath, sizeof apath, "%s/a.fk", docs);
    CHECK(m3_index_get_file(idx, apath, &f, NULL) == M3_STATUS_OK && f.extractor_version == 2 &&
              !strcmp(f.extractor, "fakefmt"),
          "the index records the new version");

    // New extractors: the file none could read gets another look, and so does the file the text
    // fallback read whose extension one of them names now (flat OpenDocument's fods and fodp were
    // read as XML text before they had an extractor); nothing else.
    char ypath[700];
    snprintf(ypath, sizeof ypath, "%s/f.yy", docs);
    CHECK(m3_index_get_file(idx, ypath, &f, NULL) == M3_STATUS_OK && !strcmp(f.extractor, "text"),
          "f.yy was read as text (%s)", f.extractor);
    CHECK(m3_extract_register(&zz_v1) == M3_STATUS_OK && m3_extract_register(&yy_v1) == M3_STATUS_OK,
          "register zzfmt and yyfmt");
    memset(&s, 0, sizeof s);
    CHECK(m3_indexer_sync(ix, &err) == M3_STATUS_OK, "sync after new extractors: %s", err.message);
    CHECK(s.n == 2 && outcome_of(&s, "e.zz") != -1 && outcome_of(&s, "e.zz") != M3_OUTCOME_UNCHANGED &&
              outcome_of(&s, "f.yy") == M3_OUTCOME_INDEXED,
          "new extractors: the unreadable file and the one their extension now names are read again (%d files, "
          "outcomes %d %d)", s.n, outcome_of(&s, "e.zz"), outcome_of(&s, "f.yy"));
    CHECK(m3_index_get_file(idx, ypath, &f, NULL) == M3_STATUS_OK && !strcmp(f.extractor, "yyfmt"),
          "f.yy is now read by yyfmt (%s)", f.extractor);
    memset(&s, 0, sizeof s);
    CHECK(m3_indexer_sync(ix, &err) == M3_STATUS_OK && s.n == 0, "then nothing to do (%d files)", s.n);

    // Cancelled before it starts: the run says so.
    m3_indexer_cancel(ix);
    CHECK(m3_indexer_sync(ix, &err) == M3_STATUS_CANCELLED, "a cancelled sync returns M3_STATUS_CANCELLED");
    m3_indexer_uncancel(ix);
    CHECK(m3_indexer_sync(ix, &err) == M3_STATUS_OK, "after uncancel it runs: %s", err.message);

    m3_indexer_free(ix);
    test_long_paths(&(rig){model, enc, idx, wr}, helper, tmpl);
    m3_index_writer_free(wr);
    m3_index_close(idx);
    m3_encoder_free(enc);
    m3_model_close(model);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpl);
    if (system(cmd) != 0) printf("note: could not remove %s\n", tmpl);
    printf("%d failures\n", failures);
    return failures ? 1 : 0;
}
