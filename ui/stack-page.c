// SPDX-License-Identifier: MIT
#include "stack-page.h"

void m3_stack_show(GtkStack *stack, const char *name) {
    GtkWidget *shown = gtk_stack_get_child_by_name(stack, name);
    gtk_widget_set_visible(shown, TRUE);
    gtk_stack_set_visible_child(stack, shown);
    for (GtkWidget *c = gtk_widget_get_first_child(GTK_WIDGET(stack)); c; c = gtk_widget_get_next_sibling(c))
        if (c != shown)
            gtk_widget_set_visible(c, FALSE);
}
