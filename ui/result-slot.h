// SPDX-License-Identifier: MIT
//
// M3ResultSlot: one place in the result list, holding the M3Result shown there. A new reply puts its
// results into the slots already listed instead of replacing the list's items: GTK 4.8's list view
// destroys a row widget whose item leaves the model and builds a new one from its template for a new
// item (most of a list update's time), while a slot whose result changes only rebinds its row.
//
//     M3ResultSlot *slot = m3_result_slot_new(result);
//     g_signal_connect(slot, "notify::result", G_CALLBACK(rebind), row);
//     m3_result_slot_set_result(slot, other);   // notifies "result" unless other shows the same
//
// The slot holds a reference to its result, or none: a blank slot (set to NULL) keeps its place and
// its row while the list shows nothing. Main thread only.
#pragma once

#include "result.h"

G_BEGIN_DECLS

#define M3_TYPE_RESULT_SLOT (m3_result_slot_get_type())
G_DECLARE_FINAL_TYPE(M3ResultSlot, m3_result_slot, M3, RESULT_SLOT, GObject)

// A slot holding result (a reference), or a blank one for NULL.
M3ResultSlot *m3_result_slot_new(M3Result *result);
// Borrowed: lives until the slot's next m3_result_slot_set_result or its end. NULL when blank.
M3Result *m3_result_slot_get_result(M3ResultSlot *self);
// Takes result (adds a reference; NULL blanks the slot) and notifies "result"; a result equal to
// the held one (m3_result_equal) is not taken: the slot, its row and the preview stay as they are.
void m3_result_slot_set_result(M3ResultSlot *self, M3Result *result);

G_END_DECLS
