/* rtd_frame.h -- rtdecode wire protocol, version 1 (see docs/protocol.md).
 *
 * One ZeroMQ frame per message:
 *   topic (UTF-8, 1..63 bytes, no NUL) | 0x00 | rtd_header_t (40 bytes) | payload
 * estimate payload: `count` little-endian float32 values (always finite)
 * status payload:   `count` bytes of a UTF-8 JSON object (not NUL-terminated)
 *
 * All fields are little-endian; the struct below reads them directly on
 * little-endian hosts (x86-64, ARM64 / Jetson). Copy the header out of the frame
 * with memcpy (the frame offset after the topic is not aligned). C99 or later.
 */
#ifndef RTD_FRAME_H
#define RTD_FRAME_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define RTD_MAGIC "RTDC"
#define RTD_VERSION 1
#define RTD_KIND_ESTIMATE 1
#define RTD_KIND_STATUS 2
#define RTD_MAX_TOPIC_BYTES 63
#define RTD_STATUS_TOPIC "_status"

/* flags (bit field) */
#define RTD_FLAG_WARMUP    (1u << 0) /* model receptive field / filters not yet filled */
#define RTD_FLAG_DEGRADED  (1u << 1) /* a decoder or part of the input is excluded / repaired */
#define RTD_FLAG_STALE     (1u << 2) /* no new input within stale_after_s; safe value */
#define RTD_FLAG_HOLD      (1u << 3) /* held (repeated) value, not a fresh estimate */
#define RTD_FLAG_GAP       (1u << 4) /* lost samples / timestamp jump in the input */
#define RTD_FLAG_BAD_INPUT (1u << 5) /* depends on non-finite / implausible input that was repaired */
#define RTD_FLAG_CLAMPED   (1u << 6) /* model output non-finite (held) or outside its training range (clamped) */
#define RTD_FLAG_LATE      (1u << 7) /* older than the latency budget when published (daemon behind) */

#pragma pack(push, 1)
typedef struct {
    char     magic[4];   /* "RTDC" (not NUL-terminated) */
    uint16_t version;    /* 1 */
    uint16_t kind;       /* RTD_KIND_ESTIMATE or RTD_KIND_STATUS */
    uint32_t flags;      /* RTD_FLAG_* bits */
    uint32_t count;      /* estimate: number of float32 values; status: payload bytes */
    uint64_t seq;        /* per topic, from 0, +1 per message */
    double   t_source;   /* LSL time (s) of the newest input sample (status: may be NaN) */
    double   t_publish;  /* LSL local_clock() at publish (s) */
} rtd_header_t;
#pragma pack(pop)

typedef char rtd_header_size_must_be_40[(sizeof(rtd_header_t) == 40) ? 1 : -1];

typedef struct {
    const char    *topic;       /* points into the frame, NOT NUL-terminated */
    size_t         topic_len;   /* bytes */
    rtd_header_t   header;      /* copied out of the frame */
    const uint8_t *payload;     /* points into the frame */
    size_t         payload_len; /* bytes */
} rtd_frame_t;

enum {
    RTD_OK = 0,
    RTD_ERR_NO_TOPIC = -1,   /* no NUL within the first 64 bytes, or empty topic */
    RTD_ERR_SHORT = -2,      /* fewer than 40 bytes after the topic */
    RTD_ERR_MAGIC = -3,
    RTD_ERR_VERSION = -4,
    RTD_ERR_KIND = -5,
    RTD_ERR_COUNT = -6       /* count does not match the frame length */
};

/* Parse one frame. Returns RTD_OK or a negative RTD_ERR_* code. */
static inline int rtd_parse(const uint8_t *frame, size_t len, rtd_frame_t *out)
{
    size_t scan = len < RTD_MAX_TOPIC_BYTES + 1 ? len : RTD_MAX_TOPIC_BYTES + 1;
    const uint8_t *nul = (const uint8_t *)memchr(frame, 0, scan);
    if (nul == NULL || nul == frame)
        return RTD_ERR_NO_TOPIC;
    size_t topic_len = (size_t)(nul - frame);
    size_t start = topic_len + 1;
    if (len - start < sizeof(rtd_header_t))
        return RTD_ERR_SHORT;
    memcpy(&out->header, frame + start, sizeof(rtd_header_t));
    if (memcmp(out->header.magic, RTD_MAGIC, 4) != 0)
        return RTD_ERR_MAGIC;
    if (out->header.version != RTD_VERSION)
        return RTD_ERR_VERSION;
    size_t payload_len = len - start - sizeof(rtd_header_t);
    if (out->header.kind == RTD_KIND_ESTIMATE) {
        if (payload_len != (size_t)out->header.count * sizeof(float))
            return RTD_ERR_COUNT;
    } else if (out->header.kind == RTD_KIND_STATUS) {
        if (payload_len != (size_t)out->header.count)
            return RTD_ERR_COUNT;
    } else {
        return RTD_ERR_KIND;
    }
    out->topic = (const char *)frame;
    out->topic_len = topic_len;
    out->payload = frame + start + sizeof(rtd_header_t);
    out->payload_len = payload_len;
    return RTD_OK;
}

/* Value i of an estimate (i < header.count); memcpy because the payload is unaligned. */
static inline float rtd_value(const rtd_frame_t *f, uint32_t i)
{
    float v;
    memcpy(&v, f->payload + (size_t)i * sizeof(float), sizeof(float));
    return v;
}

#endif /* RTD_FRAME_H */
