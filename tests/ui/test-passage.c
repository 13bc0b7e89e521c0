// SPDX-License-Identifier: MIT
//
// Finding a result's snippet in its file's text (ui/passage.c), the preview's context: snippets cut
// with "…", line breaks and tabs where the snippet has spaces, control characters, a first word
// that occurs earlier without the rest, UTF-8, and texts that do not hold the snippet.
#include <string.h>

#include "passage.h"

static void expect(const char *text, const char *snippet, const char *matched, const char *core) {
    m3_passage p = {0};
    gboolean found = m3_passage_find(text, strlen(text), snippet, &p);
    if (!matched) {
        g_assert_false(found);
        return;
    }
    g_assert_true(found);
    g_autofree char *got = g_strndup(text + p.at, p.end - p.at);
    g_autofree char *got_core = g_strndup(snippet + p.snip_at, p.snip_end - p.snip_at);
    g_assert_cmpstr(got, ==, matched);
    g_assert_cmpstr(got_core, ==, core);
}

static void test_whole(void) {
    expect("Die Steuererklärung muss bis Ende Mai.", "Die Steuererklärung muss bis Ende Mai.",
           "Die Steuererklärung muss bis Ende Mai.", "Die Steuererklärung muss bis Ende Mai.");
}

static void test_cut(void) {
    const char *text = "Belege beilegen. Die Steuererklärung muss bis Ende Mai beim Finanzamt sein.";
    expect(text, "…Die Steuererklärung muss…", "Die Steuererklärung muss", "Die Steuererklärung muss");
    expect(text, "Belege beilegen. Die…", "Belege beilegen. Die", "Belege beilegen. Die");
    expect(text, "…Finanzamt sein.", "Finanzamt sein.", "Finanzamt sein.");
}

static void test_whitespace(void) {
    // A text file's line breaks, indentation and a form feed, as single spaces in the snippet.
    expect("title\n\n  Le chat\tdort\r\nsur le\fcanapé.\n", "…Le chat dort sur le canapé.",
           "Le chat\tdort\r\nsur le\fcanapé.", "Le chat dort sur le canapé.");
    // A space in the snippet needs at least one gap character in the text.
    expect("Le chatdort", "Le chat dort", NULL, NULL);
}

static void test_first_word_earlier(void) {
    // "The" occurs three times; only the last occurrence goes on with the snippet's words.
    const char *text = "The cat. The dog. The compiler builds the program.";
    expect(text, "The compiler builds…", "The compiler builds", "The compiler builds");
}

static void test_utf8(void) {
    expect("세무서에서 소득세\n신고에 관한 편지", "…소득세 신고에 관한…", "소득세\n신고에 관한", "소득세 신고에 관한");
    // A script without spaces: the snippet's pieces join as written.
    expect("前文。纳税申报表和所有收据。后文", "…纳税申报表和所有收据。…", "纳税申报表和所有收据。", "纳税申报表和所有收据。");
}

static void test_not_found(void) {
    expect("The file was edited since.", "The file was indexed", NULL, NULL);
    expect("anything", "", NULL, NULL);
    expect("anything", "…", NULL, NULL);
    expect("", "word", NULL, NULL);
    // The snippet runs past the end of the text.
    expect("The compiler", "The compiler builds", NULL, NULL);
}

int main(int argc, char **argv) {
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/passage/whole", test_whole);
    g_test_add_func("/passage/cut", test_cut);
    g_test_add_func("/passage/whitespace", test_whitespace);
    g_test_add_func("/passage/first-word-earlier", test_first_word_earlier);
    g_test_add_func("/passage/utf8", test_utf8);
    g_test_add_func("/passage/not-found", test_not_found);
    return g_test_run();
}
