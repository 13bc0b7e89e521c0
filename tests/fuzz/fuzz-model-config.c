// SPDX-License-Identifier: MIT
//
// Arbitrary bytes as config.json: parsing must fail with a status naming the input, or give a
// configuration that passes m3_model_config_check. Seeds: tests/fuzz/corpus/model-config/.
#include <stdint.h>
#include <string.h>

#include "model/model.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    m3_model_config c;
    m3_error err = {0};
    m3_status st = m3_model_config_parse((const char *)data, size, "fuzz.json", &c, &err);
    if (st != M3_STATUS_OK) {
        M3_ASSERT(err.status == st && strstr(err.message, "fuzz.json") && c.hidden == 0);
        return 0;
    }
    M3_ASSERT(m3_model_config_check(&c, "fuzz.json", &err) == M3_STATUS_OK);
    return 0;
}
