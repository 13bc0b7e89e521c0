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
//   - which folders count as network or removable (skipped unless the user allows them).
// usage: test-indexer M3_EXECUTABLE   (its `extract-helper` is the sandboxed extraction helper)
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

// Outcomes of the last run, per file name.
typedef struct seen {
    char names[16][64];
    int outcome[16];
    int n;
} seen;

static void on_file(const char *path, m3_file_outcome outcome, const char *reason, void *user)
{
    (void)reason;
    seen *s = user;
    if (s->n < 16) {
        snprintf(s->names[s->n], sizeof s->names[0], "%s", strrchr(path, '/') + 1);
        s->outcome[s->n++] = (int)outcome;
    }
}

static int outcome_of(const seen *s, const char *name)
{
    for (int i = 0; i < s->n; i++)
        if (!strcmp(s->names[i], name)) return s->outcome[i];
    return -1;
}

static m3_status read_as_text(const unsigned char *data, size_t size, const char *path, m3_extracted *out,
                              m3_error *err)
{
    return m3_extract_decode_text(data, size, path, out, err);
}

static const char *const fk_ext[] = {"fk", NULL};
static const char *const zz_ext[] = {"zz", NULL};
static const m3_extractor fake_v1 = {.name = "fakefmt", .version = 1, .extensions = fk_ext, .extract = read_as_text};
static const m3_extractor fake_v2 = {.name = "fakefmt", .version = 2, .extensions = fk_ext, .extract = read_as_text};
static const m3_extractor zz_v1 = {.name = "zzfmt", .version = 1, .extensions = zz_ext, .extract = read_as_text};

static void write_file(const char *dir, const char *name, const char *text, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
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

int main(int argc, char **argv)
{
    test_remote_fs();
    const char *data = getenv("M3_TEST_DATA");
    if (argc < 2 || !data) {
        fprintf(stderr, "usage: test-indexer M3_EXECUTABLE (with M3_TEST_DATA set)\n");
        return 2;
    }
    char tmpl[] = "/tmp/m3-indexer-XXXXXX", docs[600], idx_dir[600], model_dir[600];
    if (!mkdtemp(tmpl)) return 2;
    snprintf(docs, sizeof docs, "%s/docs", tmpl);
    snprintf(idx_dir, sizeof idx_dir, "%s/index", tmpl);
    snprintf(model_dir, sizeof model_dir, "%s/m3-tiny", data);
    mkdir(docs, 0700);
    mkdir(strcat(strcpy((char[700]){0}, docs), "/node_modules"), 0700);
    write_file(docs, "a.fk", "Die Steuererklärung muss bis Ende Mai beim Finanzamt sein.\n", 59);
    write_file(docs, "b.fk", "Le chat dort sur le canapé toute la journée.\n", 46);
    write_file(docs, "c.txt", "The compiler builds the program from its sources.\n", 50);
    write_file(docs, "d.txt", "El gato duerme en el sofá todo el día.\n", 40);
    write_file(docs, "e.zz", "binary\0\1\2 data", 15);
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

    // A new extractor: the file none could read gets another look (and only it).
    CHECK(m3_extract_register(&zz_v1) == M3_STATUS_OK, "register zzfmt");
    memset(&s, 0, sizeof s);
    CHECK(m3_indexer_sync(ix, &err) == M3_STATUS_OK, "sync after a new extractor: %s", err.message);
    CHECK(s.n == 1 && outcome_of(&s, "e.zz") != -1 && outcome_of(&s, "e.zz") != M3_OUTCOME_UNCHANGED,
          "a new extractor gives the unreadable file another look (%d files, outcome %d)", s.n, outcome_of(&s, "e.zz"));

    // Cancelled before it starts: the run says so.
    m3_indexer_cancel(ix);
    CHECK(m3_indexer_sync(ix, &err) == M3_STATUS_CANCELLED, "a cancelled sync returns M3_STATUS_CANCELLED");
    m3_indexer_uncancel(ix);
    CHECK(m3_indexer_sync(ix, &err) == M3_STATUS_OK, "after uncancel it runs: %s", err.message);

    m3_indexer_free(ix);
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
