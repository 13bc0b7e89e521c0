// SPDX-License-Identifier: MIT
// The m3 command line (being written: see app/).
#include <stdio.h>
int main(void)
{
    fputs("usage: m3 COMMAND [ARGS...]\n", stderr);
    return 2;
}
