/* rtd_frame.h -- rtdecode wire protocol, version 1 (see docs/protocol.md).
 *
 * One ZeroMQ frame per message:
 *   topic (UTF-8, 1..63 bytes, no NUL) | 0x00 | rtd_header_t (40 bytes) | payload
 * estimate payload: `count` little-endian float32 values (always finite)
 * status payload:   `count` bytes of a UTF-8 JSON object (not NUL-terminated)
 * event payload:    rtd_event_t (32 bytes) | float32 values[count][n_measures]
 *                   | uint32 channel_flags[count]   (one stimulation pulse, `count` channels)
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
#define RTD_KIND_EVENT 3
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
/* event flags (header and per channel of an event): */
#define RTD_FLAG_PREACTIVATED (1u << 8)  /* pre-pulse RMS above the threshold */
#define RTD_FLAG_OUTAGE       (1u << 9)  /* input samples missing inside the pulse's windows */
#define RTD_FLAG_NO_SAMPLES   (1u << 10) /* the window's samples never came; values are 0 */
#define RTD_FLAG_NO_RESPONSE  (1u << 11) /* peak to peak below the response threshold; latency 0 */
#define RTD_FLAG_PREDICTION    (1u << 12) /* a model's prediction: measures RTD_PRED_* (docs/m2m.md) */
#define RTD_FLAG_NO_PREDICTION (1u << 13) /* no usable coil pose / intensity: predicted values are 0 */

/* measures per channel of an event, in payload order (n_measures may be larger) */
#define RTD_MEASURE_P2P_UV     0 /* peak to peak in the post-pulse window, uV */
#define RTD_MEASURE_LATENCY_MS 1 /* onset latency after the pulse, ms (0 with NO_RESPONSE) */
#define RTD_MEASURE_AREA_UV_MS 2 /* area of the rectified response in the window, uV*ms */
#define RTD_MEASURE_PRE_RMS_UV 3 /* background RMS before the pulse, uV */
/* Measures of an event flagged RTD_FLAG_PREDICTION (n_measures 1 before the measurement, 4 after). */
#define RTD_PRED_P2P_UV        0 /* predicted peak to peak, uV */
#define RTD_PRED_MEASURED_UV   1 /* measured peak to peak, uV */
#define RTD_PRED_ERROR_UV      2 /* measured - predicted, uV */
#define RTD_PRED_RUNNING_NRMSE 3 /* running NRMSE over the pulses so far (-1: none scored yet) */

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

#pragma pack(push, 1)
typedef struct {
    uint64_t pulse_id;        /* pulse number */
    double   t_pulse;         /* LSL time of the pulse (s) */
    float    intensity;       /* stimulus intensity (0 when unknown) */
    uint16_t intensity_unit;  /* 0 none, 1 %MSO, 2 %RMT */
    uint16_t n_measures;      /* measures per channel (4 in this version) */
    float    window_start_ms; /* post-pulse window of the measures, ms after the pulse */
    float    window_end_ms;
} rtd_event_t;
#pragma pack(pop)

typedef char rtd_event_size_must_be_32[(sizeof(rtd_event_t) == 32) ? 1 : -1];

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
    } else if (out->header.kind == RTD_KIND_EVENT) {
        rtd_event_t ev;
        if (payload_len < sizeof ev)
            return RTD_ERR_COUNT;
        memcpy(&ev, frame + start + sizeof(rtd_header_t), sizeof ev);
        if (ev.n_measures == 0 || payload_len != sizeof ev + (size_t)out->header.count
                * ((size_t)ev.n_measures * sizeof(float) + sizeof(uint32_t)))
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

/* The event header of an event frame (f->header.kind == RTD_KIND_EVENT, parsed by rtd_parse). */
static inline rtd_event_t rtd_event(const rtd_frame_t *f)
{
    rtd_event_t ev;
    memcpy(&ev, f->payload, sizeof ev);
    return ev;
}

/* Measure k (RTD_MEASURE_*) of channel m of an event (m < header.count, k < n_measures). */
static inline float rtd_event_value(const rtd_frame_t *f, uint32_t m, uint32_t k)
{
    rtd_event_t ev = rtd_event(f);
    float v;
    memcpy(&v, f->payload + sizeof ev + ((size_t)m * ev.n_measures + k) * sizeof(float),
           sizeof(float));
    return v;
}

/* Flag bits of channel m of an event. */
static inline uint32_t rtd_event_channel_flags(const rtd_frame_t *f, uint32_t m)
{
    rtd_event_t ev = rtd_event(f);
    uint32_t bits;
    memcpy(&bits, f->payload + sizeof ev + (size_t)f->header.count * ev.n_measures * sizeof(float)
           + (size_t)m * sizeof(uint32_t), sizeof bits);
    return bits;
}

#endif /* RTD_FRAME_H */
