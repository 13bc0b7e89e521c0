// SPDX-License-Identifier: MIT
//
// M3ResultRow: how one M3Result looks in the result list: icon by content type, file name, folder
// ("~" for home), modification date, the snippet with the matched passages highlighted, and the
// score bar. The list's factory makes rows and binds results to them. Main thread only.
#pragma once

#include <gtk/gtk.h>

#include "result.h"

G_BEGIN_DECLS

#define M3_TYPE_RESULT_ROW (m3_result_row_get_type())
G_DECLARE_FINAL_TYPE(M3ResultRow, m3_result_row, M3, RESULT_ROW, GtkWidget)

GtkWidget *m3_result_row_new(void);
// Shows result (NULL clears the row). The row keeps no reference after the next call.
void m3_result_row_set_result(M3ResultRow *self, M3Result *result);

G_END_DECLS
