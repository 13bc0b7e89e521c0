// SPDX-License-Identifier: MIT
//
// M3Application: the GtkApplication org.m3search.Search, single instance. Command line:
// `m3search [QUERY…]` and `m3search --similar FILE`; a second invocation hands its arguments to the
// running instance. D-Bus activation: the action app.find-similar (parameter "s": a path or file://
// URI) and GApplication.Open (each file: find similar). App actions: preferences, about, quit,
// search ("s"), first-run. Main thread only.
#pragma once

#include <adwaita.h>

G_BEGIN_DECLS

#define M3_TYPE_APPLICATION (m3_application_get_type())
G_DECLARE_FINAL_TYPE(M3Application, m3_application, M3, APPLICATION, AdwApplication)

M3Application *m3_application_new(void);

G_END_DECLS
