// SPDX-License-Identifier: MIT
//
// M3Preview: the pane beside the results: the selected file's name and folder, where the chunk is,
// the score parts, and the matched passage with its highlights. For a text file the passage is shown
// in its context (the file is read asynchronously, at most 4 MiB; a newer selection cancels the read).
// Main thread only.
#pragma once

#include <gtk/gtk.h>

#include "result.h"

G_BEGIN_DECLS

#define M3_TYPE_PREVIEW (m3_preview_get_type())
G_DECLARE_FINAL_TYPE(M3Preview, m3_preview, M3, PREVIEW, GtkWidget)

// Shows result; NULL shows the empty state ("Select a result").
void m3_preview_set_result(M3Preview *self, M3Result *result);

G_END_DECLS
