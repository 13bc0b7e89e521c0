// SPDX-License-Identifier: MIT
//
// M3FirstRun: the assistant shown while no model is set. Step 1, the model: download BGE-M3 (2.3 GB,
// core/fetch in a worker thread: bytes, speed, time left; Cancel keeps the partial files and a later
// Download resumes them), or use the Hugging Face cache's copy, a .gguf file or a model folder. A
// downloaded or chosen folder is converted to the one-file model (m3_model_convert, in a worker) so
// later starts are instant. Step 2, the folders to index (the XDG folders that exist, Documents and
// Desktop preset). Finish writes "model" and "folders" to GSettings — the indexer service applies
// them live — and asks the service for its state, which starts it when it is D-Bus activatable.
// Main thread only; the workers touch no widget.
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define M3_TYPE_FIRST_RUN (m3_first_run_get_type())
G_DECLARE_FINAL_TYPE(M3FirstRun, m3_first_run, M3, FIRST_RUN, AdwWindow)

GtkWindow *m3_first_run_new(GtkWindow *parent);

G_END_DECLS
