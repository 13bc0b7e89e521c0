// SPDX-License-Identifier: MIT
//
// The frames between the sandbox's parent and its helper (private: sandbox.c and the tests that
// play a lying helper). Both ends are the same build of the same program, so the frames are
// native structs, but the parent checks every field it reads (see sandbox.h).
//
//   parent → helper, once:      m3_sbx_config
//   helper → parent, once:      m3_sbx_reply with status (and message) of the set-up, no text
//   parent → helper, per file:  m3_sbx_request, path bytes, data bytes
//   helper → parent, per file:  m3_sbx_reply, message bytes, text bytes, anchors (m3_offset_anchor),
//                              marks (m3_location_mark)
#ifndef M3_EXTRACT_SANDBOX_PROTOCOL_H
#define M3_EXTRACT_SANDBOX_PROTOCOL_H

#include <stdint.h>

enum {
    M3_SBX_CONFIG_MAGIC = 0x4358334d,   // "M3XC"
    M3_SBX_REQUEST_MAGIC = 0x5158334d,  // "M3XQ"
    M3_SBX_REPLY_MAGIC = 0x5258334d,    // "M3XR"
    M3_SBX_VERSION = 2,
    M3_SBX_PATH_MAX = 4096,
    M3_SBX_MESSAGE_MAX = 511,
};

typedef struct m3_sbx_config {
    uint32_t magic, version;
    int32_t parent_pid;       // the helper exits when its parent is already another process
    uint32_t reserved;
    uint64_t memory_limit;    // bytes beyond the address space at start-up
    uint64_t cpu_limit_s;     // first soft RLIMIT_CPU
} m3_sbx_config;

typedef struct m3_sbx_request {
    uint32_t magic;
    uint32_t path_len;        // ≤ M3_SBX_PATH_MAX
    uint64_t size;
} m3_sbx_request;

typedef struct m3_sbx_reply {
    uint32_t magic;
    int32_t status;           // m3_status
    uint32_t version;         // extractor version
    uint32_t identity;        // bit 0: identity map; bit 1: derived text (m3_extracted.derived)
    uint64_t text_len;
    uint64_t n_anchors;
    uint32_t message_len;     // ≤ M3_SBX_MESSAGE_MAX, only with an error status
    uint32_t n_marks;         // places (m3_location_mark), at most one per byte of text
    char extractor[16];       // NUL-terminated
    char encoding[32];        // NUL-terminated
} m3_sbx_reply;

#endif
