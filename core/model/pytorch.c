// SPDX-License-Identifier: MIT
//
// PyTorch checkpoints (torch.save's zip format): `<archive>/data.pkl` holds a pickle of the state
// dict, `<archive>/data/<key>` the raw little-endian bytes of each storage.
//
// The pickle is read by a restricted interpreter, never executed: it knows the opcodes torch.save
// emits for a dict of tensors (protocol 2, plus the few protocol 4 framing / memo opcodes) and
// exactly these globals:
//   collections.OrderedDict                          the state dict and its _metadata
//   torch._utils._rebuild_tensor_v2                  (storage, offset, size, stride, grad, hooks[, meta])
//   torch._utils._rebuild_parameter                  (tensor, requires_grad, hooks)
//   torch.FloatStorage / HalfStorage / BFloat16Storage   the storage types in persistent ids
// REDUCE calls only those, with the argument shapes above; BUILD is accepted only on a dict (the
// OrderedDict's _metadata state, ignored). Anything else (another opcode, `os system`...) is
// M3_STATUS_UNSUPPORTED naming the file and the opcode or global.
//
// Memory stays proportional to the pickle: every opcode creates at most one value, and the value
// count, the stack, the memo and the pickle size are all capped.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "model/weights-private.h"
#include "model/zip-private.h"

enum {
    MAX_PICKLE = 64 * 1024 * 1024,
    MAX_VALUES = 1 << 22,
    MAX_STACK = 1 << 16,
    MAX_MARKS = 1 << 12,
    MAX_MEMO = 1 << 20,
    MAX_KEY = 256,
};

typedef enum vkind {
    V_NONE,
    V_BOOL,
    V_INT,
    V_STR,
    V_TUPLE,
    V_LIST,
    V_DICT,  // items hold key, value, key, value...
    V_GLOBAL,
    V_STORAGE,
    V_TENSOR,
} vkind;

typedef enum gkind {
    G_ORDERED_DICT,
    G_REBUILD_TENSOR_V2,
    G_REBUILD_PARAMETER,
    G_FLOAT_STORAGE,
    G_HALF_STORAGE,
    G_BFLOAT16_STORAGE,
} gkind;

static const struct {
    const char *module, *name;
    gkind kind;
} globals[] = {
    {"collections", "OrderedDict", G_ORDERED_DICT},
    {"torch._utils", "_rebuild_tensor_v2", G_REBUILD_TENSOR_V2},
    {"torch._utils", "_rebuild_parameter", G_REBUILD_PARAMETER},
    {"torch", "FloatStorage", G_FLOAT_STORAGE},
    {"torch", "HalfStorage", G_HALF_STORAGE},
    {"torch", "BFloat16Storage", G_BFLOAT16_STORAGE},
};

typedef struct value value;
struct value {
    vkind kind;
    int64_t i;          // V_BOOL, V_INT, V_GLOBAL (a gkind)
    const char *s;      // V_STR: into the pickle bytes, not NUL-terminated
    size_t len;
    value **items;      // V_TUPLE, V_LIST, V_DICT
    size_t n, cap;
    m3_dtype dtype;     // V_STORAGE, V_TENSOR
    int64_t numel;      // V_STORAGE: elements
    const unsigned char *data;  // V_STORAGE: its bytes in the mapping
    m3_tensor *tensor;  // V_TENSOR (shape, strides, data)
};

typedef struct vm {
    const char *path;
    const m3_zip *zip;
    const char *prefix;  // the archive folder name (before "/data.pkl")
    size_t prefix_len;
    const unsigned char *p, *end, *begin;
    value **all;  // every value made, for freeing
    size_t n_all, cap_all;
    value **stack;
    size_t sp, cap_stack;
    size_t *marks;
    size_t n_marks, cap_marks;
    value **memo;
    size_t cap_memo;
    m3_error *err;
} vm;

static m3_status fail(vm *m, m3_status st, const char *fmt, const char *detail)
{
    char what[256];
    snprintf(what, sizeof what, fmt, detail);
    return m3_error_set(m->err, st, 0, "%s: pickle at byte %zu: %s", m->path, (size_t)(m->p - m->begin), what);
}

static m3_status nomem(vm *m)
{
    return m3_error_set(m->err, M3_STATUS_NOMEM, 0, "%s: out of memory reading the pickle", m->path);
}

static bool grow(void **arr, size_t *cap, size_t need, size_t elem)
{
    if (need <= *cap) return true;
    size_t c = *cap ? *cap : 16;
    while (c < need) c *= 2;
    void *p = realloc(*arr, c * elem);
    if (!p) return false;
    *arr = p;
    *cap = c;
    return true;
}

static value *new_value(vm *m, vkind kind)
{
    if (m->n_all >= MAX_VALUES) {
        m3_error_set(m->err, M3_STATUS_LIMIT, 0, "%s: pickle makes more than %d objects", m->path, MAX_VALUES);
        return NULL;
    }
    if (!grow((void **)&m->all, &m->cap_all, m->n_all + 1, sizeof *m->all)) {
        nomem(m);
        return NULL;
    }
    value *v = calloc(1, sizeof *v);
    if (!v) {
        nomem(m);
        return NULL;
    }
    v->kind = kind;
    m->all[m->n_all++] = v;
    return v;
}

static m3_status push(vm *m, value *v)
{
    if (!v) return m->err ? m->err->status : M3_STATUS_NOMEM;
    if (m->sp >= MAX_STACK) return fail(m, M3_STATUS_LIMIT, "stack deeper than %s", "65536");
    if (!grow((void **)&m->stack, &m->cap_stack, m->sp + 1, sizeof *m->stack)) return nomem(m);
    m->stack[m->sp++] = v;
    return M3_STATUS_OK;
}

static value *pop(vm *m)
{
    size_t floor = m->n_marks ? m->marks[m->n_marks - 1] : 0;
    if (m->sp <= floor) {
        fail(m, M3_STATUS_FORMAT, "%s", "stack underflow");
        return NULL;
    }
    return m->stack[--m->sp];
}

static value *top(vm *m)
{
    size_t floor = m->n_marks ? m->marks[m->n_marks - 1] : 0;
    if (m->sp <= floor) {
        fail(m, M3_STATUS_FORMAT, "%s", "stack underflow");
        return NULL;
    }
    return m->stack[m->sp - 1];
}

// Pops everything above the last mark into *items / *n (pointers into the stack, valid until the
// next push) and removes the mark.
static m3_status pop_mark(vm *m, value ***items, size_t *n)
{
    if (!m->n_marks) return fail(m, M3_STATUS_FORMAT, "%s", "no mark on the stack");
    size_t at = m->marks[--m->n_marks];
    *items = m->stack + at;
    *n = m->sp - at;
    m->sp = at;
    return M3_STATUS_OK;
}

static m3_status add_items(vm *m, value *to, value **items, size_t n)
{
    if (!grow((void **)&to->items, &to->cap, to->n + n, sizeof *to->items)) return nomem(m);
    memcpy(to->items + to->n, items, n * sizeof *items);
    to->n += n;
    return M3_STATUS_OK;
}

static m3_status make_tuple(vm *m, value **items, size_t n)
{
    value *t = new_value(m, V_TUPLE);
    if (!t) return m->err ? m->err->status : M3_STATUS_NOMEM;
    // items may point into the stack; copy before pushing.
    m3_status st = add_items(m, t, items, n);
    if (st != M3_STATUS_OK) return st;
    return push(m, t);
}

static bool need(vm *m, size_t n)
{
    return (size_t)(m->end - m->p) >= n;
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static m3_status memo_put(vm *m, uint64_t idx)
{
    if (idx >= MAX_MEMO) return fail(m, M3_STATUS_LIMIT, "memo index over %s", "2^20");
    value *v = top(m);
    if (!v) return m->err->status;
    size_t old = m->cap_memo;
    if (!grow((void **)&m->memo, &m->cap_memo, idx + 1, sizeof *m->memo)) return nomem(m);
    if (m->cap_memo > old) memset(m->memo + old, 0, (m->cap_memo - old) * sizeof *m->memo);
    m->memo[idx] = v;
    return M3_STATUS_OK;
}

static m3_status memo_get(vm *m, uint64_t idx)
{
    if (idx >= m->cap_memo || !m->memo[idx]) return fail(m, M3_STATUS_FORMAT, "%s", "memo get of an unset index");
    return push(m, m->memo[idx]);
}

static bool is_str(const value *v, const char *s)
{
    return v->kind == V_STR && v->len == strlen(s) && !memcmp(v->s, s, v->len);
}

static m3_status op_global(vm *m, const char *mod, size_t mod_len, const char *name, size_t name_len)
{
    for (size_t i = 0; i < sizeof globals / sizeof globals[0]; i++) {
        if (strlen(globals[i].module) == mod_len && !memcmp(globals[i].module, mod, mod_len) &&
            strlen(globals[i].name) == name_len && !memcmp(globals[i].name, name, name_len)) {
            value *v = new_value(m, V_GLOBAL);
            if (!v) return m->err->status;
            v->i = globals[i].kind;
            return push(m, v);
        }
    }
    char what[200];
    snprintf(what, sizeof what, "%.*s.%.*s", (int)(mod_len > 80 ? 80 : mod_len), mod,
             (int)(name_len > 80 ? 80 : name_len), name);
    for (char *c = what; *c; c++)
        if ((unsigned char)*c < 0x20) *c = '?';
    return fail(m, M3_STATUS_UNSUPPORTED, "global %s is not allowed (only tensors are read)", what);
}

// BINPERSID: ('storage', <storage type>, key, location, numel) → the storage's bytes in the zip.
static m3_status op_persid(vm *m)
{
    value *pid = pop(m);
    if (!pid) return m->err->status;
    if (pid->kind != V_TUPLE || pid->n != 5 || !is_str(pid->items[0], "storage") || pid->items[1]->kind != V_GLOBAL ||
        pid->items[2]->kind != V_STR || pid->items[3]->kind != V_STR || pid->items[4]->kind != V_INT)
        return fail(m, M3_STATUS_UNSUPPORTED, "%s", "persistent id is not a ('storage', type, key, location, numel) tuple");
    m3_dtype dtype;
    switch (pid->items[1]->i) {
    case G_FLOAT_STORAGE: dtype = M3_DTYPE_F32; break;
    case G_HALF_STORAGE: dtype = M3_DTYPE_F16; break;
    case G_BFLOAT16_STORAGE: dtype = M3_DTYPE_BF16; break;
    default: return fail(m, M3_STATUS_UNSUPPORTED, "%s", "persistent id names a non-storage type");
    }
    const value *key = pid->items[2];
    if (key->len == 0 || key->len > MAX_KEY || memchr(key->s, '/', key->len) || memchr(key->s, 0, key->len))
        return fail(m, M3_STATUS_FORMAT, "%s", "invalid storage key");
    int64_t numel = pid->items[4]->i;
    if (numel < 0 || numel > INT64_MAX / 8) return fail(m, M3_STATUS_FORMAT, "%s", "invalid storage size");
    char name[M3_ZIP_MAX_NAME + MAX_KEY + 16];
    int len = snprintf(name, sizeof name, "%.*s/data/%.*s", (int)m->prefix_len, m->prefix, (int)key->len, key->s);
    const m3_zip_entry *e = m3_zip_find(m->zip, name, (size_t)len);
    if (!e) return fail(m, M3_STATUS_FORMAT, "storage entry %s is missing", name);
    uint64_t bytes = (uint64_t)numel * m3_dtype_size(dtype);
    if (e->size != bytes) {
        char what[M3_ZIP_MAX_NAME + 400];
        snprintf(what, sizeof what, "%s holds %llu bytes, its %lld %s elements need %llu", name,
                 (unsigned long long)e->size, (long long)numel, m3_dtype_name(dtype), (unsigned long long)bytes);
        return fail(m, M3_STATUS_FORMAT, "storage %s", what);
    }
    if ((uintptr_t)e->data % m3_dtype_size(dtype)) return fail(m, M3_STATUS_FORMAT, "storage %s is misaligned", name);
    value *s = new_value(m, V_STORAGE);
    if (!s) return m->err->status;
    s->dtype = dtype;
    s->numel = numel;
    s->data = e->data;
    return push(m, s);
}

static bool int_tuple(const value *v, int64_t *out, size_t max)
{
    if (v->kind != V_TUPLE || v->n > max) return false;
    for (size_t i = 0; i < v->n; i++) {
        if (v->items[i]->kind != V_INT) return false;
        out[i] = v->items[i]->i;
    }
    return true;
}

static m3_status rebuild_tensor(vm *m, const value *args)
{
    // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    if (args->n != 6 && args->n != 7)
        return fail(m, M3_STATUS_UNSUPPORTED, "%s", "_rebuild_tensor_v2 with an unexpected argument count");
    const value *storage = args->items[0], *offset = args->items[1], *size = args->items[2], *stride = args->items[3];
    int64_t shape[M3_TENSOR_MAX_DIMS], strides[M3_TENSOR_MAX_DIMS];
    if (storage->kind != V_STORAGE || offset->kind != V_INT || !int_tuple(size, shape, M3_TENSOR_MAX_DIMS) ||
        !int_tuple(stride, strides, M3_TENSOR_MAX_DIMS) || size->n != stride->n || args->items[4]->kind != V_BOOL)
        return fail(m, M3_STATUS_UNSUPPORTED, "%s",
                    "_rebuild_tensor_v2 arguments are not (storage, offset, size, stride, bool, hooks) with at most 4 dims");
    if (!m3_tensor_extent_ok((int)size->n, shape, strides, offset->i, storage->numel))
        return fail(m, M3_STATUS_FORMAT, "%s", "tensor shape, strides and offset reach outside its storage");
    value *t = new_value(m, V_TENSOR);
    if (!t) return m->err->status;
    t->tensor = calloc(1, sizeof *t->tensor);
    if (!t->tensor) return nomem(m);
    t->tensor->dtype = storage->dtype;
    t->tensor->ndim = (int)size->n;
    memcpy(t->tensor->shape, shape, size->n * sizeof *shape);
    memcpy(t->tensor->strides, strides, size->n * sizeof *strides);
    // An empty tensor may sit at offset == numel; keep the pointer at the storage then.
    int64_t off = offset->i < storage->numel ? offset->i : 0;
    t->tensor->data = storage->data + (size_t)off * m3_dtype_size(storage->dtype);
    return push(m, t);
}

static m3_status op_reduce(vm *m)
{
    value *args = pop(m), *fn = args ? pop(m) : NULL;
    if (!fn) return m->err->status;
    if (fn->kind != V_GLOBAL || args->kind != V_TUPLE)
        return fail(m, M3_STATUS_UNSUPPORTED, "%s", "REDUCE of something other than an allowed global");
    switch ((gkind)fn->i) {
    case G_ORDERED_DICT:
        if (args->n != 0) return fail(m, M3_STATUS_UNSUPPORTED, "%s", "OrderedDict with arguments");
        return push(m, new_value(m, V_DICT));
    case G_REBUILD_TENSOR_V2:
        return rebuild_tensor(m, args);
    case G_REBUILD_PARAMETER:
        if (args->n != 3 || args->items[0]->kind != V_TENSOR)
            return fail(m, M3_STATUS_UNSUPPORTED, "%s", "_rebuild_parameter arguments are not (tensor, bool, hooks)");
        return push(m, args->items[0]);
    default:
        return fail(m, M3_STATUS_UNSUPPORTED, "%s", "REDUCE of a storage type");
    }
}

static m3_status run(vm *m)
{
    m3_status st = M3_STATUS_OK;
    value **items = NULL;
    size_t n = 0;
    while (st == M3_STATUS_OK) {
        if (!need(m, 1)) return fail(m, M3_STATUS_FORMAT, "%s", "truncated (no STOP)");
        unsigned char op = *m->p++;
        switch (op) {
        case 0x80:  // PROTO
            if (!need(m, 1)) return fail(m, M3_STATUS_FORMAT, "%s", "truncated");
            if (*m->p < 2 || *m->p > 5) return fail(m, M3_STATUS_UNSUPPORTED, "%s", "pickle protocol outside 2..5");
            m->p++;
            break;
        case 0x95:  // FRAME (protocol 4): a length we do not need
            if (!need(m, 8)) return fail(m, M3_STATUS_FORMAT, "%s", "truncated");
            m->p += 8;
            break;
        case '}': st = push(m, new_value(m, V_DICT)); break;
        case ']': st = push(m, new_value(m, V_LIST)); break;
        case ')': st = push(m, new_value(m, V_TUPLE)); break;
        case 'N': st = push(m, new_value(m, V_NONE)); break;
        case 0x88:  // NEWTRUE
        case 0x89: {  // NEWFALSE
            value *v = new_value(m, V_BOOL);
            if (v) v->i = op == 0x88;
            st = push(m, v);
            break;
        }
        case '(':  // MARK
            if (m->n_marks >= MAX_MARKS) return fail(m, M3_STATUS_LIMIT, "%s", "marks nested too deeply");
            if (!grow((void **)&m->marks, &m->cap_marks, m->n_marks + 1, sizeof *m->marks)) return nomem(m);
            m->marks[m->n_marks++] = m->sp;
            break;
        case 'X':     // BINUNICODE
        case 0x8c: {  // SHORT_BINUNICODE
            size_t hl = op == 'X' ? 4 : 1;
            if (!need(m, hl)) return fail(m, M3_STATUS_FORMAT, "%s", "truncated");
            size_t len = op == 'X' ? le32(m->p) : *m->p;
            m->p += hl;
            if (!need(m, len)) return fail(m, M3_STATUS_FORMAT, "%s", "truncated string");
            value *v = new_value(m, V_STR);
            if (v) {
                v->s = (const char *)m->p;
                v->len = len;
            }
            m->p += len;
            st = push(m, v);
            break;
        }
        case 'K':  // BININT1
        case 'M':  // BININT2
        case 'J': {  // BININT
            size_t len = op == 'K' ? 1 : op == 'M' ? 2 : 4;
            if (!need(m, len)) return fail(m, M3_STATUS_FORMAT, "%s", "truncated");
            int64_t x = op == 'K' ? m->p[0] : op == 'M' ? (m->p[0] | m->p[1] << 8) : (int32_t)le32(m->p);
            m->p += len;
            value *v = new_value(m, V_INT);
            if (v) v->i = x;
            st = push(m, v);
            break;
        }
        case 0x8a: {  // LONG1: n bytes, little-endian two's complement
            if (!need(m, 1)) return fail(m, M3_STATUS_FORMAT, "%s", "truncated");
            size_t len = *m->p++;
            if (len > 8) return fail(m, M3_STATUS_UNSUPPORTED, "%s", "integer wider than 64 bits");
            if (!need(m, len)) return fail(m, M3_STATUS_FORMAT, "%s", "truncated");
            uint64_t u = 0;
            for (size_t i = 0; i < len; i++) u |= (uint64_t)m->p[i] << (8 * i);
            if (len && len < 8 && (m->p[len - 1] & 0x80)) u |= ~(uint64_t)0 << (8 * len);
            m->p += len;
            value *v = new_value(m, V_INT);
            if (v) v->i = (int64_t)u;
            st = push(m, v);
            break;
        }
        case 'q':  // BINPUT
            if (!need(m, 1)) return fail(m, M3_STATUS_FORMAT, "%s", "truncated");
            st = memo_put(m, *m->p++);
            break;
        case 'r':  // LONG_BINPUT
            if (!need(m, 4)) return fail(m, M3_STATUS_FORMAT, "%s", "truncated");
            st = memo_put(m, le32(m->p));
            m->p += 4;
            break;
        case 'h':  // BINGET
            if (!need(m, 1)) return fail(m, M3_STATUS_FORMAT, "%s", "truncated");
            st = memo_get(m, *m->p++);
            break;
        case 'j':  // LONG_BINGET
            if (!need(m, 4)) return fail(m, M3_STATUS_FORMAT, "%s", "truncated");
            st = memo_get(m, le32(m->p));
            m->p += 4;
            break;
        case 'c': {  // GLOBAL "module\nname\n"
            const unsigned char *mod = m->p;
            const unsigned char *nl1 = memchr(mod, '\n', (size_t)(m->end - mod));
            if (!nl1) return fail(m, M3_STATUS_FORMAT, "%s", "truncated GLOBAL");
            const unsigned char *name = nl1 + 1;
            const unsigned char *nl2 = memchr(name, '\n', (size_t)(m->end - name));
            if (!nl2) return fail(m, M3_STATUS_FORMAT, "%s", "truncated GLOBAL");
            m->p = nl2 + 1;
            st = op_global(m, (const char *)mod, (size_t)(nl1 - mod), (const char *)name, (size_t)(nl2 - name));
            break;
        }
        case 0x93: {  // STACK_GLOBAL (protocol 4)
            value *name = pop(m), *mod = name ? pop(m) : NULL;
            if (!mod) return m->err->status;
            if (mod->kind != V_STR || name->kind != V_STR)
                return fail(m, M3_STATUS_FORMAT, "%s", "STACK_GLOBAL of non-strings");
            st = op_global(m, mod->s, mod->len, name->s, name->len);
            break;
        }
        case 0x94:  // MEMOIZE (protocol 4)
            st = memo_put(m, m->cap_memo);
            break;
        case 'Q': st = op_persid(m); break;
        case 't':  // TUPLE
            if ((st = pop_mark(m, &items, &n)) == M3_STATUS_OK) st = make_tuple(m, items, n);
            break;
        case 0x85:  // TUPLE1
        case 0x86:  // TUPLE2
        case 0x87:  // TUPLE3
            n = (size_t)(op - 0x84);
            {
                size_t floor = m->n_marks ? m->marks[m->n_marks - 1] : 0;
                if (m->sp - floor < n) return fail(m, M3_STATUS_FORMAT, "%s", "stack underflow");
                m->sp -= n;
                st = make_tuple(m, m->stack + m->sp, n);
            }
            break;
        case 'R': st = op_reduce(m); break;
        case 's': {  // SETITEM
            value *v = pop(m), *k = v ? pop(m) : NULL, *d = k ? top(m) : NULL;
            if (!d) return m->err->status;
            if (d->kind != V_DICT) return fail(m, M3_STATUS_FORMAT, "%s", "SETITEM on a non-dict");
            value *kv[2] = {k, v};
            st = add_items(m, d, kv, 2);
            break;
        }
        case 'u':  // SETITEMS
        case 'e': {  // APPENDS
            if ((st = pop_mark(m, &items, &n)) != M3_STATUS_OK) break;
            value *d = top(m);
            if (!d) return m->err->status;
            if (d->kind != (op == 'u' ? V_DICT : V_LIST) || (op == 'u' && n % 2))
                return fail(m, M3_STATUS_FORMAT, "%s", op == 'u' ? "SETITEMS on a non-dict" : "APPENDS on a non-list");
            st = add_items(m, d, items, n);
            break;
        }
        case 'a': {  // APPEND
            value *v = pop(m), *l = v ? top(m) : NULL;
            if (!l) return m->err->status;
            if (l->kind != V_LIST) return fail(m, M3_STATUS_FORMAT, "%s", "APPEND on a non-list");
            st = add_items(m, l, &v, 1);
            break;
        }
        case 'b': {  // BUILD: only an OrderedDict's state (its _metadata), which we drop
            value *state = pop(m), *obj = state ? top(m) : NULL;
            if (!obj) return m->err->status;
            if (obj->kind != V_DICT) return fail(m, M3_STATUS_UNSUPPORTED, "%s", "BUILD on something other than a dict");
            break;
        }
        case '.':  // STOP
            return M3_STATUS_OK;
        default: {
            char what[32];
            snprintf(what, sizeof what, "0x%02x", op);
            m->p--;
            return fail(m, M3_STATUS_UNSUPPORTED, "opcode %s is not supported (only state dicts of tensors are read)",
                        what);
        }
        }
    }
    return st;
}

static void vm_free(vm *m)
{
    for (size_t i = 0; i < m->n_all; i++) {
        free(m->all[i]->items);
        free(m->all[i]->tensor);
        free(m->all[i]);
    }
    free(m->all);
    free(m->stack);
    free(m->marks);
    free(m->memo);
}

// Finds "<prefix>/data.pkl" with a one-level prefix; torch names the folder after the file.
static const m3_zip_entry *find_pickle(const m3_zip *zip)
{
    for (size_t i = 0; i < zip->count; i++) {
        const m3_zip_entry *e = &zip->entries[i];
        const char *slash = memchr(e->name, '/', e->name_len);
        size_t at = slash ? (size_t)(slash - e->name) : 0;
        if (slash && at > 0 && e->name_len - at == 9 && !memcmp(slash, "/data.pkl", 9)) return e;
    }
    return NULL;
}

static m3_status parse(m3_weights *w, m3_error *err)
{
    const char *path = w->file->path;
    m3_zip zip;
    m3_status st = m3_zip_open(w->file, &zip, err);
    if (st != M3_STATUS_OK) return st;
    vm m = {.path = path, .zip = &zip, .err = err};
    const m3_zip_entry *pkl = find_pickle(&zip);
    if (!pkl) {
        st = m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: no <name>/data.pkl entry: not a PyTorch checkpoint", path);
        goto done;
    }
    if (pkl->size > MAX_PICKLE) {
        st = m3_error_set(err, M3_STATUS_LIMIT, 0, "%s: data.pkl is %llu bytes (at most %d)", path,
                          (unsigned long long)pkl->size, MAX_PICKLE);
        goto done;
    }
    if ((st = m3_zip_check_crc(&zip, pkl, err))) goto done;
    m.prefix = pkl->name;
    m.prefix_len = pkl->name_len - 9;
    // Storages are little-endian unless byteorder says otherwise (absent in old archives: little).
    {
        char name[M3_ZIP_MAX_NAME + 16];
        int len = snprintf(name, sizeof name, "%.*s/byteorder", (int)m.prefix_len, m.prefix);
        const m3_zip_entry *bo = m3_zip_find(&zip, name, (size_t)len);
        if (bo && (bo->size != 6 || memcmp(bo->data, "little", 6))) {
            st = m3_error_set(err, M3_STATUS_UNSUPPORTED, 0, "%s: big-endian checkpoints are not supported", path);
            goto done;
        }
    }
    m.begin = m.p = pkl->data;
    m.end = pkl->data + pkl->size;
    if ((st = run(&m))) goto done;
    if (m.sp != 1 || m.n_marks != 0) {
        st = m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: the pickle does not end with one object", path);
        goto done;
    }
    const value *root = m.stack[0];
    if (root->kind != V_DICT) {
        st = m3_error_set(err, M3_STATUS_UNSUPPORTED, 0, "%s: the pickle is not a state dict", path);
        goto done;
    }
    for (size_t i = 0; i + 1 < root->n; i += 2) {
        const value *k = root->items[i], *v = root->items[i + 1];
        if (k->kind != V_STR) {
            st = m3_error_set(err, M3_STATUS_FORMAT, 0, "%s: a state dict key is not a string", path);
            goto done;
        }
        if (v->kind != V_TENSOR) {
            st = m3_error_set(err, M3_STATUS_UNSUPPORTED, 0, "%s: state dict entry %.*s is not a tensor", path,
                              (int)(k->len > 200 ? 200 : k->len), k->s);
            goto done;
        }
        if ((st = m3_weights_add(w, k->s, k->len, v->tensor, err))) goto done;
    }
    st = m3_weights_finish(w, err);
done:
    vm_free(&m);
    m3_zip_close(&zip);
    return st;
}

m3_status m3_weights_open_pytorch(m3_mapped_file *file, m3_weights **out, m3_error *err)
{
    *out = NULL;
    m3_weights *w;
    m3_status st = m3_weights_new(file, &w, err);
    if (st != M3_STATUS_OK) return st;
    st = parse(w, err);
    if (st != M3_STATUS_OK) {
        m3_weights_close(w);
        return st;
    }
    *out = w;
    return M3_STATUS_OK;
}
