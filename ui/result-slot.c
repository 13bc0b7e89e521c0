// SPDX-License-Identifier: MIT
#include "result-slot.h"

struct _M3ResultSlot {
    GObject parent_instance;
    M3Result *result;
};

G_DEFINE_FINAL_TYPE(M3ResultSlot, m3_result_slot, G_TYPE_OBJECT)

enum { PROP_RESULT = 1, N_PROPS };
static GParamSpec *props[N_PROPS];

static void m3_result_slot_get_property(GObject *object, guint id, GValue *value, GParamSpec *pspec) {
    if (id == PROP_RESULT)
        g_value_set_object(value, M3_RESULT_SLOT(object)->result);
    else
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec);
}

static void m3_result_slot_dispose(GObject *object) {
    g_clear_object(&M3_RESULT_SLOT(object)->result);
    G_OBJECT_CLASS(m3_result_slot_parent_class)->dispose(object);
}

static void m3_result_slot_class_init(M3ResultSlotClass *klass) {
    GObjectClass *oc = G_OBJECT_CLASS(klass);
    oc->get_property = m3_result_slot_get_property;
    oc->dispose = m3_result_slot_dispose;
    props[PROP_RESULT] = g_param_spec_object("result", NULL, NULL, M3_TYPE_RESULT,
                                             G_PARAM_READABLE | G_PARAM_EXPLICIT_NOTIFY | G_PARAM_STATIC_STRINGS);
    g_object_class_install_properties(oc, N_PROPS, props);
}

static void m3_result_slot_init(M3ResultSlot *self) {
    (void)self;
}

M3ResultSlot *m3_result_slot_new(M3Result *result) {
    M3ResultSlot *self = g_object_new(M3_TYPE_RESULT_SLOT, NULL);
    self->result = result ? g_object_ref(result) : NULL;
    return self;
}

M3Result *m3_result_slot_get_result(M3ResultSlot *self) {
    return self->result;
}

void m3_result_slot_set_result(M3ResultSlot *self, M3Result *result) {
    // A refresh (the index changed, most results did not) keeps an equal result and its row as
    // they are: no rebinding, no new layout.
    if (m3_result_equal(self->result, result))  // also the same object
        return;
    g_set_object(&self->result, result);
    g_object_notify_by_pspec(G_OBJECT(self), props[PROP_RESULT]);
}
