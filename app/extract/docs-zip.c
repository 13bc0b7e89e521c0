// SPDX-License-Identifier: MIT
//
// Zip containers (OpenDocument, Office Open XML, EPUB) through libzip, from memory, with caps that
// a zip bomb cannot pass: the declared size is not trusted (reading stops at the cap whatever the
// header says), per entry, per document and by compression ratio. And the XML helpers the
// container formats share.
#include <stdlib.h>
#include <string.h>

#include "extract/docs-private.h"

m3_status docs_encrypted(const char *path, m3_error *err)
{
    return m3_error_set(err, M3_STATUS_UNSUPPORTED, 0, "%s: skipped: encrypted", path);
}

m3_status docs_zip_open(docs_zip *z, const unsigned char *data, size_t size, const char *path, m3_error *err)
{
    memset(z, 0, sizeof *z);
    z->path = path;
    zip_error_t ze;
    zip_error_init(&ze);
    zip_source_t *src = zip_source_buffer_create(data, size, 0, &ze);
    if (!src) {
        zip_error_fini(&ze);
        return m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory", path);
    }
    z->z = zip_open_from_source(src, ZIP_RDONLY, &ze);
    if (!z->z) {
        m3_status s = m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: damaged or truncated zip file (%s)", path,
                                   zip_error_strerror(&ze));
        zip_source_free(src);
        zip_error_fini(&ze);
        return s;
    }
    zip_error_fini(&ze);
    zip_int64_t n = zip_get_num_entries(z->z, 0);
    if (n < 0 || n > DOCS_MAX_ENTRIES) {
        docs_zip_close(z);
        return m3_error_set(err, M3_STATUS_LIMIT, 0, "%s: zip file with %lld entries (at most %d)", path, (long long)n,
                            DOCS_MAX_ENTRIES);
    }
    return M3_STATUS_OK;
}

void docs_zip_close(docs_zip *z)
{
    if (z->z) zip_discard(z->z);
    z->z = NULL;
}

bool docs_zip_has(docs_zip *z, const char *name) { return zip_name_locate(z->z, name, 0) >= 0; }

m3_status docs_zip_read(docs_zip *z, const char *name, char **out, size_t *len, m3_error *err)
{
    *out = NULL;
    *len = 0;
    zip_int64_t i = zip_name_locate(z->z, name, 0);
    if (i < 0) return m3_error_set(err, M3_STATUS_NOT_FOUND, 0, "%s: no %s in the zip file", z->path, name);
    zip_stat_t st;
    zip_stat_init(&st);
    if (zip_stat_index(z->z, (zip_uint64_t)i, 0, &st) != 0)
        return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: damaged zip entry %s", z->path, name);
    if ((st.valid & ZIP_STAT_ENCRYPTION_METHOD) && st.encryption_method != ZIP_EM_NONE) return docs_encrypted(z->path, err);
    uint64_t comp = (st.valid & ZIP_STAT_COMP_SIZE) ? st.comp_size : 0;
    zip_file_t *f = zip_fopen_index(z->z, (zip_uint64_t)i, 0);
    if (!f) {
        int ze = zip_error_code_zip(zip_get_error(z->z));
        if (ze == ZIP_ER_NOPASSWD || ze == ZIP_ER_WRONGPASSWD || ze == ZIP_ER_ENCRNOTSUPP) return docs_encrypted(z->path, err);
        return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: cannot read zip entry %s (%s)", z->path, name,
                            zip_strerror(z->z));
    }
    size_t cap = 64 << 10, n = 0;
    char *buf = malloc(cap + 1);
    m3_status s = M3_STATUS_OK;
    if (!buf) s = m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory", z->path);
    while (s == M3_STATUS_OK) {
        if (n == cap) {
            char *nb = cap * 2 <= DOCS_MAX_ENTRY ? realloc(buf, cap * 2 + 1) : NULL;
            if (!nb) {
                s = cap * 2 > DOCS_MAX_ENTRY ? M3_STATUS_LIMIT : M3_STATUS_NOMEM;
                m3_error_set(err, s, 0, "%s: zip entry %s larger than %d MiB", z->path, name, DOCS_MAX_ENTRY >> 20);
                break;
            }
            buf = nb;
            cap *= 2;
        }
        zip_int64_t r = zip_fread(f, buf + n, cap - n);
        if (r < 0) {
            s = m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: damaged zip entry %s (%s)", z->path, name,
                             zip_file_strerror(f));
            break;
        }
        if (r == 0) break;
        n += (size_t)r;
        z->total += (uint64_t)r;
        if (z->total > DOCS_MAX_TOTAL)
            s = m3_error_set(err, M3_STATUS_LIMIT, 0, "%s: zip bomb (more than %d MiB decompressed)", z->path,
                             DOCS_MAX_TOTAL >> 20);
        else if (n > (1 << 20) && n / (comp ? comp : 1) > DOCS_MAX_RATIO)
            s = m3_error_set(err, M3_STATUS_LIMIT, 0, "%s: zip bomb (%s compressed more than %d:1)", z->path, name,
                             DOCS_MAX_RATIO);
    }
    zip_fclose(f);
    if (s != M3_STATUS_OK) {
        free(buf);
        return s;
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return M3_STATUS_OK;
}

// ---- XML -----------------------------------------------------------------------------------------

static void quiet(void *ctx, const char *msg, ...)
{
    (void)ctx;
    (void)msg;
}

static void quiet_structured(void *ctx, xmlErrorPtr e)
{
    (void)ctx;
    (void)e;
}

xmlTextReaderPtr docs_xml_reader(const char *data, size_t len, const char *name)
{
    // No XML_PARSE_NOENT (entities are not substituted), no XML_PARSE_DTDLOAD (no external subset),
    // no XML_PARSE_HUGE (libxml2's depth and size limits hold); NONET in any case.
    xmlTextReaderPtr r = xmlReaderForMemory(data, (int)(len > INT32_MAX ? INT32_MAX : len), name, NULL,
                                            XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING |
                                                XML_PARSE_NOCDATA);
    if (r) xmlTextReaderSetErrorHandler(r, NULL, NULL), xmlTextReaderSetStructuredErrorHandler(r, quiet_structured, NULL);
    (void)quiet;
    return r;
}

m3_status docs_xml_error(const char *path, const char *name, m3_error *err)
{
    return m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: damaged XML in %s", path, name);
}

char *docs_xml_attr(xmlTextReaderPtr r, const char *local)
{
    if (xmlTextReaderMoveToFirstAttribute(r) != 1) return NULL;
    char *v = NULL;
    do {
        const xmlChar *n = xmlTextReaderConstLocalName(r);
        if (n && !strcmp((const char *)n, local)) {
            v = (char *)xmlTextReaderValue(r);
            break;
        }
    } while (xmlTextReaderMoveToNextAttribute(r) == 1);
    xmlTextReaderMoveToElement(r);
    return v;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

char *docs_resolve(const char *base, const char *ref)
{
    size_t bl = strlen(base), rl = strcspn(ref, "#?");
    char *out = malloc(bl + rl + 2);
    if (!out) return NULL;
    size_t n = 0;
    if (ref[0] != '/') {
        const char *slash = strrchr(base, '/');
        if (slash) {
            n = (size_t)(slash - base) + 1;
            memcpy(out, base, n);
        }
    } else {
        ref++, rl--;
    }
    for (size_t i = 0; i < rl;) {
        size_t seg = strcspn(ref + i, "/");
        if (seg > rl - i) seg = rl - i;
        if (seg == 2 && ref[i] == '.' && ref[i + 1] == '.') {
            if (n) n--;                                 // the trailing slash
            while (n && out[n - 1] != '/') n--;        // the last folder
        } else if (!(seg == 1 && ref[i] == '.') && seg) {
            for (size_t k = 0; k < seg; k++) {
                char c = ref[i + k];
                if (c == '%' && k + 2 < seg && hexval(ref[i + k + 1]) >= 0 && hexval(ref[i + k + 2]) >= 0) {
                    c = (char)(hexval(ref[i + k + 1]) << 4 | hexval(ref[i + k + 2]));
                    k += 2;
                }
                out[n++] = c;
            }
            if (i + seg < rl) out[n++] = '/';
        }
        i += seg + 1;
    }
    out[n] = 0;
    return out;
}

m3_status docs_rels_read(docs_zip *z, const char *source, docs_rels *out, m3_error *err)
{
    memset(out, 0, sizeof *out);
    // "ppt/presentation.xml" → "ppt/_rels/presentation.xml.rels"
    const char *slash = strrchr(source, '/');
    size_t dir = slash ? (size_t)(slash - source) + 1 : 0;
    size_t sl = strlen(source);
    char *name = malloc(sl + 16);
    if (!name) return m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory", z->path);
    memcpy(name, source, dir);
    snprintf(name + dir, sl + 16 - dir, "_rels/%s.rels", source + dir);
    char *xml;
    size_t len;
    m3_status s = docs_zip_read(z, name, &xml, &len, err);
    if (s != M3_STATUS_OK) {
        free(name);
        return s;
    }
    xmlTextReaderPtr r = docs_xml_reader(xml, len, name);
    size_t cap = 0;
    int rc = r ? 1 : -1;
    while (r && (rc = xmlTextReaderRead(r)) == 1) {
        if (xmlTextReaderNodeType(r) != XML_READER_TYPE_ELEMENT ||
            strcmp((const char *)xmlTextReaderConstLocalName(r), "Relationship"))
            continue;
        char *id = docs_xml_attr(r, "Id"), *target = docs_xml_attr(r, "Target"), *mode = docs_xml_attr(r, "TargetMode");
        char *type = docs_xml_attr(r, "Type");
        bool external = mode && !strcmp(mode, "External");
        if (id && target && !external && out->n < DOCS_MAX_PARTS) {
            if (out->n == cap) {
                cap = cap ? 2 * cap : 16;
                char **a = realloc(out->id, cap * sizeof *a), **b = a ? realloc(out->target, cap * sizeof *b) : NULL;
                char **c = b ? realloc(out->type, cap * sizeof *c) : NULL;
                if (a) out->id = a;
                if (b) out->target = b;
                if (c) out->type = c;
                if (!a || !b || !c) {
                    xmlFree(id), xmlFree(target), xmlFree(mode), xmlFree(type);
                    rc = -2;
                    break;
                }
            }
            out->id[out->n] = strdup(id);
            out->target[out->n] = docs_resolve(source, target);
            const char *last = type ? strrchr(type, '/') : NULL;
            out->type[out->n] = strdup(last ? last + 1 : type ? type : "");
            if (out->id[out->n] && out->target[out->n] && out->type[out->n]) out->n++;
            else free(out->id[out->n]), free(out->target[out->n]), free(out->type[out->n]);
        }
        xmlFree(id), xmlFree(target), xmlFree(mode), xmlFree(type);
    }
    if (r) xmlFreeTextReader(r);
    free(xml);
    if (rc == -2 || !r) s = m3_error_set(err, M3_STATUS_NOMEM, 0, "%s: out of memory", z->path);
    else if (rc < 0) s = docs_xml_error(z->path, name, err);
    free(name);
    if (s != M3_STATUS_OK) docs_rels_free(out);
    return s;
}

const char *docs_rels_get(const docs_rels *r, const char *id)
{
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->id[i], id)) return r->target[i];
    return NULL;
}

static int by_name(const void *a, const void *b) { return strcmp(*(const char *const *)a, *(const char *const *)b); }

const char **docs_rels_of_type(const docs_rels *r, const char *type, size_t *n)
{
    *n = 0;
    const char **v = r->n ? malloc(r->n * sizeof *v) : NULL;
    if (!v) return NULL;
    for (size_t i = 0; i < r->n; i++)
        if (!strcmp(r->type[i], type)) v[(*n)++] = r->target[i];
    qsort(v, *n, sizeof *v, by_name);
    if (!*n) free(v), v = NULL;
    return v;
}

void docs_rels_free(docs_rels *r)
{
    for (size_t i = 0; i < r->n; i++) free(r->id[i]), free(r->target[i]), free(r->type[i]);
    free(r->id);
    free(r->target);
    free(r->type);
    memset(r, 0, sizeof *r);
}
