// SPDX-License-Identifier: MIT
//
// The window's reading of the service's Status dictionary (ui/window-state.c) and of a result
// dictionary (ui/result.c): every state a person must understand, the progress line, the banner,
// the highlighted snippet markup (UTF-8 boundaries, escaping, bad ranges), the folder shown with "~".
#include <locale.h>
#include <string.h>

#include "display-path.h"
#include "result.h"
#include "result-slot.h"
#include "window-state.h"

static GVariant *status(const char *state, guint64 done, guint64 pending, guint64 failed, const char *model,
                        gboolean folders, const char *paused_reason, const char *error) {
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&b, "{sv}", "state", g_variant_new_string(state));
    g_variant_builder_add(&b, "{sv}", "files-indexed", g_variant_new_uint64(done));
    g_variant_builder_add(&b, "{sv}", "files-pending", g_variant_new_uint64(pending));
    g_variant_builder_add(&b, "{sv}", "files-failed", g_variant_new_uint64(failed));
    g_variant_builder_add(&b, "{sv}", "model", g_variant_new_string(model));
    const char *some[] = {"/home/u/Documents", NULL};
    g_variant_builder_add(&b, "{sv}", "folders", g_variant_new_strv(folders ? some : NULL, folders ? 1 : 0));
    g_variant_builder_add(&b, "{sv}", "paused-reason", g_variant_new_string(paused_reason));
    g_variant_builder_add(&b, "{sv}", "error", g_variant_new_string(error));
    g_variant_builder_add(&b, "{sv}", "tokens-per-second", g_variant_new_double(2300));
    g_variant_builder_add(&b, "{sv}", "eta-seconds", g_variant_new_double(185));
    return g_variant_ref_sink(g_variant_builder_end(&b));
}

static void test_states(void) {
    g_autoptr(GVariant) none = status("idle", 0, 0, 0, "", TRUE, "", "");
    g_assert_false(m3_state_has_model(none));
    g_autoptr(GVariant) nofolders = status("idle", 0, 0, 0, "/m.gguf", FALSE, "", "");
    g_assert_true(m3_state_has_model(nofolders));
    g_assert_false(m3_state_has_folders(nofolders));
    g_autoptr(GVariant) idle = status("idle", 12, 0, 0, "/m.gguf", TRUE, "", "");
    g_assert_true(m3_state_has_folders(idle));
    g_assert_cmpuint(m3_state_files_indexed(idle), ==, 12);
    m3_progress p;
    g_assert_false(m3_state_progress(idle, &p));
    const char *button, *action;
    g_assert_null(m3_state_banner(idle, &button, &action));
    // Missing keys and a NULL dictionary read as nothing, never crash.
    g_autoptr(GVariant) empty = g_variant_ref_sink(g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0));
    g_assert_false(m3_state_has_model(empty));
    g_assert_false(m3_state_progress(empty, &p));
    g_assert_false(m3_state_has_folders(NULL));
    // A model configured is loading or loaded unless the service says it could not open it.
    g_assert_true(m3_state_model_missing(none));
    g_assert_true(m3_state_model_missing(NULL));
    g_assert_false(m3_state_model_missing(idle));
    GVariantDict d;
    g_variant_dict_init(&d, idle);
    g_variant_dict_insert(&d, "model-missing", "b", TRUE);
    g_autoptr(GVariant) unusable = g_variant_ref_sink(g_variant_dict_end(&d));
    g_assert_true(m3_state_has_model(unusable));
    g_assert_true(m3_state_model_missing(unusable));
}

static void test_progress(void) {
    g_autoptr(GVariant) busy = status("indexing", 120, 380, 0, "/m.gguf", TRUE, "", "");
    m3_progress p;
    g_assert_true(m3_state_progress(busy, &p));
    g_assert_cmpstr(p.text, ==, "Indexing: 120 of 500 files · 2300 tokens/s · about 3 minutes left");
    g_assert_cmpfloat_with_epsilon(p.fraction, 0.24, 1e-9);
    g_assert_false(p.paused);
    g_free(p.text);
    g_autoptr(GVariant) battery = status("paused", 10, 5, 0, "/m.gguf", TRUE, "battery", "");
    g_assert_true(m3_state_progress(battery, &p));
    g_assert_true(p.paused);
    g_assert_cmpstr(p.text, ==, "Indexing paused while the computer runs on battery · 5 files waiting");
    g_free(p.text);
    g_autoptr(GVariant) user = status("paused", 10, 1, 0, "/m.gguf", TRUE, "user", "");
    g_assert_true(m3_state_progress(user, &p));
    g_assert_cmpstr(p.text, ==, "Indexing paused · 1 file waiting");
    g_free(p.text);
    // Paused with nothing waiting still shows, so that it can be resumed.
    g_autoptr(GVariant) nothing = status("paused", 10, 0, 0, "/m.gguf", TRUE, "user", "");
    g_assert_true(m3_state_progress(nothing, &p));
    g_assert_true(p.paused);
    g_assert_cmpstr(p.text, ==, "Indexing paused");
    g_assert_cmpfloat(p.fraction, <, 0);
    g_free(p.text);
}

static void test_banner(void) {
    const char *button, *action;
    g_autoptr(GVariant) failed = status("idle", 10, 0, 3, "/m.gguf", TRUE, "", "");
    g_autofree char *text = m3_state_banner(failed, &button, &action);
    g_assert_cmpstr(text, ==, "3 files could not be read");
    g_assert_cmpstr(action, ==, "win.show-failed");
    g_autoptr(GVariant) broken = status("error", 10, 0, 3, "/m.gguf", TRUE, "", "the disk is full");
    g_autofree char *text2 = m3_state_banner(broken, &button, &action);
    g_assert_cmpstr(text2, ==, "Indexing stopped: the disk is full");
    // A chosen folder that is not there comes before the failed files, with Preferences at hand.
    GVariantDict d;
    g_variant_dict_init(&d, failed);
    const char *one[] = {"/nowhere/Archiv", NULL}, *two[] = {"/nowhere/a", "/nowhere/b", NULL};
    g_variant_dict_insert_value(&d, "missing-folders", g_variant_new_strv(one, -1));
    g_autoptr(GVariant) missing = g_variant_ref_sink(g_variant_dict_end(&d));
    g_autofree char *text3 = m3_state_banner(missing, &button, &action);
    g_assert_cmpstr(text3, ==, "“/nowhere/Archiv” does not exist: nothing in it is indexed");
    g_assert_cmpstr(action, ==, "app.preferences");
    g_variant_dict_init(&d, failed);
    g_variant_dict_insert_value(&d, "missing-folders", g_variant_new_strv(two, -1));
    g_autoptr(GVariant) missing2 = g_variant_ref_sink(g_variant_dict_end(&d));
    g_autofree char *text4 = m3_state_banner(missing2, &button, &action);
    g_assert_cmpstr(text4, ==, "2 folders do not exist: nothing in them is indexed");
}

static M3Result *result(const char *path, const char *snippet, guint32 a, guint32 b) {
    GVariantBuilder d, hl;
    g_variant_builder_init(&hl, G_VARIANT_TYPE("a(uu)"));
    g_variant_builder_add(&hl, "(uu)", a, b);
    g_variant_builder_add(&hl, "(uu)", 5000u, 6000u);  // out of range: dropped
    g_variant_builder_init(&d, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&d, "{sv}", "path", g_variant_new_string(path));
    g_variant_builder_add(&d, "{sv}", "snippet", g_variant_new_string(snippet));
    g_variant_builder_add(&d, "{sv}", "highlights", g_variant_builder_end(&hl));
    g_variant_builder_add(&d, "{sv}", "score", g_variant_new_double(0.5));
    g_autoptr(GVariant) v = g_variant_ref_sink(g_variant_builder_end(&d));
    return m3_result_new_from_variant(v);
}

static void test_result(void) {
    // "Steuer <b>erklärung</b> & Co": the range covers "erklärung" (ä is two bytes).
    const char *snippet = "Steuer erklärung & Co";
    g_autoptr(M3Result) r = result("/home/u/Docs/a.txt", snippet, 7, 17);
    g_assert_nonnull(r);
    guint n;
    m3_result_get_highlights(r, &n);
    g_assert_cmpuint(n, ==, 1);
    g_autofree char *markup = m3_result_dup_snippet_markup(r);
    g_assert_cmpstr(markup, ==, "Steuer <span weight=\"bold\" background=\"#f8e45c80\">erklärung</span> &amp; Co");
    // A range that ends inside a UTF-8 character is cut back to the character's start.
    g_autoptr(M3Result) cut = result("/x/b.txt", snippet, 7, 16);
    g_autofree char *m2 = m3_result_dup_snippet_markup(cut);
    g_assert_cmpstr(m2, ==, "Steuer <span weight=\"bold\" background=\"#f8e45c80\">erklärun</span>g &amp; Co");
    // No path: no result.
    g_autoptr(GVariant) bad = g_variant_ref_sink(g_variant_new_array(G_VARIANT_TYPE("{sv}"), NULL, 0));
    g_assert_null(m3_result_new_from_variant(bad));
    // The home folder is shown as "~".
    g_autofree char *in_home = g_build_filename(g_get_home_dir(), "Docs", "c.txt", NULL);
    g_autoptr(M3Result) home = result(in_home, "x", 0, 1);
    g_autofree char *folder = m3_result_dup_folder(home);
    g_assert_cmpstr(folder, ==, "~/Docs");
    g_autofree char *name = m3_result_dup_name(home);
    g_assert_cmpstr(name, ==, "c.txt");
}

// Paths as the window shows them: the home folder and what is in it with "~", nothing else.
static void test_display_path(void) {
    const char *home = g_get_home_dir();
    g_autofree char *docs = g_build_filename(home, "Documents", NULL);
    g_autofree char *sibling = g_strconcat(home, "2", G_DIR_SEPARATOR_S, "x", NULL);  // shares home's prefix
    g_autofree char *shown_home = m3_display_path(home);
    g_autofree char *shown_docs = m3_display_path(docs);
    g_autofree char *shown_sibling = m3_display_path(sibling);
    g_autofree char *shown_other = m3_display_path("/srv/data");
    g_assert_cmpstr(shown_home, ==, "~");
    g_assert_cmpstr(shown_docs, ==, "~/Documents");
    g_assert_cmpstr(shown_sibling, ==, sibling);
    g_assert_cmpstr(shown_other, ==, "/srv/data");
    // Bytes that are not UTF-8 are shown as U+FFFD (the path itself is kept elsewhere).
    g_autofree char *shown_latin1 = m3_display_path("/srv/caf\xe9");
    g_assert_cmpstr(shown_latin1, ==, "/srv/caf\xef\xbf\xbd");
}

static void count_notify(GObject *slot, GParamSpec *pspec, gpointer user) {
    (void)slot, (void)pspec;
    (*(int *)user)++;
}

// A slot takes a new result (its row rebinds on "notify::result") unless the new one shows the
// same: a refresh after IndexChanged then leaves unchanged rows alone.
static void test_slot(void) {
    g_autoptr(M3Result) a = result("/x/a.txt", "Steuer erklärung", 7, 17);
    g_autoptr(M3Result) same = result("/x/a.txt", "Steuer erklärung", 7, 17);
    g_autoptr(M3Result) other_hl = result("/x/a.txt", "Steuer erklärung", 0, 6);
    g_autoptr(M3Result) other_path = result("/x/b.txt", "Steuer erklärung", 7, 17);
    g_assert_true(m3_result_equal(a, same));
    g_assert_false(m3_result_equal(a, other_hl));
    g_assert_false(m3_result_equal(a, other_path));
    g_assert_false(m3_result_equal(a, NULL));
    g_assert_true(m3_result_equal(NULL, NULL));
    g_autoptr(M3ResultSlot) slot = m3_result_slot_new(a);
    int notified = 0;
    g_signal_connect(slot, "notify::result", G_CALLBACK(count_notify), &notified);
    m3_result_slot_set_result(slot, same);
    g_assert_cmpint(notified, ==, 0);
    g_assert_true(m3_result_slot_get_result(slot) == a);  // the held one stays (the preview keeps it)
    m3_result_slot_set_result(slot, other_hl);
    g_assert_cmpint(notified, ==, 1);
    g_assert_true(m3_result_slot_get_result(slot) == other_hl);
    m3_result_slot_set_result(slot, other_path);
    g_assert_cmpint(notified, ==, 2);
}

// A name that is not UTF-8: the service's "path" is its display form (U+FFFD), the URI is exact,
// and the result names the file itself (opened, previewed) by the URI.
static void test_path_from_uri(void) {
    GVariantBuilder b;
    g_variant_builder_init(&b, G_VARIANT_TYPE_VARDICT);
    g_variant_builder_add(&b, "{sv}", "path", g_variant_new_string("/tmp/Liste-\uFFFD.txt"));
    g_variant_builder_add(&b, "{sv}", "uri", g_variant_new_string("file:///tmp/Liste-%FF.txt"));
    g_variant_builder_add(&b, "{sv}", "snippet", g_variant_new_string("x"));
    g_autoptr(GVariant) v = g_variant_ref_sink(g_variant_builder_end(&b));
    g_autoptr(M3Result) r = m3_result_new_from_variant(v);
    g_assert_nonnull(r);
    g_assert_cmpstr(m3_result_get_path(r), ==, "/tmp/Liste-\xff.txt");
    g_assert_cmpstr(m3_result_get_uri(r), ==, "file:///tmp/Liste-%FF.txt");
}

int main(int argc, char **argv) {
    setlocale(LC_ALL, "C.UTF-8");
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/window-state/states", test_states);
    g_test_add_func("/window-state/progress", test_progress);
    g_test_add_func("/window-state/banner", test_banner);
    g_test_add_func("/result/markup", test_result);
    g_test_add_func("/result/slot", test_slot);
    g_test_add_func("/result/display-path", test_display_path);
    g_test_add_func("/result/path-from-uri", test_path_from_uri);
    return g_test_run();
}
