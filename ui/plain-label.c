// SPDX-License-Identifier: MIT
#include "plain-label.h"
#include "text-font.h"

#define HEIGHTS 6
#define WRAP_MIN_CHARS 20  // a wrapped text's minimum width, in average characters

struct _M3PlainLabel {
    GtkWidget parent_instance;
    char *text;
    PangoEllipsizeMode ellipsize;
    gboolean fit_text, wrap;
    guint font_serial;    // the Pango context's serial the layout and metrics are for
    PangoLayout *layout;  // made on first use, given each new text; NULL after a new font
    int laid_width;       // the width the layout is laid out at (Pango units), -1 for none
    int text_width;       // fit-text, wrap: the text's widest line in pixels, -1 until measured
    // wrap: heights for the last few widths asked for (px; width -1: none). A window's size request
    // asks a wrapping text's height at several widths (minimum and natural of each container up
    // to the window) and again at each: each new width lays the text out again.
    struct { int width, height; } heights[HEIGHTS];
    guint next_height;
    int line_height, char_width;  // from the font's metrics (Pango units), 0 until measured
};

G_DEFINE_FINAL_TYPE(M3PlainLabel, m3_plain_label, GTK_TYPE_WIDGET)

enum { PROP_ELLIPSIZE = 1, PROP_FIT_TEXT, PROP_WRAP, N_PROPS };
static GParamSpec *props[N_PROPS];

static PangoLayout *layout_of(M3PlainLabel *self) {
    if (!self->layout) {
        self->layout = gtk_widget_create_pango_layout(GTK_WIDGET(self), self->text);
        pango_layout_set_auto_dir(self->layout, TRUE);
        if (self->wrap)
            pango_layout_set_wrap(self->layout, PANGO_WRAP_WORD_CHAR);
        else
            pango_layout_set_single_paragraph_mode(self->layout, TRUE);
        if (!self->fit_text && !self->wrap)
            pango_layout_set_ellipsize(self->layout, self->ellipsize);
        self->laid_width = -1;
    }
    return self->layout;
}

// Lays the text out at width (Pango units, -1: unbounded) unless it is already.
static PangoLayout *layout_at(M3PlainLabel *self, int width) {
    PangoLayout *layout = layout_of(self);
    if (width != self->laid_width) {
        pango_layout_set_width(layout, width);
        self->laid_width = width;
    }
    return layout;
}

static int text_width(M3PlainLabel *self) {
    if (self->text_width < 0) {
        int w = 0;
        if (*self->text)
            pango_layout_get_pixel_size(layout_at(self, -1), &w, NULL);
        self->text_width = w;
    }
    return self->text_width;
}

static void forget_heights(M3PlainLabel *self) {
    for (guint i = 0; i < HEIGHTS; i++)
        self->heights[i].width = -1;
}

// wrap: the text's height at width px (one layout per text and width, while it is remembered).
static int height_for(M3PlainLabel *self, int width) {
    if (!*self->text)
        return 0;
    for (guint i = 0; i < HEIGHTS; i++)
        if (self->heights[i].width == width)
            return self->heights[i].height;
    int height;
    pango_layout_get_pixel_size(layout_at(self, width * PANGO_SCALE), NULL, &height);
    self->heights[self->next_height].width = width;
    self->heights[self->next_height].height = height;
    self->next_height = (self->next_height + 1) % HEIGHTS;
    return height;
}

// The font's line height and average character width (Pango units), looked up once per font: no
// text is laid out for them.
static void font_metrics(M3PlainLabel *self) {
    if (!self->line_height)
        m3_text_font_metrics(GTK_WIDGET(self), &self->line_height, &self->char_width);
}

static void m3_plain_label_measure(GtkWidget *widget, GtkOrientation orientation, int for_size, int *minimum,
                                 int *natural, int *min_baseline, int *nat_baseline) {
    (void)min_baseline, (void)nat_baseline;
    M3PlainLabel *self = M3_PLAIN_LABEL(widget);
    font_metrics(self);
    if (orientation == GTK_ORIENTATION_HORIZONTAL) {
        if (self->fit_text)
            *minimum = *natural = text_width(self);
        else if (self->wrap) {
            // A wrapped text's minimum is a few words' width, not one word's (a GtkLabel's): the
            // window asks its height at each container's minimum width whenever its text changes,
            // and at a word's width each line is a few letters, a layout of dozens of lines.
            *natural = text_width(self);
            *minimum = MIN(*natural, PANGO_PIXELS_CEIL(self->char_width * WRAP_MIN_CHARS));
        } else
            *minimum = *natural = 0;
        return;
    }
    if (self->wrap)
        *minimum = *natural = height_for(self, for_size >= 0 ? for_size : text_width(self));
    else
        *minimum = *natural = PANGO_PIXELS_CEIL(self->line_height);
}

static GtkSizeRequestMode m3_plain_label_get_request_mode(GtkWidget *widget) {
    return M3_PLAIN_LABEL(widget)->wrap ? GTK_SIZE_REQUEST_HEIGHT_FOR_WIDTH : GTK_SIZE_REQUEST_CONSTANT_SIZE;
}

static void m3_plain_label_snapshot(GtkWidget *widget, GtkSnapshot *snapshot) {
    M3PlainLabel *self = M3_PLAIN_LABEL(widget);
    if (!*self->text)
        return;
    PangoLayout *layout = self->fit_text ? layout_at(self, -1)
                                         : layout_at(self, gtk_widget_get_width(widget) * PANGO_SCALE);
    pango_layout_set_alignment(layout, gtk_widget_get_direction(widget) == GTK_TEXT_DIR_RTL ? PANGO_ALIGN_RIGHT
                                                                                            : PANGO_ALIGN_LEFT);
    GdkRGBA color;
    m3_text_color(widget, &color);
    // Centred in a taller allocation (a row's line beside a bigger font), as a label's text is; a
    // line at the widget's start edge whatever its text's own direction (a Latin file name in a
    // right-to-left window starts at the right, as in a label), where Pango's alignment would
    // follow the text's direction.
    PangoRectangle logical;
    pango_layout_get_pixel_extents(layout, NULL, &logical);
    float x = 0, y = MAX(0, (gtk_widget_get_height(widget) - logical.height) / 2);
    if (!self->wrap)
        x = (gtk_widget_get_direction(widget) == GTK_TEXT_DIR_RTL ? gtk_widget_get_width(widget) - logical.width : 0) -
            logical.x;
    gtk_snapshot_save(snapshot);
    gtk_snapshot_translate(snapshot, &GRAPHENE_POINT_INIT(x, y));
    gtk_snapshot_append_layout(snapshot, layout, &color);
    gtk_snapshot_restore(snapshot);
}

// A new font (CSS, text scale) or direction: the text is laid out anew, its size may change.
static void drop_layout(M3PlainLabel *self) {
    g_clear_object(&self->layout);
    self->line_height = 0;
    self->text_width = -1;
    forget_heights(self);
    gtk_widget_queue_resize(GTK_WIDGET(self));
}

static void m3_plain_label_css_changed(GtkWidget *widget, GtkCssStyleChange *change) {
    GTK_WIDGET_CLASS(m3_plain_label_parent_class)->css_changed(widget, change);
    M3PlainLabel *self = M3_PLAIN_LABEL(widget);
    if (m3_text_font_changed(widget, &self->font_serial))  // not at each new style (text-font.h)
        drop_layout(self);
}

static void m3_plain_label_direction_changed(GtkWidget *widget, GtkTextDirection previous) {
    GTK_WIDGET_CLASS(m3_plain_label_parent_class)->direction_changed(widget, previous);
    drop_layout(M3_PLAIN_LABEL(widget));
}

static void m3_plain_label_set_property(GObject *object, guint id, const GValue *value, GParamSpec *pspec) {
    M3PlainLabel *self = M3_PLAIN_LABEL(object);
    switch (id) {
    case PROP_ELLIPSIZE:
        self->ellipsize = g_value_get_enum(value);
        g_clear_object(&self->layout);
        gtk_widget_queue_draw(GTK_WIDGET(self));
        break;
    case PROP_FIT_TEXT:
        self->fit_text = g_value_get_boolean(value);
        break;
    case PROP_WRAP:
        self->wrap = g_value_get_boolean(value);
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec);
    }
}

static void m3_plain_label_get_property(GObject *object, guint id, GValue *value, GParamSpec *pspec) {
    M3PlainLabel *self = M3_PLAIN_LABEL(object);
    switch (id) {
    case PROP_ELLIPSIZE:
        g_value_set_enum(value, self->ellipsize);
        break;
    case PROP_FIT_TEXT:
        g_value_set_boolean(value, self->fit_text);
        break;
    case PROP_WRAP:
        g_value_set_boolean(value, self->wrap);
        break;
    default:
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, pspec);
    }
}

static void m3_plain_label_finalize(GObject *object) {
    M3PlainLabel *self = M3_PLAIN_LABEL(object);
    g_clear_object(&self->layout);
    g_free(self->text);
    G_OBJECT_CLASS(m3_plain_label_parent_class)->finalize(object);
}

static void m3_plain_label_class_init(M3PlainLabelClass *klass) {
    GObjectClass *oc = G_OBJECT_CLASS(klass);
    GtkWidgetClass *wc = GTK_WIDGET_CLASS(klass);
    oc->finalize = m3_plain_label_finalize;
    oc->set_property = m3_plain_label_set_property;
    oc->get_property = m3_plain_label_get_property;
    wc->measure = m3_plain_label_measure;
    wc->get_request_mode = m3_plain_label_get_request_mode;
    wc->snapshot = m3_plain_label_snapshot;
    wc->css_changed = m3_plain_label_css_changed;
    wc->direction_changed = m3_plain_label_direction_changed;
    props[PROP_ELLIPSIZE] = g_param_spec_enum("ellipsize", NULL, NULL, PANGO_TYPE_ELLIPSIZE_MODE, PANGO_ELLIPSIZE_END,
                                              G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS);
    props[PROP_FIT_TEXT] = g_param_spec_boolean("fit-text", NULL, NULL, FALSE,
                                                G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
    props[PROP_WRAP] = g_param_spec_boolean("wrap", NULL, NULL, FALSE,
                                            G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS);
    g_object_class_install_properties(oc, N_PROPS, props);
    gtk_widget_class_set_css_name(wc, "plainlabel");
    gtk_widget_class_set_accessible_role(wc, GTK_ACCESSIBLE_ROLE_LABEL);
}

static void m3_plain_label_init(M3PlainLabel *self) {
    self->text = g_strdup("");
    self->ellipsize = PANGO_ELLIPSIZE_END;
    self->laid_width = self->text_width = -1;
    forget_heights(self);
}

GtkWidget *m3_plain_label_new(void) {
    return g_object_new(M3_TYPE_PLAIN_LABEL, NULL);
}

const char *m3_plain_label_get_text(M3PlainLabel *self) {
    return self->text;
}

void m3_plain_label_set_text(M3PlainLabel *self, const char *text) {
    if (!text)
        text = "";
    if (g_str_equal(text, self->text))
        return;
    g_free(self->text);
    self->text = g_strdup(text);
    if (self->layout)
        pango_layout_set_text(self->layout, text, -1);  // keeps the font; lays out on next use
    gtk_accessible_update_property(GTK_ACCESSIBLE(self), GTK_ACCESSIBLE_PROPERTY_LABEL, text, -1);
    if (self->wrap) {  // its height may change with the text
        self->text_width = -1;
        forget_heights(self);
        gtk_widget_queue_resize(GTK_WIDGET(self));
        return;
    }
    if (self->fit_text) {
        int before = self->text_width;
        self->text_width = -1;
        if (before != text_width(self)) {
            gtk_widget_queue_resize(GTK_WIDGET(self));
            return;
        }
    }
    gtk_widget_queue_draw(GTK_WIDGET(self));
}
