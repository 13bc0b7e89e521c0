// SPDX-License-Identifier: MIT
//
// m3 extract [--json] [--model PATH] FILE: the text the index sees of a file, extracted exactly as
// 'm3 index' does (in the sandboxed helper). For "why is this file not found" and for tests.
// Plain output: the text. --json: one object with the extractor, the places and the text; with
// --model also the chunks (start, end, tokens, location, text) as the index would store them.
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "extract/docs.h"
#include "extract/sandbox.h"
#include "model/model.h"

static const char usage[] =
    "usage: m3 extract [--json] [--model PATH] FILE\n"
    "Prints the text the index sees of FILE (extracted in the sandboxed helper, as 'm3 index' does).\n"
    "  --json         one JSON object: extractor, version, encoding, places, text (and chunks)\n"
    "  --model PATH   with --json: also the chunks, cut with this model's tokenizer\n";

static unsigned char *read_file(const char *path, size_t *size, m3_error *err)
{
    // O_NONBLOCK: a FIFO would otherwise block the open until something writes to it.
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        m3_error_errno(err, errno, "cannot open", path);
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        m3_error_set(err, M3_STATUS_INVALID, 0, "%s: not a regular file", path);
        return NULL;
    }
    unsigned char *d = malloc((size_t)st.st_size + 1);
    size_t got = 0;
    while (d && got < (size_t)st.st_size) {
        ssize_t r = read(fd, d + got, (size_t)st.st_size - got);
        if (r <= 0) {
            if (r < 0 && errno == EINTR) continue;
            m3_error_errno(err, r < 0 ? errno : EIO, "cannot read", path);
            free(d);
            d = NULL;
            break;
        }
        got += (size_t)r;
    }
    close(fd);
    if (!d && !err->message[0]) m3_error_set(err, M3_STATUS_NOMEM, 0, "out of memory");
    *size = got;
    return d;
}

int m3_cmd_extract(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, 0, 'j'}, {"model", required_argument, 0, 'm'}, {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    bool json = false;
    const char *model_path = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        if (c == 'j') json = true;
        else if (c == 'm') model_path = optarg;
        else if (c == 'h') {
            fputs(usage, stdout);
            return M3_EXIT_OK;
        } else {
            fputs(usage, stderr);
            return M3_EXIT_USAGE;
        }
    }
    if (optind != argc - 1) {
        fputs(usage, stderr);
        return M3_EXIT_USAGE;
    }
    const char *path = argv[optind];
    m3_error err = {0};
    m3_model *model = NULL;
    m3_sandbox *sb = NULL;
    unsigned char *data = NULL;
    m3_text_chunk *chunks = NULL;
    size_t n_chunks = 0, size = 0;
    m3_extracted doc = {0};
    int rc = M3_EXIT_FAILURE;
    if (model_path && m3_model_open(model_path, &model, &err) != M3_STATUS_OK) goto fail;
    if (model && !m3_model_get_tokenizer(model)) {
        m3_error_set(&err, M3_STATUS_INVALID, 0, "%s: the model has no tokenizer", model_path);
        goto fail;
    }
    if (!(data = read_file(path, &size, &err))) goto fail;
    static const char *const helper[] = {"/proc/self/exe", "extract-helper", NULL};
    m3_sandbox_options opt = m3_sandbox_options_default();
    opt.argv = helper;
    if (m3_sandbox_new(&opt, &sb, &err) != M3_STATUS_OK) goto fail;
    m3_extractor_id who;
    if (m3_sandbox_extract(sb, path, data, size, &doc, &who, &err) != M3_STATUS_OK) goto fail;
    if (model && json) {
        if (m3_extract_chunk(m3_model_get_tokenizer(model), doc.text, doc.len, NULL, &chunks, &n_chunks, &err) !=
            M3_STATUS_OK)
            goto fail;
        m3_extracted_locate_chunks(&doc, chunks, n_chunks);
    }
    if (!json) {
        fwrite(doc.text, 1, doc.len, stdout);
        if (doc.len && doc.text[doc.len - 1] != '\n') fputc('\n', stdout);
    } else {
        fputs("{\"path\":", stdout);
        m3_cli_put_json_string(stdout, path, strlen(path));
        fputs(",\"extractor\":", stdout);
        m3_cli_put_json_string(stdout, who.name, strnlen(who.name, sizeof who.name));
        printf(",\"version\":%u,\"encoding\":", who.version);
        m3_cli_put_json_string(stdout, doc.encoding, strnlen(doc.encoding, sizeof doc.encoding));
        fputs(",\"places\":[", stdout);
        for (size_t i = 0; i < doc.n_marks; i++) {
            printf("%s{\"start\":%zu,\"location\":", i ? "," : "", doc.marks[i].text);
            m3_cli_put_json_string(stdout, doc.marks[i].where, strlen(doc.marks[i].where));
            fputc('}', stdout);
        }
        fputs("],\"text\":", stdout);
        m3_cli_put_json_string(stdout, doc.text, doc.len);
        if (model) {
            fputs(",\"chunks\":[", stdout);
            for (size_t i = 0; i < n_chunks; i++) {
                const m3_text_chunk *k = &chunks[i];
                printf("%s{\"start\":%zu,\"end\":%zu,\"tokens\":%zu,\"location\":", i ? "," : "", k->start, k->end,
                       k->tokens);
                if (k->location) m3_cli_put_json_string(stdout, k->location, strlen(k->location));
                else fputs("null", stdout);
                fputs(",\"text\":", stdout);
                m3_cli_put_json_string(stdout, doc.text + k->start, k->end - k->start);
                fputc('}', stdout);
            }
            fputc(']', stdout);
        }
        fputs("}\n", stdout);
    }
    rc = fflush(stdout) == 0 ? M3_EXIT_OK : M3_EXIT_FAILURE;
    goto out;
fail:
    m3_cli_fail_error("extract", &err);
out:
    free(chunks);
    m3_extracted_clear(&doc);
    m3_sandbox_free(sb);
    free(data);
    m3_model_close(model);
    return rc;
}
