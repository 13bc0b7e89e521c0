// SPDX-License-Identifier: MIT
//
// m3_stack_show: shows a page of a GtkStack and makes the other pages invisible. GTK 4.8 reports
// every page of a stack to assistive technology as visible (and its "hidden" state cannot be undone),
// so a screen reader (and the GUI tests, which read the accessibility tree) would otherwise read the
// hidden pages too. Main thread.
#pragma once

#include <gtk/gtk.h>

void m3_stack_show(GtkStack *stack, const char *name);
